package tokdata

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func instrData() *Data {
	return &Data{
		Kind:         KindInstructions,
		VocabSize:    10,
		Tokens:       []uint32{1, 2, 3, 9, 4, 5, 9},
		LossMask:     []byte{0, 0, 1, 1, 0, 1, 1},
		RecordStarts: []uint64{0, 4},
		Records: []Record{
			{Instruction: "Add <b> & c", Input: "", Output: "x"},
			{Instruction: "Say \"hi\"", Input: "é\n", Output: "y"},
		},
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	for _, d := range []*Data{
		instrData(),
		{Kind: KindText, VocabSize: 65, Tokens: []uint32{0, 64, 7, 7}},
		{Kind: KindText, VocabSize: 65, Tokens: []uint32{}},
		{Kind: KindInstructions, VocabSize: 5, Tokens: []uint32{}, LossMask: []byte{}, RecordStarts: []uint64{}, Records: []Record{}},
	} {
		dir := t.TempDir()
		if err := Write(dir, d); err != nil {
			t.Fatal(err)
		}
		got, err := Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Fatalf("read %+v\nwrote %+v", got, d)
		}
	}
}

func TestWriteBytes(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, instrData()); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		MetaFile:     "{\n  \"format_version\": 1,\n  \"kind\": \"instructions\",\n  \"dtype\": \"uint32\",\n  \"tokens\": 7,\n  \"vocab_size\": 10,\n  \"records\": 2\n}\n",
		TokensFile:   "\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x09\x00\x00\x00\x04\x00\x00\x00\x05\x00\x00\x00\x09\x00\x00\x00",
		LossMaskFile: "\x00\x00\x01\x01\x00\x01\x01",
		RecordsFile:  "\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00",
		RawFile:      "{\"instruction\":\"Add <b> & c\",\"input\":\"\",\"output\":\"x\"}\n{\"instruction\":\"Say \\\"hi\\\"\",\"input\":\"é\\n\",\"output\":\"y\"}\n",
	}
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != w {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
	// Rewriting as text data removes the instruction files.
	if err := Write(dir, &Data{Kind: KindText, VocabSize: 3, Tokens: []uint32{1}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{LossMaskFile, RecordsFile, RawFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s left behind", name)
		}
	}
}

func TestRecordRange(t *testing.T) {
	d := instrData()
	if s, e := d.Record(0); s != 0 || e != 4 {
		t.Errorf("record 0 = [%d,%d)", s, e)
	}
	if s, e := d.Record(1); s != 4 || e != 7 {
		t.Errorf("record 1 = [%d,%d)", s, e)
	}
}

func TestWriteRejectsInvalid(t *testing.T) {
	for _, c := range []struct {
		name   string
		modify func(*Data)
		want   string
	}{
		{"kind", func(d *Data) { d.Kind = "prefs" }, `invalid tokenized data: meta.json: kind "prefs": want "text" or "instructions"`},
		{"vocab", func(d *Data) { d.VocabSize = 0 }, "invalid tokenized data: meta.json: vocab_size 0: want a positive number"},
		{"token range", func(d *Data) { d.Tokens[2] = 10 }, "invalid tokenized data: tokens.bin: token 10 at position 2 is outside the vocabulary of 10"},
		{"mask length", func(d *Data) { d.LossMask = d.LossMask[:3] }, "invalid tokenized data: loss_mask.bin: 3 entries for 7 tokens"},
		{"mask value", func(d *Data) { d.LossMask[1] = 2 }, "invalid tokenized data: loss_mask.bin: value 2 at position 1: want 0 or 1"},
		{"first start", func(d *Data) { d.RecordStarts[0] = 1 }, "invalid tokenized data: records.bin: record 0 starts at 1: want 0"},
		{"order", func(d *Data) { d.RecordStarts[1] = 0 }, "invalid tokenized data: records.bin: record 1 starts at 0, not after record 0 (0)"},
		{"past end", func(d *Data) { d.RecordStarts[1] = 7 }, "invalid tokenized data: records.bin: record 1 starts at 7, past the 7 tokens"},
		{"raw count", func(d *Data) { d.Records = d.Records[:1] }, "invalid tokenized data: records.jsonl: 1 raw records for 2 record offsets"},
		{"no mask", func(d *Data) { d.LossMask = nil }, "invalid tokenized data: loss_mask.bin: missing: instruction data needs a loss mask"},
	} {
		d := instrData()
		c.modify(d)
		err := Write(t.TempDir(), d)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: error = %v, want %q", c.name, err, c.want)
		}
	}
}

func TestReadErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		file  string
		write func(b []byte) []byte
		want  string // after "<dir>/"
	}{
		{"version", MetaFile, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"format_version": 1`), []byte(`"format_version": 2`), 1)
		},
			"meta.json: format_version 2 is not supported (this llmlab reads 1); re-run the data_prep stage"},
		{"dtype", MetaFile, func(b []byte) []byte { return bytes.Replace(b, []byte(`"uint32"`), []byte(`"uint16"`), 1) },
			`meta.json: dtype "uint16" is not supported; want "uint32"`},
		{"unknown key", MetaFile, func(b []byte) []byte { return bytes.Replace(b, []byte(`"records"`), []byte(`"recs"`), 1) },
			`meta.json: json: unknown field "recs"`},
		{"short tokens", TokensFile, func(b []byte) []byte { return b[:len(b)-4] },
			"tokens.bin: 24 bytes, want 28 for the 7 tokens in meta.json; the artifact is truncated or corrupt"},
		{"bad token", TokensFile, func(b []byte) []byte { b[0] = 200; return b },
			"tokens.bin: token 200 at position 0 is outside the vocabulary of 10"},
		{"short mask", LossMaskFile, func(b []byte) []byte { return b[:2] },
			"loss_mask.bin: 2 bytes, want 7 for the 7 tokens in meta.json; the artifact is truncated or corrupt"},
		{"records offsets", RecordsFile, func(b []byte) []byte { b[8] = 0; return b },
			"records.bin: record 1 starts at 0, not after record 0 (0)"},
		{"raw lines", RawFile, func(b []byte) []byte { return b[:bytes.IndexByte(b, '\n')+1] },
			"records.jsonl: 1 records, but meta.json says 2"},
		{"raw json", RawFile, func(b []byte) []byte { return append(b, "{\"x\":1}\n"...) },
			`records.jsonl: line 3: json: unknown field "x"`},
	} {
		dir := t.TempDir()
		if err := Write(dir, instrData()); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, c.file)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, c.write(b), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = Read(dir)
		if want := filepath.Join(dir, c.want); err == nil || err.Error() != want {
			t.Errorf("%s: error = %v\nwant %q", c.name, err, want)
		}
	}
	if _, err := Read(t.TempDir()); err == nil || !strings.HasPrefix(err.Error(), "reading tokenized data: open ") {
		t.Errorf("empty dir: %v", err)
	}
}
