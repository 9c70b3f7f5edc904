// Package tokdata owns the tokenized-data artifact that data_prep writes and
// pretrain, finetune and eval read: a directory holding
//
//	meta.json      {"format_version": 1, "kind": "text"|"instructions", "dtype": "uint32",
//	                "tokens": N, "vocab_size": V, "records": R}
//	tokens.bin     N token ids, uint32 little-endian
//	loss_mask.bin  optional: N bytes; 1 = the token is a target counted in the
//	               loss (it is predicted from the tokens before it), 0 = context only
//	records.bin    optional: R uint64 little-endian offsets, the index in
//	               tokens.bin where each record starts (0 first, increasing)
//	records.jsonl  optional: R raw records, one JSON object a line, in the
//	               same order ({"instruction", "input", "output"})
//
// Text data has only meta.json and tokens.bin (records 0). Instruction data
// has all five files. The same Data always gives the same bytes.
package tokdata

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FormatVersion is the meta.json format_version this package writes and
// reads.
const FormatVersion = 1

// Kind says what the tokens are.
type Kind string

const (
	KindText         Kind = "text"
	KindInstructions Kind = "instructions"
)

// File names inside the artifact directory.
const (
	MetaFile     = "meta.json"
	TokensFile   = "tokens.bin"
	LossMaskFile = "loss_mask.bin"
	RecordsFile  = "records.bin"
	RawFile      = "records.jsonl"
)

// Record is one instruction record as records.jsonl stores it.
type Record struct {
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
}

// Data is a tokenized data set in memory.
type Data struct {
	Kind      Kind
	VocabSize int
	Tokens    []uint32
	// LossMask is nil (every token counts) or has one 0/1 byte per token.
	LossMask []byte
	// RecordStarts is nil or holds the offset in Tokens of each record's
	// first token, strictly increasing from 0.
	RecordStarts []uint64
	// Records is nil or holds the raw record of each RecordStarts entry.
	Records []Record
}

// Record returns the token range [start, end) of record i.
func (d *Data) Record(i int) (start, end int) {
	start = int(d.RecordStarts[i])
	end = len(d.Tokens)
	if i+1 < len(d.RecordStarts) {
		end = int(d.RecordStarts[i+1])
	}
	return start, end
}

type meta struct {
	FormatVersion int    `json:"format_version"`
	Kind          Kind   `json:"kind"`
	DType         string `json:"dtype"`
	Tokens        int    `json:"tokens"`
	VocabSize     int    `json:"vocab_size"`
	Records       int    `json:"records"`
}

