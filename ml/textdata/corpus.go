// Package textdata owns reading data_prep's sources and turning them into
// tokenized data: text corpora and their validation split, Alpaca
// instruction records and their prompt templates, preference and document
// records, and generated tasks whose answers can be checked exactly.
//
// Everything here is deterministic: the same inputs and seed give the same
// outputs on any machine.
package textdata

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// ReadCorpus reads a text corpus: one file, or every regular file under a
// directory (hidden files and directories, whose names start with ".", are
// skipped) in lexical order of their paths. Files are concatenated, with a
// "\n" added after a file that does not end with one, so that files never
// run into each other. The text must be UTF-8 and not empty.
func ReadCorpus(path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("reading text corpus: %w", err)
	}
	var files []string
	if !info.IsDir() {
		files = []string{path}
	} else {
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != path && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("reading text corpus: %w", err)
		}
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("reading text corpus: %w", err)
		}
		if !utf8.Valid(data) {
			return "", fmt.Errorf("%s: not UTF-8 text (invalid byte at offset %d); convert it to UTF-8", f, invalidOffset(data))
		}
		b.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	if b.Len() == 0 {
		if info.IsDir() {
			return "", fmt.Errorf("text corpus %s is empty: it holds %d non-hidden files, none with any text", path, len(files))
		}
		return "", fmt.Errorf("text corpus %s is empty", path)
	}
	return b.String(), nil
}

func invalidOffset(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// SplitText holds out a validation share of text, counted in characters
// (runes), as one contiguous block:
//
//   - seed 0: the last share of the text, as nanoGPT's prepare.py does
//     (train = the first int(n*(1-validation)) characters);
//   - any other seed: a block of the same length starting at a position
//     drawn from the seed; train is the text before it followed by the text
//     after it.
//
// validation must be in [0, 1); 0 gives an empty validation text. A share
// that leaves either side empty is an error.
func SplitText(text string, validation float64, seed int64) (train, val string, err error) {
	if !(validation >= 0 && validation < 1) {
		return "", "", fmt.Errorf("split validation = %v: want a share in [0, 1), such as 0.1", validation)
	}
	if validation == 0 {
		return text, "", nil
	}
	runes := []rune(text)
	n := len(runes)
	cut := int(float64(n) * (1 - validation))
	valLen := n - cut
	if cut == 0 || valLen == 0 {
		return "", "", fmt.Errorf("split validation = %v of %d characters leaves an empty training or validation text; use a larger corpus or another share", validation, n)
	}
	start := cut
	if seed != 0 {
		r := newRNG(seed)
		start = int(r.intn(uint64(n - valLen + 1)))
	}
	train = string(runes[:start]) + string(runes[start+valLen:])
	val = string(runes[start : start+valLen])
	return train, val, nil
}
