package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/llmlab/llmlab/dsl"
	"github.com/llmlab/llmlab/planner"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, graphCmd) }

func graphCmd(stdout, stderr io.Writer) *cobra.Command {
	var vf varFlags
	var format string
	c := &cobra.Command{
		Use:   "graph [PIPELINE]",
		Short: "Print the stage graph as DOT (Graphviz) or Mermaid",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, diags := dsl.ParseFile(pipelineArg(args))
			if !diags.HasErrors() {
				var plan *planner.Plan
				plan, d := planner.Build(cfg, planner.Options{Vars: vf.inputs()})
				diags = append(diags, d...)
				if !diags.HasErrors() {
					switch format {
					case "dot":
						fmt.Fprint(stdout, renderDOT(plan))
					case "mermaid":
						fmt.Fprint(stdout, renderMermaid(plan))
					default:
						return fmt.Errorf("unknown -format %q: use dot or mermaid", format)
					}
					return nil
				}
			}
			newDiagPrinter(stderr, cfg).print(diags)
			return &exitError{1}
		},
	}
	vf.register(c)
	c.Flags().StringVar(&format, "format", "dot", "dot or mermaid")
	return c
}

func renderDOT(p *planner.Plan) string {
	var b strings.Builder
	b.WriteString("digraph llmlab {\n  rankdir = \"LR\";\n  node [shape = box];\n")
	for _, s := range p.Stages {
		fmt.Fprintf(&b, "  %q [label = %q];\n", s.Address, s.Address+"\n("+s.Kind+")")
	}
	for _, s := range p.Stages {
		for _, d := range s.DependsOn {
			fmt.Fprintf(&b, "  %q -> %q;\n", d, s.Address)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

func renderMermaid(p *planner.Plan) string {
	ids := map[string]string{}
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for i, s := range p.Stages {
		ids[s.Address] = fmt.Sprintf("s%d", i)
		label := strings.ReplaceAll(s.Address, `"`, "#quot;")
		fmt.Fprintf(&b, "  s%d[\"%s<br/>(%s)\"]\n", i, label, s.Kind)
	}
	for _, s := range p.Stages {
		for _, d := range s.DependsOn {
			fmt.Fprintf(&b, "  %s --> %s\n", ids[d], ids[s.Address])
		}
	}
	return b.String()
}
