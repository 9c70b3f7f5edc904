package textdata

import (
	"testing"
)

func TestTemplates(t *testing.T) {
	withIn := Instruction{Instruction: "Add the numbers.", Input: "2 and 3", Output: "5"}
	noIn := Instruction{Instruction: "Name a colour.", Output: "Blue"}
	for _, c := range []struct {
		tmpl             string
		rec              Instruction
		prompt, response string
	}{
		{"alpaca", withIn,
			"Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nAdd the numbers.\n\n### Input:\n2 and 3\n\n### Response:\n", "5"},
		{"alpaca", noIn,
			"Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName a colour.\n\n### Response:\n", "Blue"},
		{"", noIn,
			"Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName a colour.\n\n### Response:\n", "Blue"},
		{"compact", withIn, "Q: Add the numbers. 2 and 3\nA: ", "5"},
		{"compact", noIn, "Q: Name a colour.\nA: ", "Blue"},
		{"<{instruction}|{input}>{output}.\n", withIn, "<Add the numbers.|2 and 3>", "5.\n"},
		{"<{instruction}|{input}>{output}.\n", noIn, "<Name a colour.|>", "Blue.\n"},
		{"{instruction} = {output}", noIn, "Name a colour. = ", "Blue"},
	} {
		tm, err := ParseTemplate(c.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", c.tmpl, err)
		}
		p, r := tm.Render(c.rec)
		if p != c.prompt || r != c.response {
			t.Errorf("template %q on %+v:\n got %q + %q\nwant %q + %q", c.tmpl, c.rec, p, r, c.prompt, c.response)
		}
	}
	if (Template{}).Prompt(noIn) == "" {
		t.Error("the zero Template renders nothing")
	}
}

func TestTemplateErrors(t *testing.T) {
	for _, c := range []struct{ tmpl, want string }{
		{"chatml", `unknown template "chatml": use "alpaca", "compact", or a format string with {instruction}, {input} and {output}`},
		{"{instruction} {question} {output}", `template "{instruction} {question} {output}": unknown placeholder {question}; use {instruction}, {input} and {output}`},
		{"{instruction} {input}", `template "{instruction} {input}": has 0 {output} placeholders, needs exactly one (the response starts there)`},
		{"{instruction} {output} {output}", `template "{instruction} {output} {output}": has 2 {output} placeholders, needs exactly one (the response starts there)`},
		{"{input} -> {output}", `template "{input} -> {output}": needs {instruction} before {output}`},
		{"{instruction} {output} {input}", `template "{instruction} {output} {input}": {instruction} and {input} must come before {output}`},
	} {
		_, err := ParseTemplate(c.tmpl)
		if err == nil || err.Error() != c.want {
			t.Errorf("ParseTemplate(%q) error = %v\nwant %q", c.tmpl, err, c.want)
		}
	}
}
