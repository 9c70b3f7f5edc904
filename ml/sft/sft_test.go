package sft

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/ml/lora"
	"github.com/llmlab/llmlab/ml/textdata"
	"github.com/llmlab/llmlab/ml/tokdata"
	"github.com/llmlab/llmlab/ml/tokenizer"
)

const alphabet = "abcdefghijklmnopqrstuvwxyz:? \n"

func charTok(t *testing.T) tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.TrainChar(alphabet)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// letterRecords: the prompt is a random string of a and b, the answer "z".
func letterRecords(n int, seed uint64) []textdata.Instruction {
	r := rand.New(rand.NewPCG(seed, 0))
	var recs []textdata.Instruction
	for range n {
		var b strings.Builder
		for range 6 + r.IntN(4) {
			b.WriteByte("ab"[r.IntN(2)])
		}
		recs = append(recs, textdata.Instruction{Instruction: b.String(), Output: "z"})
	}
	return recs
}

func encode(t *testing.T, tok tokenizer.Tokenizer, recs []textdata.Instruction) *tokdata.Data {
	t.Helper()
	tmpl, err := textdata.ParseTemplate("{instruction}?{output}")
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := textdata.EncodeInstructions(tok, tmpl, recs, textdata.MaxLength{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func smallSettings(steps int) gpt.TrainSettings {
	s := gpt.DefaultTrainSettings()
	s.Steps, s.BatchSize, s.LearningRate, s.WarmupSteps = steps, 8, 3e-3, 5
	s.EvalEvery, s.EvalBatches, s.CheckpointEvery = 0, 2, 0
	return s
}

func newModel(t *testing.T, tok tokenizer.Tokenizer, seed uint64) *gpt.Model {
	t.Helper()
	m, err := gpt.New(gpt.Config{Layers: 1, Heads: 2, Dim: 16, Context: 16, Vocab: tok.VocabSize()})
	if err != nil {
		t.Fatal(err)
	}
	m.Init(seed)
	return m
}

// Batch rows are whole records: the mask is 0 exactly on the targets that
// are prompt tokens and on the padding.
func TestExamplesAndBatch(t *testing.T) {
	tok := charTok(t)
	recs := letterRecords(5, 1)
	exs, st, err := Examples(encode(t, tok, recs), 16)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 5 || st.Truncated != 0 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	eot := tok.EndOfText()
	inputs, targets, mask, B, T := Batch(exs, eot)
	longest := 0
	for _, r := range recs {
		longest = max(longest, len(r.Instruction)+1+1+1) // prompt, "?", "z", end of text
	}
	if B != 5 || T != longest-1 {
		t.Fatalf("batch %dx%d, want 5x%d", B, T, longest-1)
	}
	for b, r := range recs {
		p := len(r.Instruction) + 1 // prompt tokens (one per character)
		n := p + 2                  // + "z" + end of text
		for j := range T {
			want := uint8(0)
			if j+1 >= p && j+1 < n {
				want = 1
			}
			if mask[b*T+j] != want {
				t.Fatalf("record %d position %d: mask %d, want %d", b, j, mask[b*T+j], want)
			}
			if j+1 < n && targets[b*T+j] != exs[b].Tokens[j+1] || j < n-1 && inputs[b*T+j] != exs[b].Tokens[j] {
				t.Fatalf("record %d position %d: not the shifted record", b, j)
			}
			if j >= n-1 && (inputs[b*T+j] != eot || targets[b*T+j] != eot) {
				t.Fatalf("record %d position %d: padding is not the end-of-text token", b, j)
			}
		}
	}
	// Records longer than the context are cut; one with nothing left to learn is dropped.
	_, st, err = Examples(encode(t, tok, recs), 7)
	if err != nil {
		t.Fatal(err)
	}
	if st.Dropped+st.Records != 5 || st.Dropped == 0 {
		t.Fatalf("context 7: stats %+v, want some records dropped", st)
	}
	_, st, _ = Examples(encode(t, tok, recs[:1]), len(recs[0].Instruction)+1)
	if st.Truncated != 1 || st.Records != 1 {
		t.Fatalf("cut after the answer: stats %+v, want 1 truncated record kept", st)
	}
}

func TestExamplesNeedInstructions(t *testing.T) {
	_, _, err := Examples(&tokdata.Data{Kind: tokdata.KindText, VocabSize: 3, Tokens: []uint32{1, 2}}, 8)
	if err == nil || !strings.Contains(err.Error(), `fine-tuning needs instruction data (records with a loss mask) from data_prep with format = "instructions"; got text data`) {
		t.Fatalf("error %v", err)
	}
}

// promptLoss is the mean loss on the prompt targets (mask 0, not padding)
// and on the answer targets.
func promptAndAnswerLoss(t *testing.T, m *gpt.Model, exs []Example, pad int32) (prompt, answer float64) {
	t.Helper()
	var inv []Example
	for _, e := range exs {
		f := Example{Tokens: e.Tokens, Mask: make([]uint8, len(e.Mask))}
		for i := 1; i < len(e.Mask); i++ {
			f.Mask[i] = 1 - e.Mask[i]
		}
		inv = append(inv, f)
	}
	var err error
	if prompt, err = Loss(m, inv, len(inv), 1, pad); err != nil {
		t.Fatal(err)
	}
	if answer, err = Loss(m, exs, len(exs), 1, pad); err != nil {
		t.Fatal(err)
	}
	return
}

// The loss mask keeps the prompt out of training. The prompts are random
// strings of a and b: a model that learned them would predict their
// letters with loss near ln 2 = 0.69. The same training with the mask
// removed does exactly that, so this test fails without the mask.
func TestLossMaskExcludesPrompt(t *testing.T) {
	tok := charTok(t)
	exs, _, err := Examples(encode(t, tok, letterRecords(64, 2)), 16)
	if err != nil {
		t.Fatal(err)
	}
	eot := tok.EndOfText()
	var unmasked []Example
	for _, e := range exs {
		u := Example{Tokens: e.Tokens, Mask: slices.Repeat([]uint8{1}, len(e.Mask))}
		unmasked = append(unmasked, u)
	}
	s := smallSettings(120)
	m0 := newModel(t, tok, 1)
	p0, _ := promptAndAnswerLoss(t, m0, exs, eot)

	m := newModel(t, tok, 1)
	if _, err := Train(context.Background(), m, exs, nil, s, Options{Pad: eot}); err != nil {
		t.Fatal(err)
	}
	p, a := promptAndAnswerLoss(t, m, exs, eot)

	mu := newModel(t, tok, 1)
	if _, err := Train(context.Background(), mu, unmasked, nil, s, Options{Pad: eot}); err != nil {
		t.Fatal(err)
	}
	pu, _ := promptAndAnswerLoss(t, mu, exs, eot)
	t.Logf("prompt loss: start %.3f, masked training %.3f, unmasked training %.3f; answer loss masked %.3f", p0, p, pu, a)
	if a > 0.2 {
		t.Errorf("masked training did not learn the answer: loss %.3f", a)
	}
	if pu > 1.0 {
		t.Errorf("unmasked training should learn the prompts (loss %.3f); the test cannot tell masked from unmasked", pu)
	}
	if p < pu+1.0 {
		t.Errorf("masked training learned the prompts: loss %.3f (unmasked %.3f, start %.3f)", p, pu, p0)
	}
}

// The step's loss is the mean over the response targets only, as a plain
// computation from the logits says.
func TestStepLossCountsOnlyResponse(t *testing.T) {
	tok := charTok(t)
	exs, _, _ := Examples(encode(t, tok, letterRecords(4, 3)), 16)
	m := newModel(t, tok, 3)
	inputs, targets, mask, B, T := Batch(exs, tok.EndOfText())
	loss, err := m.Forward(inputs, targets, mask, B, T)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Forward(inputs, nil, nil, B, T); err != nil {
		t.Fatal(err)
	}
	V := m.Config.Vocab
	var masked, all float64
	n := 0
	for i := range B * T {
		row := m.Logits()[i*V : (i+1)*V]
		mx := float64(slices.Max(row))
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v) - mx)
		}
		ce := mx + math.Log(z) - float64(row[targets[i]])
		all += ce
		if mask[i] == 1 {
			masked += ce
			n++
		}
	}
	masked /= float64(n)
	all /= float64(B * T)
	if math.Abs(float64(loss)-masked) > 1e-4 {
		t.Fatalf("step loss %.6f, mean over response targets %.6f", loss, masked)
	}
	if math.Abs(masked-all) < 1e-3 {
		t.Fatalf("masked and unmasked means agree (%.6f): the data cannot show the mask", masked)
	}
}

