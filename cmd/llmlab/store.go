package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/llmlab/llmlab/store"
	"github.com/llmlab/llmlab/workspace"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, storeCmd) }

func storeCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cobra.Command{
		Use:   "store",
		Short: "Inspect and maintain the content-addressed store (ls, verify, gc, du)",
		Long: "store works on the `.llmlab` directory beside a pipeline file (or $LLMLAB_HOME). PIPELINE only\n" +
			"locates that directory; it defaults to pipeline.hcl in the current directory.",
	}
	c.AddCommand(storeLsCmd(stdout), storeVerifyCmd(stdout, stderr), storeGCCmd(stdout, stderr), storeDuCmd(stdout))
	return c
}

// openStoreWorkspace opens the workspace of an existing `.llmlab`
// directory; unlike apply it never creates one.
func openStoreWorkspace(args []string) (*workspace.Workspace, error) {
	pipeline := pipelineArg(args)
	dir := workspace.Dir(pipeline)
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		how := fmt.Sprintf("it is made by the first `llmlab apply %s`", pipeline)
		if os.Getenv(workspace.HomeEnv) != "" {
			how = "it was set by " + workspace.HomeEnv
		}
		return nil, fmt.Errorf("there is no llmlab store at %s (%s); pass the pipeline file whose store you mean, or set %s", dir, how, workspace.HomeEnv)
	}
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory, so it cannot be an llmlab store", dir)
	}
	return workspace.Open(pipeline)
}

// lockStore takes the store lock for a command that deletes.
func lockStore(ws *workspace.Workspace, command string, timeout time.Duration, stderr io.Writer) (*store.Lock, func(), error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	l, err := ws.Store.Lock(ctx, store.CurrentOwner(command), timeout, func(holder store.Owner) {
		fmt.Fprintf(stderr, "Waiting for the store lock, held by %s (-lock-timeout %s)...\n", holder, timeout)
	})
	if err != nil {
		stop()
		return nil, nil, err
	}
	return l, func() { l.Unlock(); stop() }, nil
}

// storeBytes renders a byte count with binary units.
func storeBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= 1024
		if f < 1024 || u == "TiB" {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return ""
}

// jsonStoreAction is one action entry in `store ls -json`.
type jsonStoreAction struct {
	Address  string                     `json:"address"`
	Kind     string                     `json:"kind"`
	Key      string                     `json:"key"`
	Started  time.Time                  `json:"started"`
	Finished time.Time                  `json:"finished"`
	Outputs  map[string]jsonStoreOutput `json:"outputs"`
	Metrics  map[string]any             `json:"metrics,omitempty"`
	Log      string                     `json:"log_digest,omitempty"`
}

