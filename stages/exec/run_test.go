package exec

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmlab/llmlab/stages"
)

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"base": "LLMLAB_INPUT_BASE", "my-data.v2": "LLMLAB_INPUT_MY_DATA_V2", "x9": "LLMLAB_INPUT_X9"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadMetrics(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "m.json")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m, err := readMetrics(write(`{"acc": 0.25, "loss": "NaN", "n": 3}`), "m.json")
	if err != nil || m["acc"] != 0.25 || m["n"] != 3 || !math.IsNaN(m["loss"]) {
		t.Fatalf("got %v, %v", m, err)
	}
	for body, want := range map[string]string{
		`[1, 2]`:          "metrics file m.json is not a JSON object of numbers",
		`{"a": {"b": 1}}`: `metrics file m.json: "a" is {"b": 1}, not a number`,
		`{"acc": "high"}`: `metrics file m.json: "acc" is "high", not a number`,
		`{"acc": 1`:       "metrics file m.json is not a JSON object of numbers",
	} {
		if _, err := readMetrics(write(body), "m.json"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to contain %q", body, err, want)
		}
	}
	if _, err := readMetrics(filepath.Join(dir, "none.json"), "none.json"); err == nil || err.Error() != "metrics file none.json was not produced by the command" {
		t.Errorf("missing file: %v", err)
	}
}

func run(t *testing.T, settings map[string]any) (*stages.Result, error) {
	t.Helper()
	work := filepath.Join(t.TempDir(), "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	return Kind{}.Run(context.Background(), &stages.Job{Address: "stage.t", WorkDir: work, Settings: settings})
}

func TestRunErrors(t *testing.T) {
	_, err := run(t, map[string]any{"command": []any{"no-such-program-llmlab"}, "outputs": map[string]any{}})
	if err == nil || !strings.Contains(err.Error(), `cannot run "no-such-program-llmlab": not found in PATH`) {
		t.Errorf("unknown program: %v", err)
	}
	_, err = run(t, map[string]any{"command": []any{"true"}, "outputs": map[string]any{"o": "../escape"}})
	if err == nil || err.Error() != `declared output "o" (../escape) must be a relative path inside the work directory` {
		t.Errorf("escaping output: %v", err)
	}
	_, err = run(t, map[string]any{"command": []any{"sh", "-c", "echo out; echo err >&2; exit 4"}, "outputs": map[string]any{}})
	var xe *stages.ExitError
	if !errors.As(err, &xe) || xe.Status != 4 || xe.Tail != "out\nerr" {
		t.Errorf("exit error: %#v", err)
	}
	_, err = run(t, map[string]any{"command": []any{"sh", "-c", "kill -9 $$"}, "outputs": map[string]any{}})
	if !errors.As(err, &xe) || xe.Status != 137 {
		t.Errorf("killed command: %#v", err)
	}
}

// TestNothingOutlivesTheCommand: a process the command leaves behind in its
// process group is killed when the command exits, so it cannot write into
// the work directory or TMPDIR after the stage (they are reused).
func TestNothingOutlivesTheCommand(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "leaked")
	_, err := run(t, map[string]any{
		"command": []any{"sh", "-c", "(sleep 0.3; touch " + mark + ") >/dev/null 2>&1 &"},
		"outputs": map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(800 * time.Millisecond)
	if _, err := os.Stat(mark); err == nil {
		t.Error("a process left behind by the command outlived it")
	}
}