// byFirst sets each output to ifA when the prompt starts with a, else ifB.
func byFirst(recs []textdata.Instruction, ifA, ifB string) []textdata.Instruction {
	recs = slices.Clone(recs)
	for i := range recs {
		recs[i].Output = ifB
		if recs[i].Instruction[0] == 'a' {
			recs[i].Output = ifA
		}
	}
	return recs
}

// LoRA training changes only the adapter: every parameter outside the
// targeted weights keeps its bits, and the targeted ones are base + s·AᵀBᵀ.
// The base first learns to answer y after a prompt starting with a and z
// after one starting with b (a random model's head is too weak for any
// adapter to steer); the adapter then teaches it the swapped answers.
func TestLoRATrainsOnlyAdapter(t *testing.T) {
	tok := charTok(t)
	recs := letterRecords(32, 4)
	m := newModel(t, tok, 4)
	ys, _, _ := Examples(encode(t, tok, byFirst(recs, "y", "z")), 16)
	if _, err := Train(context.Background(), m, ys, nil, smallSettings(200), Options{Pad: tok.EndOfText()}); err != nil {
		t.Fatal(err)
	}
	exs, _, _ := Examples(encode(t, tok, byFirst(recs, "z", "y")), 16)
	base := slices.Clone(m.Params)
	ad, err := lora.New(m, lora.Config{Rank: 4, Alpha: 8, Targets: []string{"attn", "mlp"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := Loss(m, exs, 8, 4, tok.EndOfText())
	s := smallSettings(80)
	s.LearningRate = 1e-2
	res, err := Train(context.Background(), m, exs, nil, s, Options{Adapter: ad, Pad: tok.EndOfText()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("answer loss %.3f -> %.3f", before, res.TrainLoss)
	if !(res.TrainLoss < 0.2 && before > 1) {
		t.Fatalf("LoRA training loss %.3f, was %.3f", res.TrainLoss, before)
	}
	baseModel, _ := gpt.New(m.Config)
	copy(baseModel.Params, base)
	targeted := map[string]bool{}
	for _, md := range ad.Modules {
		targeted[md.Name+".weight"] = true
	}
	bt := baseModel.Tensors()
	for i, tn := range m.Tensors() {
		if targeted[tn.Name] {
			if slices.Equal(tn.Data, bt[i].Data) {
				t.Errorf("%s did not change", tn.Name)
			}
			continue
		}
		if !slices.Equal(tn.Data, bt[i].Data) {
			t.Errorf("%s changed under LoRA", tn.Name)
		}
	}
	// Re-applying the adapter to a fresh base gives the same merged model.
	ad2, err := lora.New(baseModel, ad.Config, 1)
	if err != nil {
		t.Fatal(err)
	}
	copy(ad2.Params, ad.Params)
	ad2.Apply()
	if !slices.Equal(baseModel.Params, m.Params) {
		t.Fatal("the trained model is not base + adapter")
	}
}

// An interrupted run resumed from its checkpoint ends with the same bits.
func TestCheckpointResume(t *testing.T) {
	tok := charTok(t)
	exs, _, _ := Examples(encode(t, tok, letterRecords(20, 5)), 16)
	s := smallSettings(12)
	s.CheckpointEvery, s.EvalEvery = 5, 4
	for _, method := range []string{"full", "lora"} {
		run := func(dir string, stopAt int) (*gpt.Model, *gpt.TrainResult, error) {
			m := newModel(t, tok, 5)
			opt := Options{Pad: tok.EndOfText(), CheckpointDir: dir}
			if method == "lora" {
				ad, err := lora.New(m, lora.Config{Rank: 2, Alpha: 2, Targets: []string{"attn_proj"}}, 3)
				if err != nil {
					t.Fatal(err)
				}
				opt.Adapter = ad
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opt.Progress = func(p gpt.Progress) {
				if p.Step == stopAt {
					cancel()
				}
			}
			res, err := Train(ctx, m, exs, exs[:4], s, opt)
			return m, res, err
		}
		whole, wres, err := run("", -1)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if _, _, err := run(dir, 7); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: interrupted run: %v", method, err)
		}
		resumed, rres, err := run(dir, -1)
		if err != nil {
			t.Fatal(err)
		}
		if rres.ResumedFrom != 5 {
			t.Fatalf("%s: resumed from %d, want 5", method, rres.ResumedFrom)
		}
		if !slices.Equal(whole.Params, resumed.Params) {
			t.Fatalf("%s: resumed run ends with different parameters", method)
		}
		if len(rres.History) != len(wres.History) || rres.ValLoss != wres.ValLoss {
			t.Fatalf("%s: history %v, want %v", method, rres.History, wres.History)
		}
	}
}

func TestTrainErrors(t *testing.T) {
	tok := charTok(t)
	m := newModel(t, tok, 1)
	exs, _, _ := Examples(encode(t, tok, letterRecords(2, 1)), 16)
	if _, err := Train(context.Background(), m, nil, nil, smallSettings(2), Options{}); err == nil || err.Error() != "the training data holds no records" {
		t.Errorf("no records: %v", err)
	}
	if _, err := Train(context.Background(), m, exs, nil, smallSettings(0), Options{}); err == nil || !strings.Contains(err.Error(), "training needs steps >= 1") {
		t.Errorf("0 steps: %v", err)
	}
	long := []Example{{Tokens: make([]int32, 30), Mask: slices.Repeat([]uint8{1}, 30)}}
	if _, err := Train(context.Background(), m, long, nil, smallSettings(1), Options{}); err == nil || !strings.Contains(err.Error(), "a record of 30 tokens is longer than the model's context 16 + 1") {
		t.Errorf("long record: %v", err)
	}
}

func TestExactMatch(t *testing.T) {
	tok := charTok(t)
	recs := letterRecords(32, 6)
	exs, _, _ := Examples(encode(t, tok, recs), 16)
	m := newModel(t, tok, 6)
	if _, err := Train(context.Background(), m, exs, nil, smallSettings(60), Options{Pad: tok.EndOfText()}); err != nil {
		t.Fatal(err)
	}
	tmpl, _ := textdata.ParseTemplate("{instruction}?{output}")
	test := letterRecords(10, 7)
	score, res, err := ExactMatch(m, tok, tmpl, test, 4, "trim")
	if err != nil {
		t.Fatal(err)
	}
	if score != 1 || len(res) != 10 || res[0].Generated != "z" || !res[0].Match {
		t.Fatalf("score %v, first %+v", score, res[0])
	}
	for i := range test {
		test[i].Output = "y"
	}
	if score, _, _ = ExactMatch(m, tok, tmpl, test, 4, "trim"); score != 0 {
		t.Fatalf("wrong answers scored %v", score)
	}
	test[0].Output = " Z\n"
	if score, _, _ = ExactMatch(m, tok, tmpl, test[:1], 4, "lower"); score != 1 {
		t.Fatalf("lower: %v", score)
	}
	if score, _, _ = ExactMatch(m, tok, tmpl, test[:1], 4, "none"); score != 0 {
		t.Fatalf("none: %v", score)
	}
	if _, _, err := ExactMatch(m, tok, tmpl, []textdata.Instruction{{Instruction: "ab%"}}, 4, "trim"); err == nil || !strings.Contains(err.Error(), "record 0") || !strings.Contains(err.Error(), "%") {
		t.Errorf("unencodable prompt: %v", err)
	}
	if _, _, err := ExactMatch(m, tok, tmpl, test, 4, "upper"); err == nil || err.Error() != `normalize "upper": use "none", "trim" or "lower"` {
		t.Errorf("bad normalize: %v", err)
	}
}
