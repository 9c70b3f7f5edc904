package sft

import (
	"fmt"
	"strings"

	"github.com/llmlab/llmlab/ml/gpt"
	"github.com/llmlab/llmlab/ml/textdata"
	"github.com/llmlab/llmlab/ml/tokenizer"
)

// Normalizations are eval exact_match's `normalize` values.
var Normalizations = []string{"none", "trim", "lower"}

// Normalize applies an exact_match normalisation (the eval stage's too):
// "none" keeps the text, "trim" (or "") removes leading and trailing white
// space, "lower" trims, lower-cases and makes inner runs of white space one
// space.
func Normalize(s, how string) (string, error) {
	switch how {
	case "none":
		return s, nil
	case "trim", "":
		return strings.TrimSpace(s), nil
	case "lower":
		return strings.Join(strings.Fields(strings.ToLower(s)), " "), nil
	}
	return "", fmt.Errorf("normalize %q: use \"none\", \"trim\" or \"lower\"", how)
}

// MatchResult is one scored record.
type MatchResult struct {
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Expected    string `json:"expected"`
	Generated   string `json:"generated"`
	Match       bool   `json:"match"`
}

// ExactMatch generates greedily (temperature 0) from each record's prompt
// (tmpl.Prompt) until the end-of-text token or maxNew tokens, and compares
// the normalised text with the normalised output. It returns the share of
// matches and every record's result. A prompt the tokenizer cannot encode
// is an error naming the record.
func ExactMatch(m *gpt.Model, tok tokenizer.Tokenizer, tmpl textdata.Template, recs []textdata.Instruction, maxNew int, normalize string) (float64, []MatchResult, error) {
	if len(recs) == 0 {
		return 0, nil, fmt.Errorf("exact_match needs at least one record")
	}
	if _, err := Normalize("", normalize); err != nil {
		return 0, nil, err
	}
	out := make([]MatchResult, len(recs))
	hits := 0
	for i, r := range recs {
		ids, err := tok.Encode(tmpl.Prompt(r))
		if err != nil {
			return 0, nil, fmt.Errorf("record %d: %w", i, err)
		}
		gen, err := m.Generate(ids, gpt.SampleSettings{MaxNewTokens: maxNew, StopTokens: []int32{tok.EndOfText()}})
		if err != nil {
			return 0, nil, fmt.Errorf("record %d: %w", i, err)
		}
		text := tok.Decode(gen)
		got, _ := Normalize(text, normalize)
		want, _ := Normalize(r.Output, normalize)
		out[i] = MatchResult{Instruction: r.Instruction, Input: r.Input, Expected: r.Output, Generated: text, Match: got == want}
		if got == want {
			hits++
		}
	}
	return float64(hits) / float64(len(recs)), out, nil
}
