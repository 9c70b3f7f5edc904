package textdata

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// problemKey recovers the problem a generated record poses, independently
// of the generator's own key function.
func problemKey(t *testing.T, task string, r Instruction) string {
	t.Helper()
	if task != TaskArithmetic {
		return r.Input
	}
	var a, b int64
	var op string
	if _, err := fmt.Sscanf(r.Instruction, "What is %d %s %d?", &a, &op, &b); err != nil {
		t.Fatalf("instruction %q: %v", r.Instruction, err)
	}
	return fmt.Sprintf("%d%s%d", a, op, b)
}

// checkRecord verifies the answer from the question.
func checkRecord(t *testing.T, spec TaskSpec, r Instruction) {
	t.Helper()
	switch spec.Task {
	case TaskArithmetic:
		var a, b int64
		var op string
		fmt.Sscanf(r.Instruction, "What is %d %s %d?", &a, &op, &b)
		limit := int64(1)
		for range spec.Digits {
			limit *= 10
		}
		want := a + b
		if op == "-" {
			want = a - b
		}
		if r.Output != strconv.FormatInt(want, 10) || a < 0 || b < 0 || a >= limit || b >= limit || !slices.Contains(spec.Ops, op) || r.Input != "" {
			t.Fatalf("%+v: wrong record %+v", spec, r)
		}
	case TaskReverse:
		rs := []rune(r.Input)
		slices.Reverse(rs)
		if r.Output != string(rs) || len(r.Input) != spec.Length || r.Instruction != reverseInstruction {
			t.Fatalf("%+v: wrong record %+v", spec, r)
		}
	case TaskSort:
		rs := []rune(r.Input)
		slices.Sort(rs)
		if r.Output != string(rs) || len(r.Input) != spec.Length || strings.Trim(r.Input, letters) != "" {
			t.Fatalf("%+v: wrong record %+v", spec, r)
		}
	}
}

func TestGenerateTrainTestNeverOverlap(t *testing.T) {
	for _, base := range []TaskSpec{
		{Task: TaskArithmetic, Digits: 1, Ops: []string{"+", "-"}, Count: 30},   // 200 problems: enumerated
		{Task: TaskArithmetic, Digits: 2, Ops: []string{"+", "-"}, Count: 1500}, // 20,000: enumerated
		{Task: TaskArithmetic, Digits: 3, Ops: []string{"-", "+"}, Count: 2000}, // 2,000,000: sampled
		{Task: TaskArithmetic, Digits: 4, Ops: []string{"+"}, Count: 2000},      // 10^8: sampled
		{Task: TaskReverse, Length: 2, Count: 100},                              // 676: enumerated
		{Task: TaskReverse, Length: 5, Count: 2000},                             // 26^5: sampled
		{Task: TaskSort, Length: 3, Count: 1000},
		{Task: TaskSort, Length: 30, Count: 500}, // 26^30: drawn letter by letter
	} {
		testKeys := map[string]bool{}
		for seed := int64(0); seed < 3; seed++ {
			spec := base
			spec.Split, spec.Seed = "test", seed
			recs, err := Generate(spec)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != spec.Count {
				t.Fatalf("%+v: %d records", spec, len(recs))
			}
			seen := map[string]bool{}
			for _, r := range recs {
				checkRecord(t, spec, r)
				k := problemKey(t, spec.Task, r)
				if seen[k] {
					t.Fatalf("%+v: problem %s twice", spec, k)
				}
				seen[k], testKeys[k] = true, true
			}
		}
		for seed := int64(0); seed < 3; seed++ {
			spec := base
			spec.Split, spec.Seed = "train", seed+100
			if seed == 0 {
				spec.Split = "" // train is the default
			}
			recs, err := Generate(spec)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				checkRecord(t, spec, r)
				if k := problemKey(t, spec.Task, r); testKeys[k] {
					t.Fatalf("%+v: training problem %s is also a test problem", spec, k)
				}
			}
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	for _, spec := range []TaskSpec{
		{Task: TaskArithmetic, Count: 50, Seed: 7},
		{Task: TaskArithmetic, Count: 50, Seed: 7, Digits: 5},
		{Task: TaskReverse, Count: 50, Seed: 7},
		{Task: TaskSort, Count: 50, Seed: 7, Split: "test", Length: 3},
	} {
		a, err := Generate(spec)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Generate(spec)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%+v: two runs differ", spec)
		}
		spec.Seed++
		c, _ := Generate(spec)
		if reflect.DeepEqual(a, c) {
			t.Fatalf("%+v: seeds %d and %d give the same records", spec, spec.Seed-1, spec.Seed)
		}
	}
	// Defaults: 2 digits, both ops; length 5.
	recs, _ := Generate(TaskSpec{Task: TaskArithmetic, Count: 300})
	ops := map[string]bool{}
	for _, r := range recs {
		checkRecord(t, TaskSpec{Task: TaskArithmetic, Digits: 2, Ops: []string{"+", "-"}}, r)
		ops[strings.Fields(r.Instruction)[3]] = true
	}
	if len(ops) != 2 {
		t.Fatalf("ops used: %v", ops)
	}
	recs, _ = Generate(TaskSpec{Task: TaskReverse, Count: 3})
	checkRecord(t, TaskSpec{Task: TaskReverse, Length: 5}, recs[0])
}

