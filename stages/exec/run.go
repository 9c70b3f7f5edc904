package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/llmlab/llmlab/stages"
)

// DefaultGrace is how long a cancelled command gets between SIGTERM and
// SIGKILL.
const DefaultGrace = 5 * time.Second

type graceKey struct{}

// WithGrace sets, for the commands run under ctx, how long they get to exit
// after SIGTERM before they are killed.
func WithGrace(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, graceKey{}, d)
}

func graceOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(graceKey{}).(time.Duration); ok && d > 0 {
		return d
	}
	return DefaultGrace
}

// tailLines is how many lines of output a failure reports.
const tailLines = 20

type settings struct {
	Command []string          `json:"command"`
	Outputs map[string]string `json:"outputs"`
	Env     map[string]string `json:"env"`
	Metrics *string           `json:"metrics"`
}

// EnvName is the environment variable that holds the path of input name:
// LLMLAB_INPUT_ and the name in upper case, non-alphanumerics as '_'.
func EnvName(name string) string {
	var b strings.Builder
	b.WriteString("LLMLAB_INPUT_")
	for _, r := range strings.ToUpper(name) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Run runs the command in the work directory with a minimal environment,
// in its own process group so that cancellation reaches its children: on
// ctx's end the group gets SIGTERM, then SIGKILL after the grace period.
// When the command exits, what is left in its process group is killed.
func (Kind) Run(ctx context.Context, job *stages.Job) (*stages.Result, error) {
	var s settings
	if err := stages.DecodeSettings(job.Settings, &s); err != nil {
		return nil, fmt.Errorf("exec settings: %w", err)
	}
	if len(s.Command) == 0 {
		return nil, errors.New("command is empty: give at least the program to run, as in command = [\"python3\", \"train.py\"]")
	}
	outs := map[string]string{}
	for name, p := range s.Outputs {
		if !filepath.IsLocal(p) {
			return nil, fmt.Errorf("declared output %q (%s) must be a relative path inside the work directory", name, p)
		}
		outs[name] = filepath.Clean(p)
	}
	if s.Metrics != nil && !filepath.IsLocal(*s.Metrics) {
		return nil, fmt.Errorf("metrics file %s must be a relative path inside the work directory", *s.Metrics)
	}

	tmp := job.TempDir
	if tmp == "" {
		var err error
		tmp, err = os.MkdirTemp(filepath.Dir(job.WorkDir), "tmp-")
		if err != nil {
			return nil, fmt.Errorf("creating the stage's TMPDIR: %w", err)
		}
		defer os.RemoveAll(tmp)
	}

	env := baseEnv(tmp)
	for k, v := range s.Env {
		env[k] = v
	}
	for path, abs := range job.Inputs {
		env[EnvName(strings.TrimPrefix(path, "inputs."))] = abs
	}
	envList := make([]string, 0, len(env))
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	sort.Strings(envList)

	argv0 := s.Command[0]
	if !strings.Contains(argv0, "/") {
		// Look the program up in the stage's PATH, not llmlab's.
		if p, err := lookPath(argv0, env["PATH"]); err == nil {
			argv0 = p
		} else {
			return nil, fmt.Errorf("cannot run %q: not found in PATH (%s)", s.Command[0], env["PATH"])
		}
	}
	tail := &tailWriter{max: tailLines}
	var log io.Writer = tail
	if job.Log != nil {
		log = io.MultiWriter(job.Log, tail)
	}
	cmd := &osexec.Cmd{
		Path:        argv0,
		Args:        s.Command,
		Dir:         job.WorkDir,
		Env:         envList,
		Stdout:      log,
		Stderr:      log,
		SysProcAttr: sysProcAttr(),
		WaitDelay:   graceOf(ctx) + time.Second,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %q: %w", s.Command[0], err)
	}
	done := make(chan struct{})
	var killed sync.WaitGroup
	killed.Add(1)
	go func() {
		defer killed.Done()
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(graceOf(ctx))
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}()
	werr := cmd.Wait()
	close(done)
	killed.Wait()
	// Whatever the command left running in its process group ends with
	// it: the stage's work directory and TMPDIR are emptied and reused
	// once it is done, and nothing may write into them afterwards.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("command stopped: %w", context.Cause(ctx))
	}
	if werr != nil {
		var ee *osexec.ExitError
		if errors.As(werr, &ee) {
			status := ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				status = 128 + int(ws.Signal())
			}
			return nil, &stages.ExitError{Status: status, Tail: tail.String()}
		}
		return nil, fmt.Errorf("running %q: %w", s.Command[0], werr)
	}

	res := &stages.Result{Outputs: outs}
	if s.Metrics != nil {
		m, err := readMetrics(filepath.Join(job.WorkDir, *s.Metrics), *s.Metrics)
		if err != nil {
			return nil, err
		}
		res.Metrics = m
	}
	return res, nil
}

func baseEnv(tmp string) map[string]string {
	env := map[string]string{"TMPDIR": tmp}
	for _, k := range []string{"PATH", "HOME", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	if env["PATH"] == "" {
		env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
	}
	return env
}

func lookPath(file, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return filepath.Abs(p)
		}
	}
	return "", osexec.ErrNotFound
}

// readMetrics reads a flat JSON object of numbers.
func readMetrics(abs, rel string) (map[string]float64, error) {
	b, err := os.ReadFile(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("metrics file %s was not produced by the command", rel)
	}
	if err != nil {
		return nil, fmt.Errorf("metrics file %s: %w", rel, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("metrics file %s is not a JSON object of numbers: %v", rel, err)
	}
	out := make(map[string]float64, len(raw))
	for k, v := range raw {
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			var s string
			if json.Unmarshal(v, &s) == nil {
				switch s {
				case "NaN":
					out[k] = math.NaN()
					continue
				case "Infinity", "+Inf", "inf":
					out[k] = math.Inf(1)
					continue
				case "-Infinity", "-Inf", "-inf":
					out[k] = math.Inf(-1)
					continue
				}
			}
			return nil, fmt.Errorf("metrics file %s: %q is %s, not a number (metrics must be a flat JSON object of numbers)", rel, k, bytes.TrimSpace(v))
		}
		out[k] = f
	}
	return out, nil
}

// tailWriter keeps the last max lines written to it.
type tailWriter struct {
	mu    sync.Mutex
	max   int
	lines []string
	part  []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.push(string(t.part[:i]))
		t.part = t.part[i+1:]
	}
	if len(t.part) > 64<<10 { // an endless line: keep its end
		t.part = t.part[len(t.part)-4096:]
	}
	return len(p), nil
}

func (t *tailWriter) push(l string) {
	t.lines = append(t.lines, l)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(t.part) > 0 {
		lines = append(append([]string{}, lines...), string(t.part))
		if len(lines) > t.max {
			lines = lines[len(lines)-t.max:]
		}
	}
	return strings.Join(lines, "\n")
}
