package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/llmlab/llmlab/dsl"
	"github.com/llmlab/llmlab/stages"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, versionCmd) }

func versionCmd(stdout, _ io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the llmlab version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(stdout, "llmlab %s\n", version)
			fmt.Fprintf(stdout, "language version %d\n", dsl.LanguageVersion)
			fmt.Fprintf(stdout, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(stdout, "stage kinds: %v\n", stages.Names())
		},
	}
}
