package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// gpt2Pattern is the pre-tokenization regular expression of GPT-2
// (openai/gpt-2 src/encoder.py), which Go's regexp cannot express because of
// the lookahead. splitGPT2 implements it by hand.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// Character classes of the pattern. \s is Unicode White_Space (what Python's
// regex module, Rust's regex and Oniguruma use), which is unicode.IsSpace.
const (
	classLetter = iota
	classNumber
	classSpace
	classOther
)

func classOf(r rune) int {
	switch {
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r):
		return classSpace
	default:
		return classOther
	}
}

// splitGPT2 cuts text into the pieces GPT-2's pattern matches, calling emit
// with each piece in order. The pieces concatenate to text exactly, byte for
// byte, even when text is not valid UTF-8 (an invalid byte is a piece of
// class "other", like U+FFFD).
func splitGPT2(text string, emit func(piece string)) {
	n := len(text)
	i := 0
	for i < n {
		end := matchAt(text, i)
		emit(text[i:end])
		i = end
	}
}

// matchAt returns the end of the leftmost-first match of gpt2Pattern at i.
func matchAt(text string, i int) int {
	n := len(text)
	// Contractions: 's 't 're 've 'm 'll 'd (lower case only, as in GPT-2).
	if text[i] == '\'' && i+1 < n {
		switch text[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r':
			if i+2 < n && text[i+2] == 'e' {
				return i + 3
			}
		case 'v':
			if i+2 < n && text[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < n && text[i+2] == 'l' {
				return i + 3
			}
		}
	}
	// ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then
	// a run of one class.
	start := i
	if text[i] == ' ' && i+1 < n {
		start = i + 1
	}
	r, size := utf8.DecodeRuneInString(text[start:])
	if c := classOf(r); c != classSpace {
		j := start + size
		for j < n {
			r, size := utf8.DecodeRuneInString(text[j:])
			if classOf(r) != c {
				break
			}
			j += size
		}
		return j
	}
	// Here text[i] is white space (a lone trailing space included).
	// `\s+(?!\S)` takes the run but leaves its last character for the next
	// piece when non-space follows; `\s+` takes a run of one.
	j := i
	last := i
	for j < n {
		r, size := utf8.DecodeRuneInString(text[j:])
		if !unicode.IsSpace(r) {
			break
		}
		last = j
		j += size
	}
	if j == n || last == i {
		return j
	}
	return last
}