// Validate checks the invariants Write and Read rely on.
func (d *Data) Validate() error {
	if file, err := d.check(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// check returns the first broken invariant and the file it concerns.
func (d *Data) check() (file string, err error) {
	switch d.Kind {
	case KindText, KindInstructions:
	default:
		return MetaFile, fmt.Errorf("kind %q: want %q or %q", d.Kind, KindText, KindInstructions)
	}
	if d.VocabSize <= 0 {
		return MetaFile, fmt.Errorf("vocab_size %d: want a positive number", d.VocabSize)
	}
	for i, t := range d.Tokens {
		if int64(t) >= int64(d.VocabSize) {
			return TokensFile, fmt.Errorf("token %d at position %d is outside the vocabulary of %d", t, i, d.VocabSize)
		}
	}
	if d.LossMask != nil {
		if len(d.LossMask) != len(d.Tokens) {
			return LossMaskFile, fmt.Errorf("%d entries for %d tokens", len(d.LossMask), len(d.Tokens))
		}
		for i, m := range d.LossMask {
			if m > 1 {
				return LossMaskFile, fmt.Errorf("value %d at position %d: want 0 or 1", m, i)
			}
		}
	}
	for i, s := range d.RecordStarts {
		switch {
		case i == 0 && s != 0:
			return RecordsFile, fmt.Errorf("record 0 starts at %d: want 0", s)
		case i > 0 && s <= d.RecordStarts[i-1]:
			return RecordsFile, fmt.Errorf("record %d starts at %d, not after record %d (%d)", i, s, i-1, d.RecordStarts[i-1])
		case s >= uint64(len(d.Tokens)):
			return RecordsFile, fmt.Errorf("record %d starts at %d, past the %d tokens", i, s, len(d.Tokens))
		}
	}
	if d.Records != nil && len(d.Records) != len(d.RecordStarts) {
		return RawFile, fmt.Errorf("%d raw records for %d record offsets", len(d.Records), len(d.RecordStarts))
	}
	if d.Kind == KindInstructions && len(d.Tokens) > 0 {
		switch {
		case d.LossMask == nil:
			return LossMaskFile, fmt.Errorf("missing: instruction data needs a loss mask")
		case d.RecordStarts == nil:
			return RecordsFile, fmt.Errorf("missing: instruction data needs record offsets")
		case d.Records == nil:
			return RawFile, fmt.Errorf("missing: instruction data needs its raw records")
		}
	}
	return "", nil
}

// Write stores d in dir, creating it if needed, and removes optional files
// that d does not have.
func Write(dir string, d *Data) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("invalid tokenized data: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m := meta{FormatVersion, d.Kind, "uint32", len(d.Tokens), d.VocabSize, len(d.RecordStarts)}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tb := make([]byte, 4*len(d.Tokens))
	for i, t := range d.Tokens {
		binary.LittleEndian.PutUint32(tb[4*i:], t)
	}
	files := map[string][]byte{MetaFile: append(mb, '\n'), TokensFile: tb}
	if d.LossMask != nil {
		files[LossMaskFile] = d.LossMask
	}
	if d.RecordStarts != nil {
		rb := make([]byte, 8*len(d.RecordStarts))
		for i, s := range d.RecordStarts {
			binary.LittleEndian.PutUint64(rb[8*i:], s)
		}
		files[RecordsFile] = rb
	}
	if d.Records != nil {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		for _, r := range d.Records {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		files[RawFile] = b.Bytes()
	}
	for _, name := range []string{MetaFile, TokensFile, LossMaskFile, RecordsFile, RawFile} {
		path := filepath.Join(dir, name)
		data, ok := files[name]
		if !ok {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Read loads and validates the artifact in dir. Errors name the file at
// fault.
func Read(dir string) (*Data, error) {
	mpath := filepath.Join(dir, MetaFile)
	mb, err := os.ReadFile(mpath)
	if err != nil {
		return nil, fmt.Errorf("reading tokenized data: %w", err)
	}
	var m meta
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", mpath, err)
	}
	switch {
	case m.FormatVersion != FormatVersion:
		return nil, fmt.Errorf("%s: format_version %d is not supported (this llmlab reads %d); re-run the data_prep stage", mpath, m.FormatVersion, FormatVersion)
	case m.DType != "uint32":
		return nil, fmt.Errorf("%s: dtype %q is not supported; want \"uint32\"", mpath, m.DType)
	case m.Tokens < 0 || m.Records < 0:
		return nil, fmt.Errorf("%s: negative tokens or records", mpath)
	}
	d := &Data{Kind: m.Kind, VocabSize: m.VocabSize}

	tb, err := readSized(dir, TokensFile, 4*int64(m.Tokens), m.Tokens, "tokens", true)
	if err != nil {
		return nil, err
	}
	d.Tokens = make([]uint32, m.Tokens)
	for i := range d.Tokens {
		d.Tokens[i] = binary.LittleEndian.Uint32(tb[4*i:])
	}
	if d.LossMask, err = readSized(dir, LossMaskFile, int64(m.Tokens), m.Tokens, "tokens", false); err != nil {
		return nil, err
	}
	rb, err := readSized(dir, RecordsFile, 8*int64(m.Records), m.Records, "records", false)
	if err != nil {
		return nil, err
	}
	if rb != nil {
		d.RecordStarts = make([]uint64, m.Records)
		for i := range d.RecordStarts {
			d.RecordStarts[i] = binary.LittleEndian.Uint64(rb[8*i:])
		}
	}
	if d.Records, err = readRaw(filepath.Join(dir, RawFile)); err != nil {
		return nil, err
	}
	if d.Records != nil && len(d.Records) != m.Records {
		return nil, fmt.Errorf("%s: %d records, but meta.json says %d", filepath.Join(dir, RawFile), len(d.Records), m.Records)
	}
	if file, err := d.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, file), err)
	}
	return d, nil
}

// readSized reads dir/name and checks it holds exactly size bytes (count
// items of what). A missing optional file gives nil.
func readSized(dir, name string, size int64, count int, what string, required bool) ([]byte, error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading tokenized data: %w", err)
	}
	if int64(len(b)) != size {
		return nil, fmt.Errorf("%s: %d bytes, want %d for the %d %s in meta.json; the artifact is truncated or corrupt", path, len(b), size, count, what)
	}
	return b, nil
}

func readRaw(path string) ([]Record, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading tokenized data: %w", err)
	}
	defer f.Close()
	recs := []Record{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<30)
	for line := 1; sc.Scan(); line++ {
		var r Record
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", path, line, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return recs, nil
}
