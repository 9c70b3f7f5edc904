package main

import (
	"fmt"
	"io"

	"github.com/llmlab/llmlab/dsl"
	"github.com/llmlab/llmlab/planner"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, validateCmd) }

func validateCmd(stdout, stderr io.Writer) *cobra.Command {
	var vf varFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "validate [PIPELINE]",
		Short: "Check a pipeline file: syntax, kinds, settings, references, cycles",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := pipelineArg(args)
			cfg, diags := dsl.ParseFile(path)
			if !diags.HasErrors() {
				// Planning against an empty in-memory cache validates the whole
				// graph without touching the workspace.
				_, d := planner.Build(cfg, planner.Options{Vars: vf.inputs()})
				diags = append(diags, d...)
			}
			if asJSON {
				var files = newDiagPrinter(nil, cfg).files
				_ = writeJSON(stdout, map[string]any{
					"format_version": "1",
					"valid":          !diags.HasErrors(),
					"error_count":    len(diags.Errs()),
					"diagnostics":    toJSONDiags(diags, files),
				})
			} else {
				newDiagPrinter(stderr, cfg).print(diags)
				if !diags.HasErrors() {
					fmt.Fprintf(stdout, "%s is valid: %d stages.\n", path, len(cfg.Stages))
				}
			}
			if diags.HasErrors() {
				return &exitError{1}
			}
			return nil
		},
	}
	vf.register(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print diagnostics as JSON")
	return c
}
