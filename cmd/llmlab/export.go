package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/llmlab/llmlab/planner"
	"github.com/llmlab/llmlab/store"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, exportCmd) }

func exportCmd(stdout, stderr io.Writer) *cobra.Command {
	var vf varFlags
	c := &cobra.Command{
		Use:   "export PIPELINE stage.<name>.<output> DEST",
		Short: "Copy an artifact out of the store (verified, read-only)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			pipeline, ref, dest := args[0], args[1], args[2]
			i := strings.LastIndexByte(ref, '.')
			if !strings.HasPrefix(ref, "stage.") || i <= len("stage.") {
				return fmt.Errorf("%q is not an artifact address: write stage.<name>.<output>, as in stage.base.model", ref)
			}
			addr, out := ref[:i], ref[i+1:]
			if _, err := os.Lstat(dest); err == nil {
				return fmt.Errorf("%s already exists; export never overwrites: choose a new destination or remove it", dest)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			cfg, plan, ws, diags := loadPlan(pipeline, vf.inputs(), nil, nil)
			if diags.HasErrors() {
				newDiagPrinter(stderr, cfg).print(diags)
				return &exitError{1}
			}
			defer ws.Close()
			sp := plan.Stage(addr)
			if sp == nil {
				return fmt.Errorf("there is no stage %s in %s", addr, pipeline)
			}
			found := false
			for _, o := range sp.Outputs {
				found = found || o == out
			}
			if !found {
				return fmt.Errorf("%s has no output %q; its outputs are: %s", addr, out, strings.Join(sp.Outputs, ", "))
			}
			if sp.Action != planner.ActionCached {
				return fmt.Errorf("%s has no result for its current settings and inputs; run `llmlab apply %s` first", addr, pipeline)
			}
			k, err := store.ParseActionKey(sp.Key)
			if err != nil {
				return err
			}
			entry, err := ws.Store.GetAction(k)
			if err != nil {
				return err
			}
			a, ok := entry.Outputs[out]
			if !ok {
				return fmt.Errorf("the cached result of %s has no output %q", addr, out)
			}
			if err := ws.Store.Materialize(a, dest); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Exported %s (%s, %d bytes, sha256:%s) to %s.\n", ref, a.Kind, a.Size, a.Digest.Short(), dest)
			return nil
		},
	}
	vf.register(c)
	return c
}
