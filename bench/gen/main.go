// Command gen writes the same workflow of N trivial shell steps three ways:
// an llmlab pipeline (exec stages), a Makefile and a Snakefile, so that
// bench/workflow.sh can time llmlab against make and Snakemake on identical
// work.
//
// Shapes:
//
//	chain:  s1 <- s2 <- ... <- sN; step i reads step i-1's output
//	fanout: s1 <- {s2, ..., sN}; every other step reads s1's output
//
// Step i runs `cat <upstream> > /dev/null; echo i > <its output>` (step 1
// has no upstream). Each tool gets one explicitly written rule per step, so
// none of them benefits from pattern or wildcard rules.
//
// Usage: go run ./bench/gen -n 1000 -shape chain -out DIR
// writes DIR/llmlab/pipeline.hcl, DIR/make/Makefile and
// DIR/snakemake/Snakefile, one directory per tool so that no tool sees
// another's outputs.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	n := flag.Int("n", 1000, "number of steps")
	shape := flag.String("shape", "chain", "chain or fanout")
	out := flag.String("out", ".", "directory to write llmlab/pipeline.hcl, make/Makefile and snakemake/Snakefile into")
	flag.Parse()
	if *n < 1 {
		fail(fmt.Errorf("-n must be at least 1, got %d", *n))
	}
	var up func(i int) int // upstream step of step i (0: none)
	switch *shape {
	case "chain":
		up = func(i int) int { return i - 1 }
	case "fanout":
		up = func(i int) int {
			if i == 1 {
				return 0
			}
			return 1
		}
	default:
		fail(fmt.Errorf("unknown -shape %q: use chain or fanout", *shape))
	}
	for path, write := range map[string]func(*bufio.Writer, int, func(int) int){
		"llmlab/pipeline.hcl": writeLLMLab,
		"make/Makefile":       writeMake,
		"snakemake/Snakefile": writeSnake,
	} {
		path = filepath.Join(*out, path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			fail(err)
		}
		if err := writeFile(path, func(w *bufio.Writer) { write(w, *n, up) }); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(1)
}

func writeFile(path string, body func(*bufio.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	body(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeLLMLab(w *bufio.Writer, n int, up func(int) int) {
	fmt.Fprintln(w, "llmlab { version = 1 }")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "\nstage \"exec\" \"s%d\" {\n", i)
		if u := up(i); u > 0 {
			fmt.Fprintf(w, "  command = [\"sh\", \"-c\", \"cat inputs/up > /dev/null; echo %d > out\"]\n", i)
			fmt.Fprintf(w, "  inputs  = { up = stage.s%d.out }\n", u)
		} else {
			fmt.Fprintf(w, "  command = [\"sh\", \"-c\", \"echo %d > out\"]\n", i)
		}
		fmt.Fprintln(w, "  outputs = { out = \"out\" }")
		fmt.Fprintln(w, "}")
	}
}

func writeMake(w *bufio.Writer, n int, up func(int) int) {
	fmt.Fprint(w, ".PHONY: all\nall:")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, " out/s%d", i)
	}
	fmt.Fprintln(w)
	for i := 1; i <= n; i++ {
		if u := up(i); u > 0 {
			fmt.Fprintf(w, "\nout/s%d: out/s%d\n\tcat out/s%d > /dev/null; echo %d > out/s%d\n", i, u, u, i, i)
		} else {
			fmt.Fprintf(w, "\nout/s%d:\n\tmkdir -p out; echo %d > out/s%d\n", i, i, i)
		}
	}
}

func writeSnake(w *bufio.Writer, n int, up func(int) int) {
	fmt.Fprint(w, "rule all:\n    input:")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, " \"out/s%d\",", i)
	}
	fmt.Fprintln(w)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "\nrule s%d:\n", i)
		if u := up(i); u > 0 {
			fmt.Fprintf(w, "    input: \"out/s%d\"\n", u)
			fmt.Fprintf(w, "    output: \"out/s%d\"\n", i)
			fmt.Fprintf(w, "    shell: \"cat {input} > /dev/null; echo %d > {output}\"\n", i)
		} else {
			fmt.Fprintf(w, "    output: \"out/s%d\"\n", i)
			fmt.Fprintf(w, "    shell: \"echo %d > {output}\"\n", i)
		}
	}
}
