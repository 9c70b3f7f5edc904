package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/llmlab/llmlab/dsl"
	"github.com/llmlab/llmlab/planner"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, outputCmd) }

// outputJSON is one output in `output -json` (see docs/json.md).
type outputJSON struct {
	Sensitive bool `json:"sensitive"`
	Known     bool `json:"known"`
	Value     any  `json:"value,omitempty"`
}

func outputCmd(stdout, stderr io.Writer) *cobra.Command {
	var vf varFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "output [PIPELINE] [NAME]",
		Short: "Print the values of output blocks, from the results in the store",
		Long: "output evaluates the pipeline's output blocks with the metrics of the stages whose current settings have\n" +
			"been applied; values of stages that would run are (known after apply). Sensitive outputs print as (sensitive).",
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			cfg, plan, ws, diags := loadPlan(pipelineArg(args), vf.inputs(), nil, nil)
			if diags.HasErrors() {
				newDiagPrinter(stderr, cfg).print(diags)
				return &exitError{1}
			}
			defer ws.Close()
			if cfg == nil {
				// The plan came from the plan cache; output blocks need
				// the parsed pipeline.
				if cfg, diags = dsl.ParseFile(pipelineArg(args)); diags.HasErrors() {
					newDiagPrinter(stderr, cfg).print(diags)
					return &exitError{1}
				}
			}
			metrics := map[string]map[string]float64{}
			for _, s := range plan.Stages {
				if s.Action != planner.ActionCached {
					continue
				}
				st, err := ws.Action(s.Key)
				if err != nil {
					return err
				}
				m := st.Metrics
				if m == nil {
					m = map[string]float64{}
				}
				metrics[s.Address] = m
			}
			vals, d := planner.EvalOutputs(cfg, planner.Options{Vars: vf.inputs()}, plan, metrics)
			if d.HasErrors() {
				newDiagPrinter(stderr, cfg).print(d)
				return &exitError{1}
			}
			if name != "" {
				var found *planner.OutputValue
				var names []string
				for i := range vals {
					names = append(names, vals[i].Name)
					if vals[i].Name == name {
						found = &vals[i]
					}
				}
				if found == nil {
					return fmt.Errorf("there is no output named %q in %s.%s", name, pipelineArg(args), dsl.DidYouMean(name, names))
				}
				vals = []planner.OutputValue{*found}
			}
			if asJSON {
				if name != "" {
					return writeJSON(stdout, toOutputJSON(vals[0]))
				}
				all := map[string]outputJSON{}
				for _, v := range vals {
					all[v.Name] = toOutputJSON(v)
				}
				return writeJSON(stdout, all)
			}
			if len(vals) == 0 {
				fmt.Fprintln(stdout, "The pipeline has no outputs.")
				return nil
			}
			for _, v := range vals {
				if name != "" {
					fmt.Fprintln(stdout, showOutput(v))
				} else {
					fmt.Fprintf(stdout, "%s = %s\n", v.Name, showOutput(v))
				}
			}
			return nil
		},
	}
	vf.register(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print outputs as JSON")
	return c
}

func toOutputJSON(v planner.OutputValue) outputJSON {
	return outputJSON{Sensitive: v.Sensitive, Known: v.Known, Value: v.Value}
}

func showOutput(v planner.OutputValue) string {
	switch {
	case v.Sensitive:
		return planner.Redacted
	case v.Value == planner.Unknown:
		return planner.Unknown
	}
	b, _ := json.Marshal(v.Value)
	return string(b)
}
