package textdata

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/llmlab/llmlab/ml/tokdata"
	"github.com/llmlab/llmlab/ml/tokenizer"
)

func decodeU(tok tokenizer.Tokenizer, ids []uint32) string {
	x := make([]int32, len(ids))
	for i, id := range ids {
		x[i] = int32(id)
	}
	return tok.Decode(x)
}

func TestEncodeText(t *testing.T) {
	text, err := ReadCorpus("testdata/tinyshakespeare_20k.txt")
	if err != nil {
		t.Fatal(err)
	}
	train, val, err := SplitText(text, 0.1, 0)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.TrainChar(train)
	if err != nil {
		t.Fatal(err)
	}
	d, err := EncodeText(tok, train)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != tokdata.KindText || d.VocabSize != tok.VocabSize() || len(d.Tokens) != len([]rune(train)) || decodeU(tok, d.Tokens) != train {
		t.Fatalf("text data: kind %s vocab %d tokens %d", d.Kind, d.VocabSize, len(d.Tokens))
	}
	// Validation text may hold characters training never saw: a clear error.
	if _, err := EncodeText(tok, val+"é"); err == nil || !strings.Contains(err.Error(), "characters not in the tokenizer's vocabulary: 'é' (U+00E9)") {
		t.Fatalf("error = %v", err)
	}
	dir := t.TempDir()
	if err := tokdata.Write(dir, d); err != nil {
		t.Fatal(err)
	}
	back, err := tokdata.Read(dir)
	if err != nil || !reflect.DeepEqual(back, d) {
		t.Fatalf("tokdata round trip: %v", err)
	}
}

func TestEncodeInstructionsMask(t *testing.T) {
	recs, err := ReadInstructions("testdata/instructions_rasbt_8.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []tokenizer.Kind{tokenizer.KindChar, tokenizer.KindByteBPE} {
		for _, name := range []string{"alpaca", "compact"} {
			tmpl, _ := ParseTemplate(name)
			var all strings.Builder
			for _, r := range recs {
				p, a := tmpl.Render(r)
				all.WriteString(p + a)
			}
			tok, err := tokenizer.Train(kind, all.String(), 400)
			if err != nil {
				t.Fatal(err)
			}
			d, st, err := EncodeInstructions(tok, tmpl, recs, MaxLength{})
			if err != nil {
				t.Fatal(err)
			}
			if st.Records != 8 || st.Dropped != 0 || st.Truncated != 0 || st.Tokens != len(d.Tokens) || len(d.RecordStarts) != 8 {
				t.Fatalf("%s/%s: stats %+v", kind, name, st)
			}
			for i, r := range recs {
				start, end := d.Record(i)
				p, a := tmpl.Render(r)
				if got := decodeU(tok, d.Tokens[start:end]); got != p+a+tokenizer.EndOfText {
					t.Fatalf("%s/%s: record %d decodes to %q", kind, name, i, got)
				}
				pids, _ := tok.Encode(p)
				aids, _ := tok.Encode(a)
				wantMask := slices.Concat(make([]byte, len(pids)), slices.Repeat([]byte{1}, len(aids)+1))
				if !slices.Equal(d.LossMask[start:end], wantMask) {
					t.Fatalf("%s/%s: record %d mask %v, want %v", kind, name, i, d.LossMask[start:end], wantMask)
				}
				// The masked tokens are exactly the response and end-of-text.
				var target []uint32
				for j := start; j < end; j++ {
					if d.LossMask[j] == 1 {
						target = append(target, d.Tokens[j])
					}
				}
				if got := decodeU(tok, target); got != a+tokenizer.EndOfText {
					t.Fatalf("%s/%s: record %d targets %q", kind, name, i, got)
				}
				if d.Records[i] != tokdata.Record(r) {
					t.Fatalf("raw record %d: %+v", i, d.Records[i])
				}
			}
			dir := t.TempDir()
			if err := tokdata.Write(dir, d); err != nil {
				t.Fatal(err)
			}
			if back, err := tokdata.Read(dir); err != nil || !reflect.DeepEqual(back, d) {
				t.Fatalf("tokdata round trip: %v", err)
			}
		}
	}
}

