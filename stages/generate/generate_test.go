package generate

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/llmlab/llmlab/ml/textdata"
	"github.com/llmlab/llmlab/stages"
)

func settingsOf(t *testing.T, js string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(js))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func run(t *testing.T, js string) ([]byte, *stages.Result, error) {
	t.Helper()
	job := &stages.Job{WorkDir: t.TempDir(), Settings: settingsOf(t, js)}
	res, err := Kind.Run(context.Background(), job)
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(filepath.Join(job.WorkDir, res.Outputs["data"]))
	if err != nil {
		t.Fatal(err)
	}
	return b, res, nil
}

func TestArithmetic(t *testing.T) {
	js := `{"task": "arithmetic", "count": 50, "seed": 3, "split": "train", "digits": 2, "ops": ["+"], "length": 5}`
	a, res, err := run(t, js)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := run(t, js)
	if !bytes.Equal(a, b) {
		t.Error("two runs differ")
	}
	// data.json is what data_prep and eval read.
	path := filepath.Join(t.TempDir(), "x.json")
	os.WriteFile(path, a, 0o644)
	recs, err := textdata.ReadInstructions(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 50 || res.Metrics["records"] != 50 {
		t.Fatalf("%d records, metrics %v", len(recs), res.Metrics)
	}
	for _, r := range recs {
		var x, y int
		if _, err := fmtSscanf(r.Instruction, &x, &y); err != nil {
			t.Fatalf("instruction %q: %v", r.Instruction, err)
		}
		if r.Output != strconv.Itoa(x+y) {
			t.Errorf("%q -> %q", r.Instruction, r.Output)
		}
	}
	test, _, err := run(t, strings.Replace(js, `"split": "train"`, `"split": "test"`, 1))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(test, a) {
		t.Error("the test split equals the train split")
	}
}

// fmtSscanf reads "What is a + b?".
func fmtSscanf(s string, x, y *int) (int, error) {
	s = strings.TrimPrefix(s, "What is ")
	a, b, ok := strings.Cut(strings.TrimSuffix(s, "?"), " + ")
	if !ok {
		return 0, os.ErrInvalid
	}
	var err error
	if *x, err = strconv.Atoi(a); err != nil {
		return 0, err
	}
	*y, err = strconv.Atoi(b)
	return 2, err
}

func TestBadSettings(t *testing.T) {
	for js, want := range map[string]string{
		`{"task": "reverse", "count": 0, "seed": 0, "split": "train", "digits": 2, "ops": ["+"], "length": 5}`:   "count = 0",
		`{"task": "reverse", "count": 2.5, "seed": 0, "split": "train", "digits": 2, "ops": ["+"], "length": 5}`: "count = 2.5: want a whole number",
	} {
		if _, _, err := run(t, js); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", js, err, want)
		}
	}
}
