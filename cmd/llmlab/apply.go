package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"golang.org/x/term"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/llmlab/llmlab/dsl"
	"github.com/llmlab/llmlab/executor"
	"github.com/llmlab/llmlab/ledger"
	"github.com/llmlab/llmlab/planner"
	"github.com/llmlab/llmlab/store"
	"github.com/llmlab/llmlab/workspace"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, applyCmd) }

func applyCmd(stdout, stderr io.Writer) *cobra.Command {
	var pf planFlags
	var parallelism int
	var keepGoing bool
	var lockTimeout, grace time.Duration
	c := &cobra.Command{
		Use:   "apply [PIPELINE | PLANFILE]",
		Short: "Run the pipeline's stages that are not cached",
		Long: "apply plans the pipeline and runs every stage that is not cached, in dependency order, storing outputs\n" +
			"in the content-addressed store. Given a plan file saved with `plan -out`, it runs that plan, refusing if\n" +
			"the pipeline or any input changed since. apply does not ask for confirmation.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			arg := pipelineArg(args)
			var (
				plan *planner.Plan
				ws   *workspace.Workspace
				lock *store.Lock
			)
			takeLock := func() error {
				l, err := ws.Store.Lock(ctx, store.CurrentOwner("llmlab apply "+arg), lockTimeout, func(holder store.Owner) {
					if lockTimeout > 0 {
						fmt.Fprintf(stderr, "Waiting for the store lock, held by %s (-lock-timeout %s)...\n", holder, lockTimeout)
					}
				})
				if err != nil {
					return err
				}
				lock = l
				if l.Stale != nil && l.Stale.PID != 0 {
					fmt.Fprintf(stderr, "Took over the store lock left by %s, which is no longer running.\n", l.Stale)
				}
				return nil
			}
			if isPlanFile(arg) {
				if len(pf.vars)+len(pf.files)+len(pf.targets)+len(pf.replace) > 0 {
					return fmt.Errorf("%s is a saved plan: its variables, targets and replacements were fixed by `plan -out`; make a new plan to change them", arg)
				}
				p, err := planner.ReadFile(arg)
				if err != nil {
					return err
				}
				plan = p
				if ws, err = workspace.Open(plan.Pipeline); err != nil {
					return err
				}
				defer ws.Close()
				if err := takeLock(); err != nil {
					return err
				}
				defer lock.Unlock()
				if err := checkFresh(arg, plan, ws); err != nil {
					return err
				}
			} else {
				var cfg *dsl.Config
				if !workspaceExists(arg) {
					// No plan cache yet: parse first, so that a pipeline
					// with errors does not create a workspace.
					var diags hcl.Diagnostics
					if cfg, diags = dsl.ParseFile(arg); diags.HasErrors() {
						newDiagPrinter(stderr, cfg).print(diags)
						return &exitError{1}
					}
				}
				var err error
				if ws, err = workspace.Open(arg); err != nil {
					return err
				}
				defer ws.Close()
				if err := takeLock(); err != nil {
					if cfg == nil {
						// The parse was left for after the lock (the plan
						// cache may spare it); an error in the pipeline
						// matters more to the user than the lock.
						if c, diags := dsl.ParseFile(arg); diags.HasErrors() {
							newDiagPrinter(stderr, c).print(diags)
							return &exitError{1}
						}
					}
					return err
				}
				defer lock.Unlock()
				cfg, p, d := planPipeline(arg, cfg, ws, planner.Options{Vars: pf.inputs(), Targets: pf.targets, Replace: pf.replace, Cache: ws})
				newDiagPrinter(stderr, cfg).print(d)
				if d.HasErrors() {
					return &exitError{1}
				}
				plan = p
			}
			renderPlan(stdout, plan.Public(), time.Now())
			fmt.Fprintln(stdout)
			return runPlan(ctx, stdout, stderr, ws, plan, executor.Options{Parallelism: parallelism, KeepGoing: keepGoing, Grace: grace})
		},
	}
	pf.register(c)
	c.Flags().IntVar(&parallelism, "parallelism", 0, "CPU tokens shared by running stages (default: the number of CPUs)")
	c.Flags().BoolVar(&keepGoing, "keep-going", false, "after a failure, still run the stages that do not depend on it")
	c.Flags().DurationVar(&lockTimeout, "lock-timeout", 0, "how long to wait for another apply to release the store lock")
	c.Flags().DurationVar(&grace, "kill-grace", 5*time.Second, "after Ctrl-C, how long running commands get between SIGTERM and SIGKILL")
	return c
}

// isPlanFile tells a saved plan (JSON) from a pipeline (HCL).
func isPlanFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 512)
	n, _ := f.Read(b)
	return bytes.HasPrefix(bytes.TrimSpace(b[:n]), []byte("{"))
}

// checkFresh refuses a saved plan whose pipeline or inputs changed.
func checkFresh(planFile string, plan *planner.Plan, ws *workspace.Workspace) error {
	var changed []string
	src, err := os.ReadFile(plan.Pipeline)
	if err != nil {
		return fmt.Errorf("the saved plan %s is for %s, which cannot be read: %w", planFile, plan.Pipeline, err)
	}
	sum := sha256.Sum256(src)
	if "sha256:"+hex.EncodeToString(sum[:]) != plan.PipelineDigest {
		changed = append(changed, plan.Pipeline)
	}
	paths := make([]string, 0, len(plan.Files))
	for p := range plan.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if d, err := ws.Digest(p); err != nil || d != plan.Files[p] {
			changed = append(changed, p)
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("the saved plan %s is out of date: changed since it was made: %s; make a new plan with `llmlab plan -out %s`", planFile, strings.Join(changed, ", "), planFile)
	}
	return nil
}