type jsonStoreOutput struct {
	Kind   string `json:"kind"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// storeJSONMetric keeps NaN and infinities representable in JSON, as strings.
func storeJSONMetric(v float64) any {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return v
}

func storeLsCmd(stdout io.Writer) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls [PIPELINE]",
		Short: "List the action cache: each stored stage result with its outputs",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := openStoreWorkspace(args)
			if err != nil {
				return err
			}
			defer ws.Close()
			entries, err := ws.Store.Actions()
			if err != nil {
				return err
			}
			if asJSON {
				out := struct {
					FormatVersion string            `json:"format_version"`
					Store         string            `json:"store"`
					Actions       []jsonStoreAction `json:"actions"`
				}{"1", ws.Root, []jsonStoreAction{}}
				for _, e := range entries {
					ja := jsonStoreAction{Address: e.Address, Kind: e.Kind, Key: e.Key.String(),
						Started: e.Started, Finished: e.Finished, Outputs: map[string]jsonStoreOutput{}}
					for name, a := range e.Outputs {
						ja.Outputs[name] = jsonStoreOutput{Kind: a.Kind, Digest: a.Digest.String(), Size: a.Size}
					}
					if len(e.Metrics) > 0 {
						ja.Metrics = map[string]any{}
						for k, v := range e.Metrics {
							ja.Metrics[k] = storeJSONMetric(v)
						}
					}
					if !e.LogDigest.IsZero() {
						ja.Log = e.LogDigest.String()
					}
					out.Actions = append(out.Actions, ja)
				}
				return writeJSON(stdout, out)
			}
			if len(entries) == 0 {
				fmt.Fprintf(stdout, "The store at %s holds no action entries.\n", ws.Root)
				return nil
			}
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ADDRESS\tKEY\tFINISHED\tOUTPUTS")
			var total int64
			for _, e := range entries {
				var outs []string
				for _, name := range storeSortedKeys(e.Outputs) {
					a := e.Outputs[name]
					total += a.Size
					o := fmt.Sprintf("%s=%s", name, storeBytes(a.Size))
					if a.Kind == store.KindTree {
						o += " (dir)"
					}
					if !ws.Store.Has(a) {
						o += " (missing)"
					}
					outs = append(outs, o)
				}
				if len(outs) == 0 {
					outs = []string{"-"}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Address, e.Key.Short(),
					e.Finished.Local().Format("2006-01-02 15:04:05"), strings.Join(outs, ", "))
			}
			tw.Flush()
			fmt.Fprintf(stdout, "\n%d action entries; their outputs total %s.\n", len(entries), storeBytes(total))
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (format_version \"1\")")
	return c
}

func storeSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// objectUse is one action entry that refers to an object.
type objectUse struct {
	address string
	key     store.ActionKey
	what    string // output "x", output "x" file a/b, log
}

// objectUses maps each object digest to the action entries that refer to
// it: directly (outputs, logs) or through a tree manifest.
func objectUses(s *store.Store) (map[store.Digest][]objectUse, error) {
	entries, err := s.Actions()
	if err != nil {
		return nil, err
	}
	uses := map[store.Digest][]objectUse{}
	for _, e := range entries {
		for _, name := range storeSortedKeys(e.Outputs) {
			a := e.Outputs[name]
			uses[a.Digest] = append(uses[a.Digest], objectUse{e.Address, e.Key, fmt.Sprintf("output %q", name)})
			if a.Kind != store.KindTree {
				continue
			}
			t, err := s.ReadTree(a.Digest)
			if err != nil {
				continue // the manifest itself is damaged; it is listed above
			}
			for _, te := range t.Entries {
				if !te.Digest.IsZero() {
					uses[te.Digest] = append(uses[te.Digest], objectUse{e.Address, e.Key, fmt.Sprintf("output %q file %s", name, te.Path)})
				}
			}
		}
		if !e.LogDigest.IsZero() {
			uses[e.LogDigest] = append(uses[e.LogDigest], objectUse{e.Address, e.Key, "log"})
		}
	}
	return uses, nil
}

func storeVerifyCmd(stdout, stderr io.Writer) *cobra.Command {
	var repair bool
	var lockTimeout time.Duration
	c := &cobra.Command{
		Use:   "verify [PIPELINE]",
		Short: "Re-hash every stored object and check every action entry",
		Long: "verify re-hashes every object in the store and checks that every action entry is intact and names only\n" +
			"present, intact objects. It exits 1 if it finds a problem, naming each corrupt object and the stages that\n" +
			"use it. With -repair it removes the corrupt objects and the entries that use them, so those stages run\n" +
			"again on the next apply.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := openStoreWorkspace(args)
			if err != nil {
				return err
			}
			defer ws.Close()
			if repair {
				_, unlock, err := lockStore(ws, "llmlab store verify -repair", lockTimeout, stderr)
				if err != nil {
					return err
				}
				defer unlock()
			}
			start := time.Now()
			r, err := ws.Store.Verify()
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Checked %d objects (%s) and %d action entries in %s.\n",
				r.Objects, storeBytes(r.Bytes), r.Actions, fmtDuration(time.Since(start)))
			if r.OK() {
				fmt.Fprintln(stdout, "The store is intact.")
				return nil
			}
			uses, err := objectUses(ws.Store)
			if err != nil {
				return err
			}
			for _, c := range r.Corrupt {
				fmt.Fprintf(stdout, "\nCorrupt object %s\n  path: %s\n  content hashes to %s\n", c.Digest, c.Path, c.Got)
				if len(uses[c.Digest]) == 0 {
					fmt.Fprintln(stdout, "  used by no action entry")
				}
				for _, u := range uses[c.Digest] {
					fmt.Fprintf(stdout, "  used by %s (key %s), %s\n", u.address, u.key.Short(), u.what)
				}
			}
			if len(r.BadActions) > 0 {
				fmt.Fprintln(stdout, "\nAction entries that cannot be served:")
				for _, p := range r.BadActions {
					fmt.Fprintf(stdout, "  %s\n", p)
				}
			}
			if len(r.Stray) > 0 {
				fmt.Fprintln(stdout, "\nFiles in the store that are not objects or action entries (llmlab never writes them; remove them by hand):")
				for _, p := range r.Stray {
					fmt.Fprintf(stdout, "  %s\n", p)
				}
			}
			if !repair {
				fmt.Fprintf(stdout, "\nStore verify found %d corrupt objects, %d unusable action entries and %d stray files.\n",
					len(r.Corrupt), len(r.BadActions), len(r.Stray))
				if len(r.Corrupt)+len(r.BadActions) > 0 {
					fmt.Fprintln(stdout, "Run `llmlab store verify -repair` to remove them; the stages that used them will run again on the next apply.")
				}
				return &exitError{1}
			}
			n, err := ws.Store.Repair(r)
			if err != nil {
				return err
			}
			rerun := map[string]bool{}
			for _, p := range r.BadActions {
				if p.Address != "" {
					rerun[p.Address] = true
				}
			}
			fmt.Fprintf(stdout, "\nRepaired: removed %d files (%d corrupt objects, the rest action entries).\n", n, len(r.Corrupt))
			if len(rerun) > 0 {
				fmt.Fprintf(stdout, "These stages will run again on the next apply: %s.\n", strings.Join(storeSortedKeys(rerun), ", "))
			}
			if len(r.Stray) > 0 {
				fmt.Fprintln(stdout, "The stray files were left in place.")
				return &exitError{1}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&repair, "repair", false, "remove corrupt objects and the action entries that use them")
	c.Flags().DurationVar(&lockTimeout, "lock-timeout", 0, "with -repair, how long to wait for the store lock")
	return c
}

// gcKeep returns, for every pipeline the ledger knows, the action key of
// the latest succeeded or cached execution of each of its stages (not only
// of the stages of its latest run: after `apply -target` that run records
// only the targeted stages, and the others' results are still the ones the
// next full apply reuses), and describes each pipeline's latest run.
func gcKeep(ws *workspace.Workspace) ([]store.ActionKey, []string, error) {
	runs, err := ws.Ledger.LatestRuns()
	if err != nil {
		return nil, nil, err
	}
	latest, err := ws.Ledger.LatestKeys()
	if err != nil {
		return nil, nil, err
	}
	seen := map[store.ActionKey]bool{}
	var keep []store.ActionKey
	var desc []string
	for _, run := range runs {
		keys := latest[run.Pipeline]
		for _, s := range keys {
			k, err := store.ParseActionKey(strings.TrimPrefix(s, "sha256:"))
			if err != nil {
				return nil, nil, fmt.Errorf("the ledger records an action key for %s that the store cannot read: %w", run.Pipeline, err)
			}
			if !seen[k] {
				seen[k] = true
				keep = append(keep, k)
			}
		}
		desc = append(desc, fmt.Sprintf("%s: run %d (%s, %s), %d actions", run.Pipeline, run.ID, run.Status,
			run.Started.Local().Format("2006-01-02 15:04:05"), len(keys)))
	}
	return keep, desc, nil
}

func storeGCCmd(stdout, stderr io.Writer) *cobra.Command {
	var dryRun bool
	var lockTimeout time.Duration
	c := &cobra.Command{
		Use:   "gc [PIPELINE]",
		Short: "Delete what no stage's latest result uses",
		Long: "gc keeps, for every pipeline recorded in this store's ledger, the action entry of the latest successful\n" +
			"(or cached) execution of each of its stages, even if the latest run ran only some of them (-target),\n" +
			"and the objects they refer to; it deletes every other action entry and object, and temp files older than an\n" +
			"hour. It takes the store lock, so it waits for (or, with -lock-timeout 0, refuses during) a running apply.\n" +
			"-dry-run only reports.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := openStoreWorkspace(args)
			if err != nil {
				return err
			}
			defer ws.Close()
			command := "llmlab store gc"
			if dryRun {
				command += " -dry-run"
			}
			_, unlock, err := lockStore(ws, command, lockTimeout, stderr)
			if err != nil {
				return err
			}
			defer unlock()
			keep, desc, err := gcKeep(ws)
			if err != nil {
				return err
			}
			if len(desc) == 0 {
				fmt.Fprintln(stdout, "The ledger records no runs: nothing in the store is in use.")
			} else {
				fmt.Fprintln(stdout, "Keeping the latest result of every stage of each pipeline (latest run, results kept):")
				for _, d := range desc {
					fmt.Fprintf(stdout, "  %s\n", d)
				}
			}
			entries, err := ws.Store.Actions()
			if err != nil {
				return err
			}
			byKey := map[store.ActionKey]*store.ActionEntry{}
			for _, e := range entries {
				byKey[e.Key] = e
			}
			r, err := ws.Store.GC(keep, dryRun)
			if err != nil {
				return err
			}
			verb, done := "Removed", "Store gc removed"
			if dryRun {
				verb, done = "Would remove", "Store gc -dry-run would remove"
			}
			for _, k := range r.ActionsRemoved {
				if e := byKey[k]; e != nil {
					fmt.Fprintf(stdout, "%s %s [%s, finished %s]\n", verb, e.Address, k.Short(), e.Finished.Local().Format("2006-01-02 15:04:05"))
				} else {
					fmt.Fprintf(stdout, "%s damaged action entry %s\n", verb, k.Short())
				}
			}
			fmt.Fprintf(stdout, "%s %d action entries, %d objects and %d temp files, freeing %s; kept %d action entries and %d objects.\n",
				done, len(r.ActionsRemoved), r.ObjectsRemoved, r.TempRemoved, storeBytes(r.BytesFreed), r.ActionsKept, r.ObjectsKept)
			return nil
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be removed, remove nothing")
	c.Flags().DurationVar(&lockTimeout, "lock-timeout", 0, "how long to wait for the store lock held by a running apply")
	return c
}

func storeDuCmd(stdout io.Writer) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "du [PIPELINE]",
		Short: "Show how much the store holds",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := openStoreWorkspace(args)
			if err != nil {
				return err
			}
			defer ws.Close()
			u, err := ws.Store.Du()
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(stdout, map[string]any{
					"format_version": "1", "store": ws.Root,
					"objects": u.Objects, "object_bytes": u.ObjectBytes,
					"actions": u.Actions, "action_bytes": u.ActionBytes,
					"temp_bytes":  u.TempBytes,
					"total_bytes": u.ObjectBytes + u.ActionBytes + u.TempBytes,
				})
			}
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintf(stdout, "Store %s\n", ws.Root)
			fmt.Fprintf(tw, "objects\t%d\t%s\n", u.Objects, storeBytes(u.ObjectBytes))
			fmt.Fprintf(tw, "actions\t%d\t%s\n", u.Actions, storeBytes(u.ActionBytes))
			fmt.Fprintf(tw, "temp\t\t%s\n", storeBytes(u.TempBytes))
			fmt.Fprintf(tw, "total\t\t%s\n", storeBytes(u.ObjectBytes+u.ActionBytes+u.TempBytes))
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (format_version \"1\")")
	return c
}
