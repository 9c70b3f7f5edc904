package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/llmlab/llmlab/dsl"
	"github.com/llmlab/llmlab/planner"
	_ "github.com/llmlab/llmlab/stages/all"
	"github.com/llmlab/llmlab/workspace"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// exitError ends the command with a given exit code after its output was
// already written.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "Error: %s\n", err)
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "llmlab",
		Short:         "Run LLM experiments written down as code",
		Long:          "llmlab plans and runs pipelines of LLM stages (data prep, pretrain, finetune, eval, exec, ...) described in HCL,\nwith every artifact in a local content-addressed store.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, c := range commands {
		root.AddCommand(c(stdout, stderr))
	}
	return root
}

// commands are added by each command's file.
var commands []func(stdout, stderr io.Writer) *cobra.Command

// terraformFlags lets users write Terraform-style single-dash long flags
// (-var, -out, -json): pflag wants two dashes for long names.
func terraformFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && !isNumber(a) {
			a = "-" + a
		}
		out = append(out, a)
	}
	return out
}

func isNumber(s string) bool {
	var f float64
	_, err := fmt.Sscan(s, &f)
	return err == nil
}

// varFlags are the flags that give variable values.
type varFlags struct {
	vars  []string
	files []string
}

func (v *varFlags) register(c *cobra.Command) {
	c.Flags().StringArrayVar(&v.vars, "var", nil, "set a variable: -var name=value (repeatable)")
	c.Flags().StringArrayVar(&v.files, "var-file", nil, "read variables from an HCL file (repeatable)")
}

func (v *varFlags) inputs() dsl.VarInputs {
	return dsl.VarInputs{Env: os.Environ(), Files: v.files, Vars: v.vars}
}

// diagPrinter renders hcl diagnostics with file:line:col and snippets.
type diagPrinter struct {
	w     io.Writer
	files map[string]*hcl.File
}

func newDiagPrinter(w io.Writer, cfg *dsl.Config) *diagPrinter {
	p := &diagPrinter{w: w}
	if cfg != nil && cfg.Parser != nil {
		p.files = cfg.Parser.Files()
	}
	return p
}

func (p *diagPrinter) print(diags hcl.Diagnostics) {
	if len(diags) == 0 {
		return
	}
	width, color := uint(0), false
	if f, ok := p.w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			width = uint(w)
		}
		color = os.Getenv("NO_COLOR") == ""
	}
	wr := hcl.NewDiagnosticTextWriter(p.w, p.files, width, color)
	_ = wr.WriteDiagnostics(diags)
}

// jsonDiagnostic is the -json form of a diagnostic (see docs/json.md).
type jsonDiagnostic struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *jsonRange `json:"range,omitempty"`
	Snippet  string     `json:"snippet,omitempty"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

func toJSONDiags(diags hcl.Diagnostics, files map[string]*hcl.File) []jsonDiagnostic {
	out := []jsonDiagnostic{}
	for _, d := range diags {
		jd := jsonDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if d.Subject != nil {
			r := d.Subject
			jd.Range = &jsonRange{Filename: r.Filename,
				Start: jsonPos{r.Start.Line, r.Start.Column, r.Start.Byte},
				End:   jsonPos{r.End.Line, r.End.Column, r.End.Byte}}
			if f, ok := files[r.Filename]; ok && f != nil {
				jd.Snippet = lineOf(f.Bytes, r.Start.Line)
			}
		}
		out = append(out, jd)
	}
	return out
}

func lineOf(src []byte, line int) string {
	lines := strings.Split(string(src), "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	return lines[line-1]
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// loadPlan parses a pipeline and plans it against its workspace.
func loadPlan(path string, vars dsl.VarInputs, targets, replace []string) (*dsl.Config, *planner.Plan, *workspace.Workspace, hcl.Diagnostics) {
	var (
		cfg   *dsl.Config
		diags hcl.Diagnostics
	)
	if !workspaceExists(path) {
		// A new workspace has no plan cache: parse first, so that a
		// pipeline with errors does not create one.
		if cfg, diags = dsl.ParseFile(path); diags.HasErrors() {
			return cfg, nil, nil, diags
		}
	}
	ws, err := workspace.Open(path)
	if err != nil {
		return cfg, nil, nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot open the workspace", Detail: err.Error()})
	}
	cfg, plan, d := planPipeline(path, cfg, ws, planner.Options{Vars: vars, Targets: targets, Replace: replace, Cache: ws})
	diags = append(diags, d...)
	if diags.HasErrors() {
		ws.Close()
		return cfg, nil, nil, diags
	}
	return cfg, plan, ws, diags
}

// workspaceExists reports whether the pipeline's .llmlab directory exists.
func workspaceExists(path string) bool {
	fi, err := os.Stat(workspace.Dir(path))
	return err == nil && fi.IsDir()
}

// planPipeline plans the pipeline at path against ws. cfg is the parsed
// pipeline, or nil: then the evaluation cached in the workspace is reused
// when nothing it depends on changed (see workspace.PlanKey), and the
// pipeline is parsed only otherwise. The returned cfg is nil when the
// cache was used. A fresh evaluation without diagnostics is cached.
func planPipeline(path string, cfg *dsl.Config, ws *workspace.Workspace, opts planner.Options) (*dsl.Config, *planner.Plan, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	key := ""
	if cfg == nil {
		src, err := os.ReadFile(path)
		if err != nil {
			cfg, diags = dsl.ParseFile(path) // reports the error
			return cfg, nil, diags
		}
		key = ws.PlanKey(path, src, opts.Vars)
		if cached := ws.CachedPlan(key); cached != nil {
			plan, d := planner.Finish(cached, path, opts)
			return nil, plan, d
		}
		if cfg, diags = dsl.Parse(path, src); diags.HasErrors() {
			return cfg, nil, diags
		}
	} else {
		key = ws.PlanKey(path, cfg.Source, opts.Vars)
	}
	plan, d := planner.Evaluate(cfg, opts)
	diags = append(diags, d...)
	if diags.HasErrors() {
		return cfg, nil, diags
	}
	if len(diags) == 0 {
		ws.SavePlan(key, plan)
	}
	plan, d = planner.Finish(plan, path, opts)
	diags = append(diags, d...)
	if diags.HasErrors() {
		return cfg, nil, diags
	}
	return cfg, plan, diags
}

func pipelineArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return "pipeline.hcl"
}
