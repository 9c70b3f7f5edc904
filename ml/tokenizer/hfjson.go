package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// The Hugging Face tokenizers format (tokenizer.json, "version": "1.0").
//
// byte_bpe is written as GPT-2's own tokenizer.json is: a BPE model whose
// vocabulary and merges spell bytes with GPT-2's byte-to-unicode map, the
// ByteLevel pre-tokenizer (GPT-2's pattern, no prefix space), the ByteLevel
// post-processor and the ByteLevel decoder.
//
// char is written as DESIGN.md asks, a BPE model with no merges: the
// vocabulary maps each character to its id, there is no normalizer and no
// pre-tokenizer (the whole text is one word, which a BPE model with no merges
// cuts into characters), and the decoder is Fuse, which concatenates tokens
// (without a decoder the library would join them with spaces).
//
// In both, "<|endoftext|>" is in the model's vocabulary and in added_tokens
// as a special token. Vocabularies are written in id order and the output is
// indented with two spaces, so the same tokenizer always gives the same bytes.

type hfFile struct {
	Version       string          `json:"version"`
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
	AddedTokens   []hfAddedToken  `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         hfModel         `json:"model"`
}

type hfAddedToken struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type hfModel struct {
	Type                    string          `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	Vocab                   json.RawMessage `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

const (
	byteLevelPre  = `{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`
	byteLevelPost = `{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true}`
	byteLevelDec  = `{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}`
	fuseDecoder   = `{"type":"Fuse"}`
)

func eotAdded(id int32) []hfAddedToken {
	return []hfAddedToken{{ID: id, Content: EndOfText, Special: true}}
}

func emptyString() *string { s := ""; return &s }

// MarshalJSON returns the tokenizer.json bytes of t.
func (t *Char) MarshalJSON() ([]byte, error) {
	names := make([]string, len(t.chars))
	for i, r := range t.chars {
		if int32(i) == t.eot {
			names[i] = EndOfText
		} else {
			names[i] = string(r)
		}
	}
	return writeHF(hfFile{
		AddedTokens: eotAdded(t.eot),
		Decoder:     json.RawMessage(fuseDecoder),
	}, names, nil)
}

// MarshalJSON returns the tokenizer.json bytes of t.
func (t *ByteBPE) MarshalJSON() ([]byte, error) {
	names := make([]string, len(t.tokens))
	for i, bs := range t.tokens {
		if int32(i) == t.eot {
			names[i] = EndOfText
		} else {
			names[i] = byteLevelString(bs)
		}
	}
	merges := make([]string, len(t.merges))
	for i, m := range t.merges {
		merges[i] = names[m.a] + " " + names[m.b]
	}
	return writeHF(hfFile{
		AddedTokens:   eotAdded(t.eot),
		PreTokenizer:  json.RawMessage(byteLevelPre),
		PostProcessor: json.RawMessage(byteLevelPost),
		Decoder:       json.RawMessage(byteLevelDec),
	}, names, merges)
}

// writeHF completes f with the BPE model of vocab (id -> token) and merges.
func writeHF(f hfFile, vocab []string, merges []string) ([]byte, error) {
	var v bytes.Buffer
	v.WriteByte('{')
	for id, name := range vocab {
		if id > 0 {
			v.WriteByte(',')
		}
		v.Write(jsonString(name))
		fmt.Fprintf(&v, ":%d", id)
	}
	v.WriteByte('}')
	if merges == nil {
		merges = []string{}
	}
	m, err := json.Marshal(merges)
	if err != nil {
		return nil, err
	}
	f.Version = "1.0"
	f.Model = hfModel{
		Type:                    "BPE",
		ContinuingSubwordPrefix: emptyString(),
		EndOfWordSuffix:         emptyString(),
		Vocab:                   v.Bytes(),
		Merges:                  m,
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimRight(b.Bytes(), "\n")
}

// Save writes t's tokenizer.json to path.
func Save(path string, t Tokenizer) error {
	data, err := t.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encoding tokenizer: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing tokenizer: %w", err)
	}
	return nil
}

// Load reads a tokenizer.json written by Save (or a Hugging Face byte-level
// BPE one such as GPT-2's).
func Load(path string) (Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading tokenizer: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse decodes tokenizer.json bytes. It accepts byte-level BPE files
// (pre_tokenizer ByteLevel) and character vocabularies (a BPE model with no
// merges and no pre-tokenizer); both need an "<|endoftext|>" token.
func Parse(data []byte) (Tokenizer, error) {
	var f hfFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %w", err)
	}
	if f.Model.Type != "BPE" {
		return nil, fmt.Errorf("unsupported tokenizer.json: model type %q; llmlab reads BPE models only", f.Model.Type)
	}
	var vocab map[string]int32
	if err := json.Unmarshal(f.Model.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer.json: model.vocab: %w", err)
	}
	merges, err := parseMerges(f.Model.Merges)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(vocab))
	seen := make([]bool, len(vocab))
	for name, id := range vocab {
		if id < 0 || int(id) >= len(vocab) || seen[id] {
			return nil, fmt.Errorf("tokenizer.json: model.vocab ids must be 0..%d, each once; %q has id %d", len(vocab)-1, name, id)
		}
		seen[id], names[id] = true, name
	}
	eot := int32(-1)
	for _, a := range f.AddedTokens {
		if a.Content == EndOfText {
			eot = a.ID
		}
	}
	if id, ok := vocab[EndOfText]; eot < 0 && ok {
		eot = id
	}
	if eot < 0 || int(eot) >= len(vocab) || names[eot] != EndOfText {
		return nil, fmt.Errorf("tokenizer.json: no %q token in model.vocab; llmlab needs it to end records", EndOfText)
	}
	var pre struct {
		Type string `json:"type"`
	}
	if len(f.PreTokenizer) > 0 && string(f.PreTokenizer) != "null" {
		if err := json.Unmarshal(f.PreTokenizer, &pre); err != nil {
			return nil, fmt.Errorf("tokenizer.json: pre_tokenizer: %w", err)
		}
	}
	switch {
	case pre.Type == "ByteLevel":
		return byteBPEFromHF(names, vocab, merges, eot)
	case pre.Type == "" && len(merges) == 0:
		chars := make([]rune, len(names))
		for id, name := range names {
			if int32(id) == eot {
				chars[id] = -1
				continue
			}
			r, size := utf8.DecodeRuneInString(name)
			if size != len(name) || (r == utf8.RuneError && size <= 1) {
				return nil, fmt.Errorf("tokenizer.json: token %q (id %d) is not a single character; a char vocabulary has one character per token", name, id)
			}
			chars[id] = r
		}
		return newChar(chars, eot)
	default:
		return nil, fmt.Errorf("unsupported tokenizer.json: llmlab reads byte-level BPE (pre_tokenizer ByteLevel) " +
			"and character vocabularies (BPE with no merges and no pre_tokenizer)")
	}
}

// parseMerges accepts both merge spellings: "a b" (tokenizers < 0.20) and
// ["a", "b"].
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("tokenizer.json: model.merges: %w", err)
	}
	out := make([][2]string, len(items))
	for i, it := range items {
		var s string
		if json.Unmarshal(it, &s) == nil {
			a, b, ok := strings.Cut(s, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("tokenizer.json: model.merges[%d] %q is not two tokens separated by one space", i, s)
			}
			out[i] = [2]string{a, b}
			continue
		}
		var p []string
		if err := json.Unmarshal(it, &p); err != nil || len(p) != 2 {
			return nil, fmt.Errorf("tokenizer.json: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", i)
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

func byteBPEFromHF(names []string, vocab map[string]int32, merges [][2]string, eot int32) (*ByteBPE, error) {
	t := &ByteBPE{tokens: make([][]byte, len(names)), ranks: make(map[pair]mergeTo, len(merges)), eot: eot}
	for id, name := range names {
		if int32(id) == eot {
			continue
		}
		bs := make([]byte, 0, len(name))
		for _, r := range name {
			b, ok := unicodeToByte[r]
			if !ok {
				return nil, fmt.Errorf("tokenizer.json: token %q (id %d) is not in GPT-2's byte-level alphabet", name, id)
			}
			bs = append(bs, b)
		}
		t.tokens[id] = bs
	}
	for b := range 256 {
		id, ok := vocab[string(byteToUnicode[b])]
		if !ok {
			return nil, fmt.Errorf("tokenizer.json: byte 0x%02x (%q) has no token; a byte-level vocabulary needs all 256", b, byteToUnicode[b])
		}
		t.byteID[b] = id
	}
	for rank, m := range merges {
		a, okA := vocab[m[0]]
		b, okB := vocab[m[1]]
		c, okC := vocab[m[0]+m[1]]
		if !okA || !okB || !okC {
			return nil, fmt.Errorf("tokenizer.json: model.merges[%d] (%q %q) uses or makes a token missing from model.vocab", rank, m[0], m[1])
		}
		p := pair{a, b}
		if _, dup := t.ranks[p]; dup {
			continue // the first (lowest) rank wins, as in Hugging Face tokenizers
		}
		t.ranks[p] = mergeTo{int32(rank), c}
		t.merges = append(t.merges, p)
	}
	return t, nil
}
