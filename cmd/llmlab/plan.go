package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/llmlab/llmlab/planner"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, planCmd) }

type planFlags struct {
	varFlags
	targets []string
	replace []string
}

func (f *planFlags) register(c *cobra.Command) {
	f.varFlags.register(c)
	c.Flags().StringArrayVar(&f.targets, "target", nil, "plan only this stage and what it needs (repeatable)")
	c.Flags().StringArrayVar(&f.replace, "replace", nil, "run this stage even if cached (repeatable)")
}

func planCmd(stdout, stderr io.Writer) *cobra.Command {
	var pf planFlags
	var asJSON, detailed bool
	var out string
	c := &cobra.Command{
		Use:   "plan [PIPELINE]",
		Short: "Show which stages will run and why",
		Long: "plan validates the pipeline and lists every stage: + will run (new), ~ will run (with the reason), = cached.\n" +
			"With -detailed-exitcode it exits 0 when nothing would run, 2 when something would, 1 on error.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, plan, ws, diags := loadPlan(pipelineArg(args), pf.inputs(), pf.targets, pf.replace)
			if diags.HasErrors() {
				newDiagPrinter(stderr, cfg).print(diags)
				return &exitError{1}
			}
			defer ws.Close()
			newDiagPrinter(stderr, cfg).print(diags)
			if out != "" {
				if err := plan.WriteFile(out); err != nil {
					return fmt.Errorf("saving the plan: %w", err)
				}
			}
			if asJSON {
				_ = writeJSON(stdout, plan.Public())
			} else {
				renderPlan(stdout, plan, time.Now())
				if out != "" {
					fmt.Fprintf(stdout, "\nSaved the plan to %s. Run it with: llmlab apply %s\n", out, out)
				}
			}
			if detailed && plan.Summary.Run > 0 {
				return &exitError{2}
			}
			return nil
		},
	}
	pf.register(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON (format_version 1)")
	c.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when something would run, 0 when nothing would")
	c.Flags().StringVar(&out, "out", "", "save the plan to FILE for `llmlab apply FILE`")
	return c
}

// renderPlan prints a plan the way Terraform users expect.
func renderPlan(w io.Writer, p *planner.Plan, now time.Time) {
	if len(p.Stages) == 0 {
		fmt.Fprintln(w, "The pipeline has no stages.")
		return
	}
	for _, s := range p.Stages {
		switch {
		case s.Action == planner.ActionCached:
			age := ""
			if s.CachedAt != nil {
				age = ", " + humanAge(now.Sub(*s.CachedAt)) + " old"
			}
			fmt.Fprintf(w, "  = %s (%s) cached [%s%s]\n", s.Address, s.Kind, s.Key[:12], age)
		case isNew(s):
			fmt.Fprintf(w, "  + %s (%s) will run: new\n", s.Address, s.Kind)
		default:
			fmt.Fprintf(w, "  ~ %s (%s) will run:\n", s.Address, s.Kind)
			for _, r := range s.Reasons {
				fmt.Fprintf(w, "      %s\n", reasonText(r))
			}
		}
	}
	fmt.Fprintf(w, "\nPlan: %d to run, %d cached.\n", p.Summary.Run, p.Summary.Cached)
}

func isNew(s *planner.StagePlan) bool {
	return len(s.Reasons) == 1 && s.Reasons[0].Kind == planner.ReasonNew
}

func reasonText(r planner.Reason) string {
	switch r.Kind {
	case planner.ReasonSetting:
		return fmt.Sprintf("~ %s: %s -> %s", r.Path, r.Old, r.New)
	case planner.ReasonInput:
		return fmt.Sprintf("~ input %s changed: %s -> %s", r.Path, r.Old, r.New)
	case planner.ReasonKindVersion:
		return fmt.Sprintf("~ kind version %s -> %s", r.Old, r.New)
	case planner.ReasonFingerprint:
		return fmt.Sprintf("~ numeric backend %s -> %s", orNone(r.Old), orNone(r.New))
	case planner.ReasonReplace:
		return "! replace requested (-replace)"
	case planner.ReasonMissingOutput:
		return "! cached result missing or damaged: runs again"
	case planner.ReasonCacheDisabled:
		return "! cache = false: always runs"
	case planner.ReasonNew:
		return "+ new stage"
	}
	return strings.TrimSpace(r.Kind + " " + r.Path)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func humanAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