// runPlan executes a plan under a ledger run and prints progress and the
// outcome.
func runPlan(ctx context.Context, stdout, stderr io.Writer, ws *workspace.Workspace, plan *planner.Plan, opts executor.Options) error {
	pr := &progressPrinter{w: stdout, last: map[string]time.Time{}, tty: isTerminal(stdout)}
	opts.Events = pr.event
	opts.Output = pr
	// apply plans under the store lock (a saved plan: no entries were
	// read), so the entries read while planning are still those on disk.
	opts.Entries = ws.Entry
	sum, status, err := executor.New(ws.Store, ws.Ledger, opts).Apply(ctx, plan, "apply")
	if err != nil {
		return err
	}
	for _, r := range sum.Stages {
		if r.Status != executor.StatusFailed {
			continue
		}
		fmt.Fprintf(stderr, "Error: %s failed: %s\n", r.Address, r.Err)
		if r.Tail != "" {
			fmt.Fprintf(stderr, "  Last lines of its output:\n")
			for _, l := range strings.Split(r.Tail, "\n") {
				fmt.Fprintf(stderr, "    %s\n", l)
			}
		}
	}
	counts := fmt.Sprintf("%d ran, %d cached, %d failed", sum.Ran, sum.Cached, sum.Failed)
	if sum.Skipped > 0 {
		counts += fmt.Sprintf(", %d skipped", sum.Skipped)
	}
	if sum.Interrupted > 0 {
		counts += fmt.Sprintf(", %d interrupted", sum.Interrupted)
	}
	d := fmtDuration(sum.Duration)
	switch status {
	case ledger.RunSucceeded:
		fmt.Fprintf(stdout, "\nApply complete: %s (%s).\n", counts, d)
		return nil
	case ledger.RunInterrupted:
		fmt.Fprintf(stdout, "\nApply interrupted: %s (%s).\n", counts, d)
	default:
		fmt.Fprintf(stdout, "\nApply failed: %s (%s).\n", counts, d)
	}
	return &exitError{1}
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds()))
	}
	return d.Round(time.Second).String()
}

// progressPrinter writes one plain line per stage event. On a terminal,
// progress reports instead rewrite one live status line in place.
type progressPrinter struct {
	mu     sync.Mutex
	w      io.Writer
	last   map[string]time.Time // last progress line per stage
	tty    bool
	status bool // a live status line is on screen
}

// Write passes stage output through, clearing the live line first.
func (p *progressPrinter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearStatus()
	return p.w.Write(b)
}

func (p *progressPrinter) clearStatus() {
	if p.status {
		fmt.Fprint(p.w, "\r\033[K")
		p.status = false
	}
}

func (p *progressPrinter) event(ev executor.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Kind != executor.EventProgress {
		p.clearStatus()
	}
	switch ev.Kind {
	case executor.EventStarted:
		if ev.Attempt > 1 {
			fmt.Fprintf(p.w, "%s: running (attempt %d)\n", ev.Address, ev.Attempt)
		} else {
			fmt.Fprintf(p.w, "%s: running\n", ev.Address)
		}
	case executor.EventSucceeded:
		fmt.Fprintf(p.w, "%s: done in %s\n", ev.Address, fmtDuration(ev.Duration))
	case executor.EventCached:
		fmt.Fprintf(p.w, "%s: cached\n", ev.Address)
	case executor.EventFailed:
		fmt.Fprintf(p.w, "%s: failed after %s: %s\n", ev.Address, fmtDuration(ev.Duration), ev.Err)
	case executor.EventRetrying:
		fmt.Fprintf(p.w, "%s: %s (%s); retrying\n", ev.Address, ev.Message, ev.Err)
	case executor.EventSkipped:
		fmt.Fprintf(p.w, "%s: skipped, %s\n", ev.Address, ev.Err)
	case executor.EventInterrupted:
		fmt.Fprintf(p.w, "%s: interrupted after %s\n", ev.Address, fmtDuration(ev.Duration))
	case executor.EventNotice:
		fmt.Fprintf(p.w, "%s: %s\n", ev.Address, ev.Message)
	case executor.EventProgress:
		if t, ok := p.last[ev.Address]; !p.tty && ok && time.Since(t) < 5*time.Second {
			return
		}
		p.last[ev.Address] = time.Now()
		pg := ev.Progress
		var parts []string
		if pg.Steps > 0 {
			parts = append(parts, fmt.Sprintf("step %d/%d", pg.Step, pg.Steps))
		}
		if pg.Loss != 0 {
			parts = append(parts, fmt.Sprintf("loss %.4f", pg.Loss))
		}
		if pg.TokensPerS > 0 {
			parts = append(parts, fmt.Sprintf("%.0f tok/s", pg.TokensPerS))
		}
		if pg.ETA > 0 {
			parts = append(parts, "ETA "+pg.ETA.Round(time.Second).String())
		}
		if pg.Message != "" {
			parts = append(parts, pg.Message)
		}
		if p.tty {
			fmt.Fprintf(p.w, "\r\033[K%s: %s", ev.Address, strings.Join(parts, ", "))
			p.status = true
			return
		}
		fmt.Fprintf(p.w, "%s: %s\n", ev.Address, strings.Join(parts, ", "))
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