func TestGenerateErrors(t *testing.T) {
	// The test part of 1-digit additions: count it from InTestSplit.
	nTest := 0
	for a := range 10 {
		for b := range 10 {
			if InTestSplit(TaskArithmetic, fmt.Sprintf("%d+%d", a, b)) {
				nTest++
			}
		}
	}
	if nTest < 5 || nTest > 40 {
		t.Fatalf("%d of 100 problems in the test part", nTest)
	}
	for _, c := range []struct {
		spec TaskSpec
		want string
	}{
		{TaskSpec{Task: "multiply", Count: 1}, `unknown task "multiply": use "arithmetic", "reverse" or "sort"`},
		{TaskSpec{Task: TaskArithmetic}, `generate "arithmetic": count = 0: want at least 1`},
		{TaskSpec{Task: TaskArithmetic, Count: 1, Split: "dev"}, `generate "arithmetic": split = "dev": use "train" or "test"`},
		{TaskSpec{Task: TaskArithmetic, Count: 1, Digits: 10}, `generate "arithmetic": digits = 10: want 1 to 9`},
		{TaskSpec{Task: TaskArithmetic, Count: 1, Ops: []string{"*"}}, `generate "arithmetic": ops: "*" is not supported; use "+" and/or "-"`},
		{TaskSpec{Task: TaskArithmetic, Count: 50, Digits: 1, Ops: []string{"+", "+"}, Split: "test"},
			fmt.Sprintf(`generate "arithmetic": count = 50, but only %d test problems exist for digits = 1 and ops = ["+"]; lower count or enlarge the problem space`, nTest)},
		{TaskSpec{Task: TaskReverse, Count: 1, Length: 65}, `generate "reverse": length = 65: want 1 to 64`},
		{TaskSpec{Task: TaskSort, Count: 2000000, Length: 5}, `generate "sort": count = 2000000 is too large a share of the 11881376 problems for length = 5; lower count or enlarge the problem space`},
	} {
		_, err := Generate(c.spec)
		if err == nil || err.Error() != c.want {
			t.Errorf("%+v: error = %v\nwant %q", c.spec, err, c.want)
		}
	}
}

// Generated records go through the whole instruction path.
func TestGenerateEncodes(t *testing.T) {
	recs, err := Generate(TaskSpec{Task: TaskArithmetic, Count: 20, Seed: 3, Digits: 2})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := ParseTemplate("compact")
	var all strings.Builder
	for _, r := range recs {
		p, a := tmpl.Render(r)
		all.WriteString(p + a)
	}
	tok, err := tokenizerForTest(all.String() + "0123456789-")
	if err != nil {
		t.Fatal(err)
	}
	d, st, err := EncodeInstructions(tok, tmpl, recs, MaxLength{Tokens: 64})
	if err != nil || st.Records != 20 || st.Dropped != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	if d.Records[0].Instruction != recs[0].Instruction {
		t.Fatal("raw records not kept")
	}
}
