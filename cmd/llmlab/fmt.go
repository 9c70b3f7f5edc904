package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, fmtCmd) }

func fmtCmd(stdout, stderr io.Writer) *cobra.Command {
	var check, diff bool
	c := &cobra.Command{
		Use:   "fmt [FILE or DIR ...]",
		Short: "Rewrite pipeline files in the canonical format",
		Long:  "fmt rewrites .hcl files in the canonical HCL style. With -check it changes nothing and exits 3 if a file is not formatted; -diff shows the changes.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			var files []string
			for _, a := range args {
				st, err := os.Stat(a)
				if err != nil {
					return err
				}
				if !st.IsDir() {
					files = append(files, a)
					continue
				}
				matches, _ := filepath.Glob(filepath.Join(a, "*.hcl"))
				files = append(files, matches...)
			}
			unformatted := false
			for _, f := range files {
				src, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				_, diags := hclwrite.ParseConfig(src, f, hcl.InitialPos)
				if diags.HasErrors() {
					wr := hcl.NewDiagnosticTextWriter(stderr, nil, 0, false)
					_ = wr.WriteDiagnostics(diags)
					return &exitError{1}
				}
				out := hclwrite.Format(src)
				if bytes.Equal(src, out) {
					continue
				}
				unformatted = true
				fmt.Fprintln(stdout, f)
				if diff {
					fmt.Fprint(stdout, lineDiff(f, string(src), string(out)))
				}
				if !check {
					st, _ := os.Stat(f)
					if err := os.WriteFile(f, out, st.Mode().Perm()); err != nil {
						return err
					}
				}
			}
			if check && unformatted {
				return &exitError{3}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&check, "check", false, "change nothing; exit 3 if any file is not formatted")
	c.Flags().BoolVar(&diff, "diff", false, "show the formatting changes")
	return c
}

// lineDiff is a minimal unified-style diff: lines removed then added, per
// changed line (formatting never reorders lines).
func lineDiff(name, a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s (formatted)\n", name, name)
	n := max(len(al), len(bl))
	for i := 0; i < n; i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			fmt.Fprintf(&sb, "@@ line %d @@\n-%s\n+%s\n", i+1, x, y)
		}
	}
	return sb.String()
}
