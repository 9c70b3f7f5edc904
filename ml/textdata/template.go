package textdata

import (
	"fmt"
	"regexp"
	"strings"
)

// Template renders an instruction record as a prompt (context the model
// reads) and a response (what it learns to write).
//
//   - "alpaca": Stanford Alpaca's prompts (tatsu-lab/stanford_alpaca
//     train.py PROMPT_DICT), with the response on the line after
//     "### Response:" as in Alpaca's README (train.py itself leaves out that
//     last newline):
//
//     Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n
//
//     and, for a record without input,
//
//     Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n
//
//   - "compact", for small contexts: "Q: {instruction} {input}\nA: ", or
//     "Q: {instruction}\nA: " without input.
//
//   - a format string holding {instruction}, an optional {input} and exactly
//     one {output}: the prompt is the text before {output}; the response is
//     the output and any text after {output}. An empty input becomes "".
//
// In every case the response is the output (plus a custom template's text
// after {output}); EncodeInstructions appends the end-of-text token.
type Template struct {
	name      string // "alpaca", "compact" or "custom"
	withInput string // prompt format for records with input
	noInput   string // prompt format for records without
	suffix    string // custom: text after {output}
	hasInput  bool
}

const (
	alpacaWithInput = "Below is an instruction that describes a task, paired with an input that provides further context. " +
		"Write a response that appropriately completes the request.\n\n" +
		"### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
	alpacaNoInput = "Below is an instruction that describes a task. " +
		"Write a response that appropriately completes the request.\n\n" +
		"### Instruction:\n{instruction}\n\n### Response:\n"
)

var placeholder = regexp.MustCompile(`\{[A-Za-z_][A-Za-z0-9_]*\}`)

// ParseTemplate reads data_prep's `template` setting.
func ParseTemplate(s string) (Template, error) {
	switch s {
	case "alpaca", "":
		return Template{name: "alpaca", withInput: alpacaWithInput, noInput: alpacaNoInput, hasInput: true}, nil
	case "compact":
		return Template{name: "compact", withInput: "Q: {instruction} {input}\nA: ", noInput: "Q: {instruction}\nA: ", hasInput: true}, nil
	}
	if !strings.Contains(s, "{") {
		return Template{}, fmt.Errorf("unknown template %q: use \"alpaca\", \"compact\", or a format string with {instruction}, {input} and {output}", s)
	}
	for _, p := range placeholder.FindAllString(s, -1) {
		switch p {
		case "{instruction}", "{input}", "{output}":
		default:
			return Template{}, fmt.Errorf("template %q: unknown placeholder %s; use {instruction}, {input} and {output}", s, p)
		}
	}
	if n := strings.Count(s, "{output}"); n != 1 {
		return Template{}, fmt.Errorf("template %q: has %d {output} placeholders, needs exactly one (the response starts there)", s, n)
	}
	prompt, suffix, _ := strings.Cut(s, "{output}")
	if !strings.Contains(prompt, "{instruction}") {
		return Template{}, fmt.Errorf("template %q: needs {instruction} before {output}", s)
	}
	if strings.Contains(suffix, "{instruction}") || strings.Contains(suffix, "{input}") {
		return Template{}, fmt.Errorf("template %q: {instruction} and {input} must come before {output}", s)
	}
	return Template{name: "custom", withInput: prompt, noInput: prompt, suffix: suffix, hasInput: strings.Contains(prompt, "{input}")}, nil
}

// Name is "alpaca", "compact" or "custom".
func (t Template) Name() string { return t.name }

// HasInput says whether the template shows a record's input.
func (t Template) HasInput() bool { return t.hasInput }

// Prompt is the text the model is given for r; eval's exact_match generates
// from it.
func (t Template) Prompt(r Instruction) string {
	f := t.withInput
	if r.Input == "" {
		f = t.noInput
	}
	if f == "" { // zero Template: alpaca
		def, _ := ParseTemplate("alpaca")
		return def.Prompt(r)
	}
	return strings.NewReplacer("{instruction}", r.Instruction, "{input}", r.Input).Replace(f)
}

// Render returns r's prompt and response.
func (t Template) Render(r Instruction) (prompt, response string) {
	return t.Prompt(r), r.Output + t.suffix
}
