package textdata

import (
	"path/filepath"
	"testing"
)

func TestReadInstructionsFiles(t *testing.T) {
	recs, err := ReadInstructions("testdata/instructions_rasbt_8.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 8 {
		t.Fatalf("%d records", len(recs))
	}
	want0 := Instruction{
		Instruction: "Evaluate the following phrase by transforming it into the spelling given.",
		Input:       "freind --> friend",
		Output:      "The spelling of the given phrase \"freind\" is incorrect, the correct spelling is \"friend\".",
	}
	if recs[0] != want0 || recs[2].Input != "" || recs[2].Output != "45 kilometers is 45000 meters." {
		t.Fatalf("records %+v / %+v", recs[0], recs[2])
	}

	recs, err = ReadInstructions("testdata/instructions_alpaca_libre_5.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	inputs := 0
	for _, r := range recs {
		if r.Input != "" {
			inputs++
		}
		if r.Input == NoInput {
			t.Fatalf("%q left as input", NoInput)
		}
	}
	if len(recs) != 5 || inputs != 2 || recs[2].Input != "I seen the movie last night at the theater." {
		t.Fatalf("%d records, %d with input: %+v", len(recs), inputs, recs)
	}
}

func TestReadInstructionsErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, content, want string }{
		{"missing_output.json", `[{"instruction":"a","output":"b"},{"instruction":"c","input":"d"}]`, `record [1]: "output" is missing`},
		{"number.json", `[{"instruction":5,"output":"b"}]`, `record [0]: "instruction" must be a string, not a number`},
		{"array_input.jsonl", "{\"instruction\":\"a\",\"input\":[\"x\"],\"output\":\"b\"}\n", `line 1: "input" must be a string, not an array`},
		{"empty_instruction.jsonl", "{\"instruction\":\"a\",\"output\":\"b\"}\n\n{\"instruction\":\"  \",\"output\":\"b\"}\n", `line 3: "instruction" is empty`},
		{"not_object.json", `[{"instruction":"a","output":"b"}, "text"]`, `record [1]: not a JSON object`},
		{"bad_line.jsonl", "{\"instruction\":\"a\",\"output\":\"b\"}\n{\"instruction\":\n", `line 2: not a JSON object (JSON lines need one object per line)`},
		{"bad_array.json", `[{"instruction":"a"`, `not a valid JSON array: unexpected end of JSON input`},
		{"empty.json", " \n", `no records (the file is empty)`},
		{"empty_array.json", `[]`, `no records`},
		{"csv.json", "instruction,output\n", `neither a JSON array nor JSON lines (it should start with '[' or '{')`},
	} {
		path := filepath.Join(dir, c.name)
		writeFile(t, path, c.content)
		_, err := ReadInstructions(path)
		if want := path + ": " + c.want; err == nil || err.Error() != want {
			t.Errorf("%s: error = %v\nwant %q", c.name, err, want)
		}
	}
}

func TestReadPreferences(t *testing.T) {
	ps, err := ReadPreferences("testdata/preferences_rasbt_5.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 5 || ps[0].Instruction == "" || ps[0].Prompt != "" || ps[0].Chosen == ps[0].Rejected {
		t.Fatalf("%d pairs: %+v", len(ps), ps[0])
	}
	kept, dropped := DropTies(ps)
	if len(kept) != 4 || dropped != 1 {
		t.Fatalf("DropTies kept %d dropped %d", len(kept), dropped)
	}
	tmpl, _ := ParseTemplate("compact")
	if got := kept[0].PromptText(tmpl); got != "Q: "+ps[0].Instruction+" "+ps[0].Input+"\nA: " {
		t.Fatalf("PromptText = %q", got)
	}
	if got := (Preference{Prompt: "Say hi", Chosen: "Hi", Rejected: "No"}).PromptText(tmpl); got != "Say hi" {
		t.Fatalf("PromptText = %q", got)
	}

	dir := t.TempDir()
	for _, c := range []struct{ content, want string }{
		{`[{"prompt":"p","chosen":"a"}]`, `record [0]: "rejected" is missing`},
		{`[{"chosen":"a","rejected":"b"}]`, `record [0]: needs a non-empty "prompt" or "instruction"`},
		{`{"prompt":"p","chosen":"","rejected":"b"}`, `line 1: "chosen" is empty`},
		{`{"prompt":true,"chosen":"a","rejected":"b"}`, `line 1: "prompt" must be a string, not a boolean`},
	} {
		path := filepath.Join(dir, "p.json")
		writeFile(t, path, c.content)
		_, err := ReadPreferences(path)
		if want := path + ": " + c.want; err == nil || err.Error() != want {
			t.Errorf("error = %v\nwant %q", err, want)
		}
	}
}

func TestReadDocuments(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "docs.jsonl")
	writeFile(t, path, `{"doc_id":"00_000","title":"Victoria","text":"The economy of Victoria is diversified."}
{"doc_id":"00_001","text":"No title here."}
`)
	docs, err := ReadDocuments(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0] != (Document{"00_000", "Victoria", "The economy of Victoria is diversified."}) || docs[1].Title != "" {
		t.Fatalf("%+v", docs)
	}
	for _, c := range []struct{ content, want string }{
		{`[{"doc_id":"a","text":"x"},{"doc_id":"b","text":"y"},{"doc_id":"a","text":"z"}]`, `record [2]: doc_id "a" is already used by record [0]; doc_ids must be unique`},
		{`[{"doc_id":"a","title":"t"}]`, `record [0]: "text" is missing`},
		{`[{"doc_id":7,"text":"x"}]`, `record [0]: "doc_id" must be a string, not a number`},
		{`[{"doc_id":"a","text":"x","title":{}}]`, `record [0]: "title" must be a string, not an object`},
	} {
		writeFile(t, path, c.content)
		_, err := ReadDocuments(path)
		if want := path + ": " + c.want; err == nil || err.Error() != want {
			t.Errorf("error = %v\nwant %q", err, want)
		}
	}
}

func TestInferFormat(t *testing.T) {
	dir := t.TempDir()
	docs := filepath.Join(dir, "docs.jsonl")
	writeFile(t, docs, `{"doc_id":"a","title":"t","text":"x"}`)
	unknown := filepath.Join(dir, "q.jsonl")
	writeFile(t, unknown, `{"qid":"1","question":"why?"}`)
	for _, c := range []struct {
		path string
		want Format
	}{
		{"testdata/tinyshakespeare_20k.txt", FormatText},
		{"testdata", FormatText},
		{"testdata/instructions_rasbt_8.json", FormatInstructions},
		{"testdata/instructions_alpaca_libre_5.jsonl", FormatInstructions},
		{"testdata/preferences_rasbt_5.json", FormatPreferences},
		{docs, FormatDocuments},
	} {
		got, err := InferFormat(c.path)
		if err != nil || got != c.want {
			t.Errorf("InferFormat(%s) = %q, %v; want %q", c.path, got, err, c.want)
		}
	}
	_, err := InferFormat(unknown)
	want := unknown + `: cannot tell the format from the first record's fields; set format = "instructions" ({instruction, input, output}), "preferences" ({prompt, chosen, rejected}) or "documents" ({doc_id, title, text})`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %q", err, want)
	}
}
