package textdata

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// TaskSpec is a `generate "<task>" { ... }` block: a task whose answers can
// be checked exactly.
//
//   - "arithmetic": "What is a + b?" / "What is a - b?" with operands drawn
//     uniformly from [0, 10^Digits); the output is the exact result (it may
//     be negative).
//   - "reverse": reverse a string of Length lower-case letters (a-z).
//   - "sort": sort a string of Length lower-case letters alphabetically.
//
// The problem space is partitioned once and for all into a test part (about
// TestShare of it) and a train part by a hash of each problem that depends
// on nothing else (not on the seed, the count or the other settings), so a
// test problem never appears in a training set, whatever the seeds. Within
// a part, problems are distinct and drawn by Seed.
type TaskSpec struct {
	Task   string   // "arithmetic", "reverse" or "sort"
	Count  int      // number of records
	Seed   int64    // draws the problems
	Split  string   // "train" (default) or "test"
	Digits int      // arithmetic: operand digits, 1..9, default 2
	Ops    []string // arithmetic: among "+" and "-", default both
	Length int      // reverse and sort: string length, 1..64, default 5
}

// TestShare is the share of each task's problem space in its test part.
const TestShare = 0.2

// Task names.
const (
	TaskArithmetic = "arithmetic"
	TaskReverse    = "reverse"
	TaskSort       = "sort"
)

const (
	reverseInstruction = "Reverse the letters."
	sortInstruction    = "Sort the letters alphabetically."
	letters            = "abcdefghijklmnopqrstuvwxyz"
	// enumerateLimit: a part of a problem space at most this large is
	// listed and shuffled; larger ones are sampled.
	enumerateLimit = 1 << 20
)

// InTestSplit says whether a problem of task belongs to the test part.
// problem is "12+345" / "7-80" for arithmetic and the input string for
// reverse and sort.
func InTestSplit(task, problem string) bool {
	return unitHash("task\x00"+task+"\x00"+problem) < TestShare
}

// problem is one drawn task instance.
type problem interface {
	key() string
	record() Instruction
}

type arith struct {
	a, b int64
	op   string
}

func (p arith) key() string { return strconv.FormatInt(p.a, 10) + p.op + strconv.FormatInt(p.b, 10) }
func (p arith) record() Instruction {
	r := p.a + p.b
	if p.op == "-" {
		r = p.a - p.b
	}
	return Instruction{
		Instruction: fmt.Sprintf("What is %d %s %d?", p.a, p.op, p.b),
		Output:      strconv.FormatInt(r, 10),
	}
}

type strTask struct {
	task, s string
}

func (p strTask) key() string { return p.s }
func (p strTask) record() Instruction {
	b := []byte(p.s)
	if p.task == TaskReverse {
		slices.Reverse(b)
		return Instruction{Instruction: reverseInstruction, Input: p.s, Output: string(b)}
	}
	slices.Sort(b)
	return Instruction{Instruction: sortInstruction, Input: p.s, Output: string(b)}
}

// Generate returns spec.Count records of the task; the same spec always
// gives the same records.
func Generate(spec TaskSpec) ([]Instruction, error) {
	errf := func(format string, args ...any) error {
		return fmt.Errorf("generate %q: "+format, append([]any{spec.Task}, args...)...)
	}
	if spec.Count < 1 {
		return nil, errf("count = %d: want at least 1", spec.Count)
	}
	wantTest := false
	switch spec.Split {
	case "", "train":
	case "test":
		wantTest = true
	default:
		return nil, errf("split = %q: use \"train\" or \"test\"", spec.Split)
	}
	var space uint64               // number of problems
	var nth func(i uint64) problem // the i-th problem
	desc := ""
	switch spec.Task {
	case TaskArithmetic:
		digits := spec.Digits
		if digits == 0 {
			digits = 2
		}
		if digits < 1 || digits > 9 {
			return nil, errf("digits = %d: want 1 to 9", spec.Digits)
		}
		ops := spec.Ops
		if len(ops) == 0 {
			ops = []string{"+", "-"}
		}
		seen := map[string]bool{}
		var uniq []string
		for _, op := range ops {
			if op != "+" && op != "-" {
				return nil, errf("ops: %q is not supported; use \"+\" and/or \"-\"", op)
			}
			if !seen[op] {
				seen[op] = true
				uniq = append(uniq, op)
			}
		}
		m := uint64(math.Pow10(digits))
		space = m * m * uint64(len(uniq))
		nth = func(i uint64) problem {
			return arith{int64(i / uint64(len(uniq)) / m), int64(i / uint64(len(uniq)) % m), uniq[i%uint64(len(uniq))]}
		}
		desc = fmt.Sprintf("digits = %d and ops = %q", digits, uniq)
	case TaskReverse, TaskSort:
		length := spec.Length
		if length == 0 {
			length = 5
		}
		if length < 1 || length > 64 {
			return nil, errf("length = %d: want 1 to 64", spec.Length)
		}
		space = math.MaxUint64
		if float64(length)*math.Log2(26) < 63 {
			space = uint64(math.Pow(26, float64(length)))
		}
		task := spec.Task
		nth = func(i uint64) problem {
			b := make([]byte, length)
			for k := length - 1; k >= 0; k-- {
				b[k] = letters[i%26]
				i /= 26
			}
			return strTask{task, string(b)}
		}
		if space == math.MaxUint64 { // too many to number: draw letters
			nth = nil
		}
		desc = fmt.Sprintf("length = %d", length)
	default:
		return nil, fmt.Errorf("unknown task %q: use %q, %q or %q", spec.Task, TaskArithmetic, TaskReverse, TaskSort)
	}

	part := "train"
	if wantTest {
		part = "test"
	}
	inPart := func(p problem) bool { return InTestSplit(spec.Task, p.key()) == wantTest }
	r := newRNG(spec.Seed)
	var out []Instruction
	if space <= enumerateLimit {
		var all []problem
		for i := range space {
			if p := nth(i); inPart(p) {
				all = append(all, p)
			}
		}
		if len(all) < spec.Count {
			return nil, errf("count = %d, but only %d %s problems exist for %s; lower count or enlarge the problem space", spec.Count, len(all), part, desc)
		}
		// A partial Fisher-Yates shuffle draws Count distinct problems.
		for i := range spec.Count {
			j := i + int(r.intn(uint64(len(all)-i)))
			all[i], all[j] = all[j], all[i]
			out = append(out, all[i].record())
		}
		return out, nil
	}
	if float64(spec.Count) > float64(space)*0.1 {
		return nil, errf("count = %d is too large a share of the %d problems for %s; lower count or enlarge the problem space", spec.Count, space, desc)
	}
	seen := map[string]bool{}
	for len(out) < spec.Count {
		var p problem
		if nth != nil {
			p = nth(r.intn(space))
		} else {
			length := spec.Length
			b := make([]byte, length)
			for k := range b {
				b[k] = letters[r.intn(26)]
			}
			p = strTask{spec.Task, string(b)}
		}
		if !inPart(p) || seen[p.key()] {
			continue
		}
		seen[p.key()] = true
		out = append(out, p.record())
	}
	return out, nil
}

// rng is SplitMix64: small, fast and fixed forever, so generated data does
// not change with the Go version.
type rng struct{ s uint64 }

func newRNG(seed int64) *rng { return &rng{uint64(seed)} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a uniform number in [0, n), n > 0, without modulo bias.
func (r *rng) intn(n uint64) uint64 {
	limit := math.MaxUint64 - math.MaxUint64%n
	for {
		if v := r.next(); v < limit {
			return v % n
		}
	}
}
