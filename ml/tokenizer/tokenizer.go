// Package tokenizer owns llmlab's tokenizers: a character-level one and a
// byte-level BPE one in the style of GPT-2, their deterministic training, and
// their storage as a Hugging Face tokenizers `tokenizer.json`.
//
// Both kinds reserve one special token, EndOfText ("<|endoftext|>"), used to
// terminate documents and instruction records. A tokenizer that llmlab
// trains always gives it the last id, VocabSize()-1, as GPT-2 does (50256 of
// 50257). A loaded tokenizer.json may place it elsewhere; ask EndOfText().
//
// Encode treats its input as plain text: the string "<|endoftext|>" inside a
// text is encoded as ordinary characters, never as the special token (so
// data cannot forge record boundaries). Append EndOfText() yourself.
package tokenizer

import (
	"fmt"
)

// Kind names a tokenizer family as the `tokenizer { kind = ... }` setting does.
type Kind string

const (
	// KindChar is a character-level tokenizer: one token per Unicode
	// character of the training text.
	KindChar Kind = "char"
	// KindByteBPE is a byte-level BPE tokenizer (GPT-2 style): it can encode
	// any text.
	KindByteBPE Kind = "byte_bpe"
)

// EndOfText is the content of the special end-of-text token.
const EndOfText = "<|endoftext|>"

// Tokenizer turns text into token ids and back. Implementations are safe for
// concurrent use.
type Tokenizer interface {
	// Kind is KindChar or KindByteBPE.
	Kind() Kind
	// Encode returns the ids of text. A char tokenizer fails on characters
	// outside its vocabulary, naming them; a byte-level one never fails.
	Encode(text string) ([]int32, error)
	// Decode returns the text of ids. Ids outside the vocabulary decode to
	// U+FFFD. For byte_bpe, Decode(Encode(s)) == s for every string s, valid
	// UTF-8 or not.
	Decode(ids []int32) string
	// VocabSize is one more than the largest id, EndOfText included.
	VocabSize() int
	// EndOfText is the id of the "<|endoftext|>" token.
	EndOfText() int32
	// MarshalJSON returns the Hugging Face tokenizer.json bytes; the same
	// tokenizer always gives the same bytes.
	MarshalJSON() ([]byte, error)
}

// Train builds a tokenizer of the given kind from text. vocabSize is used by
// byte_bpe only (see TrainByteBPE); a char vocabulary is set by the text.
func Train(kind Kind, text string, vocabSize int) (Tokenizer, error) {
	switch kind {
	case KindChar:
		return TrainChar(text)
	case KindByteBPE:
		return TrainByteBPE(text, vocabSize)
	default:
		return nil, fmt.Errorf("unknown tokenizer kind %q: use %q or %q", kind, KindChar, KindByteBPE)
	}
}
