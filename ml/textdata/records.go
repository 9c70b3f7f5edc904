package textdata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Instruction is an Alpaca record. Input is "" when the record has none.
type Instruction struct {
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
}

// Key identifies the record's content; SplitRecords hashes it.
func (r Instruction) Key() string {
	return r.Instruction + "\x00" + r.Input + "\x00" + r.Output
}

// Preference is a preference pair. The prompt is either given as Prompt or
// as an Alpaca Instruction and Input to render with a template (the
// LLMs-from-scratch preference file has instruction/input/chosen/rejected).
type Preference struct {
	Prompt      string `json:"prompt,omitempty"`
	Instruction string `json:"instruction,omitempty"`
	Input       string `json:"input,omitempty"`
	Chosen      string `json:"chosen"`
	Rejected    string `json:"rejected"`
}

// Key identifies the record's content; SplitRecords hashes it.
func (p Preference) Key() string {
	return p.Prompt + "\x00" + p.Instruction + "\x00" + p.Input + "\x00" + p.Chosen + "\x00" + p.Rejected
}

// PromptText is Prompt, or the instruction rendered with t.
func (p Preference) PromptText(t Template) string {
	if p.Prompt != "" {
		return p.Prompt
	}
	return t.Prompt(Instruction{Instruction: p.Instruction, Input: p.Input})
}

