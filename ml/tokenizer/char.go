package tokenizer

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Char is a character-level tokenizer. When trained, ids 0..n-1 are the
// distinct characters (runes) of the training text in increasing code point
// order, as nanoGPT's shakespeare_char prepare.py numbers them, and id n is
// EndOfText.
type Char struct {
	chars []rune         // id -> character; the EndOfText slot holds -1
	ids   map[rune]int32 // character -> id
	eot   int32
}

// TrainChar returns the char tokenizer of text's distinct characters.
// Invalid UTF-8 bytes count as U+FFFD.
func TrainChar(text string) (*Char, error) {
	if text == "" {
		return nil, fmt.Errorf("cannot train a char tokenizer on empty text")
	}
	seen := map[rune]bool{}
	for _, r := range text {
		seen[r] = true
	}
	chars := make([]rune, 0, len(seen))
	for r := range seen {
		chars = append(chars, r)
	}
	slices.Sort(chars)
	return newChar(append(chars, -1), int32(len(chars)))
}

// newChar builds a Char from its id -> character table, in which chars[eot]
// is -1.
func newChar(chars []rune, eot int32) (*Char, error) {
	t := &Char{chars: chars, ids: make(map[rune]int32, len(chars)), eot: eot}
	for i, r := range chars {
		if int32(i) == eot {
			continue
		}
		if _, dup := t.ids[r]; dup {
			return nil, fmt.Errorf("character %s appears twice in the vocabulary", quoteRune(r))
		}
		t.ids[r] = int32(i)
	}
	return t, nil
}

func (t *Char) Kind() Kind       { return KindChar }
func (t *Char) VocabSize() int   { return len(t.chars) }
func (t *Char) EndOfText() int32 { return t.eot }

// Chars returns the vocabulary's characters in id order (EndOfText excluded).
func (t *Char) Chars() []rune {
	out := make([]rune, 0, len(t.chars))
	for i, r := range t.chars {
		if int32(i) != t.eot {
			out = append(out, r)
		}
	}
	return out
}

// maxNamed bounds how many unknown characters an error lists.
const maxNamed = 10

func (t *Char) Encode(text string) ([]int32, error) {
	ids := make([]int32, 0, utf8.RuneCountInString(text))
	var unknown []rune
	for _, r := range text {
		id, ok := t.ids[r]
		if !ok {
			if !slices.Contains(unknown, r) {
				unknown = append(unknown, r)
			}
			continue
		}
		ids = append(ids, id)
	}
	if len(unknown) > 0 {
		return nil, unknownCharsError(unknown)
	}
	return ids, nil
}

func unknownCharsError(unknown []rune) error {
	names := make([]string, 0, maxNamed)
	for i, r := range unknown {
		if i == maxNamed {
			names = append(names, fmt.Sprintf("and %d more", len(unknown)-maxNamed))
			break
		}
		names = append(names, quoteRune(r))
	}
	return fmt.Errorf("characters not in the tokenizer's vocabulary: %s; "+
		"train the char tokenizer on text that contains them, or use a byte-level BPE tokenizer "+
		"(tokenizer { kind = \"byte_bpe\" }), which can encode any text", strings.Join(names, ", "))
}

// quoteRune renders r as 'é' (U+00E9), escaping control characters.
func quoteRune(r rune) string {
	return fmt.Sprintf("%q (%U)", r, r)
}

func (t *Char) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		switch {
		case id == t.eot:
			b.WriteString(EndOfText)
		case id >= 0 && int(id) < len(t.chars):
			b.WriteRune(t.chars[id])
		default:
			b.WriteRune(utf8.RuneError)
		}
	}
	return b.String()
}
