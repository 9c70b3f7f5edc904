package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llmlab/llmlab/ledger"
	"github.com/llmlab/llmlab/workspace"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, showCmd) }

func showCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{
		Use:   "show [PIPELINE]",
		Short: "Show the last run of a pipeline: each stage's status, key, duration and metrics",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := pipelineArg(args)
			abs, err := filepath.Abs(path)
			if err != nil {
				return err
			}
			ws, err := workspace.Open(path)
			if err != nil {
				return err
			}
			defer ws.Close()
			run, execs, err := ws.Ledger.LastRun(abs)
			if errors.Is(err, ledger.ErrNoRuns) {
				return fmt.Errorf("%s has not been applied yet: run `llmlab apply %s`", path, path)
			}
			if err != nil {
				return err
			}
			took := ""
			if !run.Finished.IsZero() {
				took = ", took " + fmtDuration(run.Finished.Sub(run.Started))
			}
			fmt.Fprintf(stdout, "Run %d (%s) %s, started %s%s.\n\n", run.ID, run.Command, run.Status, run.Started.Local().Format(time.DateTime), took)
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "STAGE\tSTATUS\tKEY\tDURATION\tMETRICS")
			for _, e := range execs {
				key := e.Key
				if len(key) > 12 {
					key = key[:12]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Address, e.Status, key, fmtDuration(e.Duration), formatMetrics(e.Metrics))
			}
			tw.Flush()
			for _, e := range execs {
				if e.Status == ledger.StageFailed && e.Error != "" {
					fmt.Fprintf(stdout, "\n%s failed: %s\n", e.Address, e.Error)
				}
			}
			return nil
		},
	}
	return c
}

func formatMetrics(m map[string]float64) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + "=" + strconv.FormatFloat(m[k], 'g', -1, 64)
	}
	return strings.Join(parts, " ")
}