// Document is a retrieval document.
type Document struct {
	DocID string `json:"doc_id"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

// Key identifies the record's content; SplitRecords hashes it.
func (d Document) Key() string { return d.DocID }

// rawRecord is one JSON object of a records file and where it was.
type rawRecord struct {
	where  string // "record [3]" (JSON array) or "line 4" (JSON lines)
	fields map[string]json.RawMessage
}

// readObjects reads a JSON array of objects or JSON lines (one object a
// line; blank lines skipped).
func readObjects(path string) ([]rawRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading records: %w", err)
	}
	trimmed := bytes.TrimSpace(data)
	var recs []rawRecord
	switch {
	case len(trimmed) == 0:
		return nil, fmt.Errorf("%s: no records (the file is empty)", path)
	case trimmed[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, fmt.Errorf("%s: not a valid JSON array: %w", path, err)
		}
		for i, it := range items {
			r := rawRecord{where: fmt.Sprintf("record [%d]", i)}
			if err := json.Unmarshal(it, &r.fields); err != nil || r.fields == nil {
				return nil, fmt.Errorf("%s: %s: not a JSON object", path, r.where)
			}
			recs = append(recs, r)
		}
	case trimmed[0] == '{':
		for i, line := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			r := rawRecord{where: fmt.Sprintf("line %d", i+1)}
			if err := json.Unmarshal(line, &r.fields); err != nil || r.fields == nil {
				return nil, fmt.Errorf("%s: %s: not a JSON object (JSON lines need one object per line)", path, r.where)
			}
			recs = append(recs, r)
		}
	default:
		return nil, fmt.Errorf("%s: neither a JSON array nor JSON lines (it should start with '[' or '{')", path)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s: no records", path)
	}
	return recs, nil
}

// str returns the string field key; a missing field is "" unless required.
func (r rawRecord) str(path, key string, required bool) (string, error) {
	raw, ok := r.fields[key]
	if !ok || string(raw) == "null" {
		if required {
			return "", fmt.Errorf("%s: %s: %q is missing", path, r.where, key)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s: %s: %q must be a string, not %s", path, r.where, key, jsonKind(raw))
	}
	return s, nil
}

func (r rawRecord) nonEmpty(path, key string) (string, error) {
	s, err := r.str(path, key, true)
	if err == nil && strings.TrimSpace(s) == "" {
		err = fmt.Errorf("%s: %s: %q is empty", path, r.where, key)
	}
	return s, err
}

func jsonKind(raw json.RawMessage) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

// NoInput is the placeholder some Alpaca files (alpaca-libre) put in input
// when there is none; ReadInstructions turns it into "".
const NoInput = "<noinput>"

// ReadInstructions reads Alpaca records ({instruction, input, output}) from
// a JSON array or JSON lines file. instruction must be a non-empty string,
// output a string, input a string or absent; an input of "<noinput>" (spaces
// around it ignored) means none. Other fields are ignored. Errors name the
// file and the record.
func ReadInstructions(path string) ([]Instruction, error) {
	raws, err := readObjects(path)
	if err != nil {
		return nil, err
	}
	out := make([]Instruction, 0, len(raws))
	for _, r := range raws {
		var rec Instruction
		if rec.Instruction, err = r.nonEmpty(path, "instruction"); err != nil {
			return nil, err
		}
		if rec.Input, err = r.str(path, "input", false); err != nil {
			return nil, err
		}
		if strings.TrimSpace(rec.Input) == NoInput {
			rec.Input = ""
		}
		if rec.Output, err = r.str(path, "output", true); err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// ReadPreferences reads preference pairs from a JSON array or JSON lines
// file: chosen and rejected are required non-empty strings, and the prompt
// is either "prompt" or "instruction" (with an optional "input"; "<noinput>"
// means none). Pairs whose chosen equals rejected carry no preference: they
// are kept here; DropTies removes them.
func ReadPreferences(path string) ([]Preference, error) {
	raws, err := readObjects(path)
	if err != nil {
		return nil, err
	}
	out := make([]Preference, 0, len(raws))
	for _, r := range raws {
		var p Preference
		if p.Prompt, err = r.str(path, "prompt", false); err != nil {
			return nil, err
		}
		if p.Instruction, err = r.str(path, "instruction", false); err != nil {
			return nil, err
		}
		if p.Input, err = r.str(path, "input", false); err != nil {
			return nil, err
		}
		if strings.TrimSpace(p.Input) == NoInput {
			p.Input = ""
		}
		if strings.TrimSpace(p.Prompt) == "" && strings.TrimSpace(p.Instruction) == "" {
			return nil, fmt.Errorf("%s: %s: needs a non-empty \"prompt\" or \"instruction\"", path, r.where)
		}
		if p.Chosen, err = r.nonEmpty(path, "chosen"); err != nil {
			return nil, err
		}
		if p.Rejected, err = r.nonEmpty(path, "rejected"); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// DropTies removes pairs whose chosen equals rejected and returns how many it
// removed.
func DropTies(ps []Preference) ([]Preference, int) {
	out := make([]Preference, 0, len(ps))
	for _, p := range ps {
		if p.Chosen != p.Rejected {
			out = append(out, p)
		}
	}
	return out, len(ps) - len(out)
}

// ReadDocuments reads documents ({doc_id, title, text}) from a JSON array or
// JSON lines file: doc_id and text are required non-empty strings, title is
// optional, and doc_ids are unique.
func ReadDocuments(path string) ([]Document, error) {
	raws, err := readObjects(path)
	if err != nil {
		return nil, err
	}
	out := make([]Document, 0, len(raws))
	seen := map[string]string{}
	for _, r := range raws {
		var d Document
		if d.DocID, err = r.nonEmpty(path, "doc_id"); err != nil {
			return nil, err
		}
		if first, dup := seen[d.DocID]; dup {
			return nil, fmt.Errorf("%s: %s: doc_id %q is already used by %s; doc_ids must be unique", path, r.where, d.DocID, first)
		}
		seen[d.DocID] = r.where
		if d.Title, err = r.str(path, "title", false); err != nil {
			return nil, err
		}
		if d.Text, err = r.nonEmpty(path, "text"); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Format is data_prep's `format` setting.
type Format string

const (
	FormatText         Format = "text"
	FormatInstructions Format = "instructions"
	FormatPreferences  Format = "preferences"
	FormatDocuments    Format = "documents"
)

// InferFormat guesses the format of a source when `format` is not set: a
// directory or a file not named .json/.jsonl is text; a records file is
// judged by its first record's fields: chosen and rejected make preferences,
// doc_id and text documents, instruction and output instructions.
func InferFormat(path string) (Format, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("reading source: %w", err)
	}
	ext := strings.ToLower(filepath.Ext(path))
	if info.IsDir() || (ext != ".json" && ext != ".jsonl") {
		return FormatText, nil
	}
	raws, err := readObjects(path)
	if err != nil {
		return "", err
	}
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := raws[0].fields[k]; !ok {
				return false
			}
		}
		return true
	}
	switch {
	case has("chosen", "rejected"):
		return FormatPreferences, nil
	case has("doc_id", "text"):
		return FormatDocuments, nil
	case has("instruction", "output"):
		return FormatInstructions, nil
	}
	return "", fmt.Errorf("%s: cannot tell the format from the first record's fields; "+
		"set format = \"instructions\" ({instruction, input, output}), \"preferences\" ({prompt, chosen, rejected}) or \"documents\" ({doc_id, title, text})", path)
}