func TestEncodeInstructionsMaxLength(t *testing.T) {
	tmpl, _ := ParseTemplate("{instruction}:{output}")
	tok, _ := tokenizer.TrainChar("abcdefghij:")
	recs := []Instruction{
		{Instruction: "ab", Output: "cd"},         // 2+1 + 2 + 1 = 6 tokens
		{Instruction: "abcdef", Output: "ghij"},   // 7 + 4 + 1 = 12
		{Instruction: "abcdefghij", Output: "a"},  // prompt alone 11
		{Instruction: "a", Output: "b"},           // 4
		{Instruction: "abc", Output: "defghijab"}, // 4 + 9 + 1 = 14
	}
	for _, c := range []struct {
		limit   MaxLength
		want    InstructionStats
		lengths []int
	}{
		{MaxLength{}, InstructionStats{Records: 5, Tokens: 6 + 12 + 13 + 4 + 14}, []int{6, 12, 13, 4, 14}},
		{MaxLength{Tokens: 8, Policy: PolicyDrop}, InstructionStats{Records: 2, Dropped: 3, Tokens: 10}, []int{6, 4}},
		{MaxLength{Tokens: 8}, InstructionStats{Records: 2, Dropped: 3, Tokens: 10}, []int{6, 4}},
		{MaxLength{Tokens: 8, Policy: PolicyTruncate}, InstructionStats{Records: 4, Dropped: 1, Truncated: 2, Tokens: 6 + 8 + 4 + 8}, []int{6, 8, 4, 8}},
		{MaxLength{Tokens: 12, Policy: PolicyTruncate}, InstructionStats{Records: 5, Truncated: 2, Tokens: 6 + 12 + 12 + 4 + 12}, []int{6, 12, 12, 4, 12}},
	} {
		d, st, err := EncodeInstructions(tok, tmpl, recs, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if st != c.want {
			t.Errorf("%+v: stats %+v, want %+v", c.limit, st, c.want)
		}
		var lengths []int
		for i := range d.RecordStarts {
			s, e := d.Record(i)
			lengths = append(lengths, e-s)
			if c.limit.Policy == PolicyTruncate && e-s == c.limit.Tokens && d.LossMask[e-1] != 1 {
				t.Errorf("%+v: truncated record %d ends outside the response", c.limit, i)
			}
		}
		if !slices.Equal(lengths, c.lengths) {
			t.Errorf("%+v: record lengths %v, want %v", c.limit, lengths, c.lengths)
		}
		if len(d.Records) != st.Records {
			t.Errorf("%+v: %d raw records", c.limit, len(d.Records))
		}
	}
}

func TestEncodeInstructionsErrors(t *testing.T) {
	tok, _ := tokenizer.TrainChar("abc: ")
	custom, _ := ParseTemplate("{instruction}: {output}")
	compact, _ := ParseTemplate("compact")
	for _, c := range []struct {
		tmpl  Template
		recs  []Instruction
		limit MaxLength
		want  string
	}{
		{custom, []Instruction{{Instruction: "a", Output: "b"}, {Instruction: "a", Input: "c", Output: "b"}}, MaxLength{},
			"record 1 has an input but the template has no {input}: add {input} to the template"},
		{custom, []Instruction{{Instruction: "a", Output: "b"}, {Instruction: "ab", Output: "cz"}}, MaxLength{},
			"record 1: characters not in the tokenizer's vocabulary: 'z' (U+007A); "},
		{compact, []Instruction{{Instruction: "a", Output: "b"}}, MaxLength{},
			"record 0: characters not in the tokenizer's vocabulary: 'Q' (U+0051), '\\n' (U+000A), 'A' (U+0041); "},
		{custom, nil, MaxLength{Tokens: 5, Policy: "cut"}, `max_length policy "cut": use "drop" or "truncate"`},
	} {
		_, _, err := EncodeInstructions(tok, c.tmpl, c.recs, c.limit)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("error = %v\nwant prefix %q", err, c.want)
		}
	}
}

func TestSplitRecords(t *testing.T) {
	var recs []Instruction
	for i := range 2000 {
		recs = append(recs, Instruction{Instruction: fmt.Sprintf("task %d", i), Output: fmt.Sprint(i * i)})
	}
	recs = append(recs, recs[7], recs[1234]) // duplicates
	key := Instruction.Key
	train, val, err := SplitRecords(recs, key, 0.1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(train)+len(val) != len(recs) || len(val) < 150 || len(val) > 250 {
		t.Fatalf("split %d/%d", len(train), len(val))
	}
	side := map[Instruction]bool{}
	for _, r := range val {
		side[r] = true
	}
	for _, r := range train {
		if side[r] {
			t.Fatalf("%+v is in both train and validation", r)
		}
	}
	// Order is kept; the side of a record does not depend on the others.
	sub := recs[500:900]
	subTrain, subVal, _ := SplitRecords(sub, key, 0.1, 0)
	var wantVal []Instruction
	for _, r := range val {
		if slices.Contains(sub, r) {
			wantVal = append(wantVal, r)
		}
	}
	if !slices.Equal(subVal, wantVal) || len(subTrain)+len(subVal) != len(sub) {
		t.Fatal("a record's side changed with the other records")
	}
	// Another seed, another split; the same seed, the same split.
	_, val2, _ := SplitRecords(recs, key, 0.1, 1)
	if slices.Equal(val, val2) {
		t.Fatal("seed 1 gave the same validation set as seed 0")
	}
	_, val3, _ := SplitRecords(recs, key, 0.1, 0)
	if !slices.Equal(val, val3) {
		t.Fatal("not deterministic")
	}
	if _, _, err := SplitRecords(recs, key, 1.5, 0); err == nil || err.Error() != "split validation = 1.5: want a share in [0, 1), such as 0.1" {
		t.Fatalf("error = %v", err)
	}
	train, val, _ = SplitRecords(recs, key, 0, 0)
	if len(val) != 0 || len(train) != len(recs) {
		t.Fatal("validation 0 held records out")
	}
}

func tokenizerForTest(text string) (tokenizer.Tokenizer, error) { return tokenizer.TrainChar(text) }
