package tokenizer

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// ByteBPE is a byte-level BPE tokenizer in the style of GPT-2: text is cut
// with GPT-2's pre-tokenization pattern, each piece is taken as bytes, and
// merges are applied in rank order within a piece.
//
// When trained by TrainByteBPE, id b (0..255) is the single byte b, id 256+r
// is the result of merge r, and the last id is EndOfText.
type ByteBPE struct {
	tokens [][]byte         // id -> bytes; nil at EndOfText
	byteID [256]int32       // byte -> id of its single-byte token
	merges []pair           // in rank order
	ranks  map[pair]mergeTo // pair -> its rank and the id it merges into
	eot    int32

	mu    sync.Mutex
	cache map[string][]int32 // piece -> ids
}

type pair struct{ a, b int32 }

type mergeTo struct{ rank, id int32 }

// MinPairCount is the fewest occurrences a pair needs to be merged in
// training. Training stops early, with a vocabulary smaller than asked, when
// no pair occurs this often.
const MinPairCount = 2

// MinByteBPEVocab is the smallest byte_bpe vocabulary: 256 bytes and
// EndOfText.
const MinByteBPEVocab = 257

// TrainByteBPE learns vocabSize-257 merges from text (256 byte tokens, the
// merges, EndOfText). At each step the most frequent adjacent pair within a
// pre-tokenized piece is merged; ties go to the pair with the lowest first
// id, then the lowest second id, so training is deterministic. Pair counts
// are kept incrementally over the distinct pieces.
func TrainByteBPE(text string, vocabSize int) (*ByteBPE, error) {
	if vocabSize < MinByteBPEVocab {
		return nil, fmt.Errorf("vocab_size %d is too small for a byte_bpe tokenizer: it needs at least %d "+
			"(256 byte tokens and %s); 512 or more is usual", vocabSize, MinByteBPEVocab, EndOfText)
	}
	if text == "" {
		return nil, fmt.Errorf("cannot train a byte_bpe tokenizer on empty text")
	}
	freq := map[string]int{}
	splitGPT2(text, func(p string) { freq[p]++ })
	pieces := make([]string, 0, len(freq))
	for p := range freq {
		pieces = append(pieces, p)
	}
	slices.Sort(pieces)

	words := make([][]int32, len(pieces))
	counts := make([]int, len(pieces))
	pairCount := map[pair]int{}
	where := map[pair][]int32{} // pair -> words that may hold it
	for wi, p := range pieces {
		w := make([]int32, len(p))
		for i := 0; i < len(p); i++ {
			w[i] = int32(p[i])
		}
		words[wi], counts[wi] = w, freq[p]
		for i := 0; i+1 < len(w); i++ {
			q := pair{w[i], w[i+1]}
			pairCount[q] += freq[p]
			if l := where[q]; len(l) == 0 || l[len(l)-1] != int32(wi) {
				where[q] = append(l, int32(wi))
			}
		}
	}
	h := &pairHeap{}
	for q, c := range pairCount {
		h.items = append(h.items, pairEntry{c, q})
	}
	heap.Init(h)

	t := &ByteBPE{ranks: map[pair]mergeTo{}}
	for b := range 256 {
		t.tokens = append(t.tokens, []byte{byte(b)})
		t.byteID[b] = int32(b)
	}
	visited := make([]int, len(words))
	delta := map[pair]int{}
	for step := 1; len(t.tokens) < vocabSize-1; step++ {
		best, ok := popBest(h, pairCount)
		if !ok {
			break
		}
		id := int32(len(t.tokens))
		t.ranks[best] = mergeTo{int32(len(t.merges)), id}
		t.merges = append(t.merges, best)
		t.tokens = append(t.tokens, slices.Concat(t.tokens[best.a], t.tokens[best.b]))

		clear(delta)
		for _, wi := range where[best] {
			if visited[wi] == step {
				continue
			}
			visited[wi] = step
			w, f := words[wi], counts[wi]
			merged, changed := mergePair(w, best, id)
			if !changed {
				continue
			}
			for i := 0; i+1 < len(w); i++ {
				delta[pair{w[i], w[i+1]}] -= f
			}
			for i := 0; i+1 < len(merged); i++ {
				q := pair{merged[i], merged[i+1]}
				delta[q] += f
				if q.a == id || q.b == id {
					if l := where[q]; len(l) == 0 || l[len(l)-1] != wi {
						where[q] = append(l, wi)
					}
				}
			}
			words[wi] = merged
		}
		for q, d := range delta {
			if d == 0 {
				continue
			}
			c := pairCount[q] + d
			if c <= 0 {
				delete(pairCount, q)
				continue
			}
			pairCount[q] = c
			heap.Push(h, pairEntry{c, q})
		}
		delete(pairCount, best)
		delete(where, best)
	}
	t.eot = int32(len(t.tokens))
	t.tokens = append(t.tokens, nil)
	return t, nil
}

// popBest pops the most frequent pair whose heap entry is current.
func popBest(h *pairHeap, pairCount map[pair]int) (pair, bool) {
	for h.Len() > 0 {
		e := heap.Pop(h).(pairEntry)
		if pairCount[e.p] == e.count {
			if e.count < MinPairCount {
				return pair{}, false
			}
			return e.p, true
		}
	}
	return pair{}, false
}

// mergePair replaces each non-overlapping occurrence of p in w, left to
// right, by id.
func mergePair(w []int32, p pair, id int32) ([]int32, bool) {
	var out []int32
	for i := 0; i < len(w); i++ {
		if i+1 < len(w) && w[i] == p.a && w[i+1] == p.b {
			if out == nil {
				out = make([]int32, i, len(w)-1)
				copy(out, w[:i])
			}
			out = append(out, id)
			i++
			continue
		}
		if out != nil {
			out = append(out, w[i])
		}
	}
	if out == nil {
		return w, false
	}
	return out, true
}

type pairEntry struct {
	count int
	p     pair
}

// pairHeap orders by count, highest first, then by lowest pair ids.
type pairHeap struct{ items []pairEntry }

func (h *pairHeap) Len() int { return len(h.items) }
func (h *pairHeap) Less(i, j int) bool {
	x, y := h.items[i], h.items[j]
	if x.count != y.count {
		return x.count > y.count
	}
	if x.p.a != y.p.a {
		return x.p.a < y.p.a
	}
	return x.p.b < y.p.b
}
func (h *pairHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *pairHeap) Push(x any)    { h.items = append(h.items, x.(pairEntry)) }
func (h *pairHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

func (t *ByteBPE) Kind() Kind       { return KindByteBPE }
func (t *ByteBPE) VocabSize() int   { return len(t.tokens) }
func (t *ByteBPE) EndOfText() int32 { return t.eot }

// NumMerges is the number of learned merges.
func (t *ByteBPE) NumMerges() int { return len(t.merges) }

// TokenBytes returns the bytes of token id (nil for EndOfText or an unknown
// id).
func (t *ByteBPE) TokenBytes(id int32) []byte {
	if id < 0 || int(id) >= len(t.tokens) {
		return nil
	}
	return slices.Clone(t.tokens[id])
}

// cacheLimit bounds the piece cache; it is emptied when full.
const cacheLimit = 1 << 17

// maxCachedPiece is the longest piece (in bytes) worth caching.
const maxCachedPiece = 64

func (t *ByteBPE) Encode(text string) ([]int32, error) {
	ids := make([]int32, 0, len(text)/3+1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cache == nil {
		t.cache = map[string][]int32{}
	}
	splitGPT2(text, func(p string) {
		if c, ok := t.cache[p]; ok {
			ids = append(ids, c...)
			return
		}
		start := len(ids)
		ids = t.encodePiece(p, ids)
		if len(p) <= maxCachedPiece {
			if len(t.cache) >= cacheLimit {
				clear(t.cache)
			}
			t.cache[p] = slices.Clone(ids[start:])
		}
	})
	return ids, nil
}

// encodePiece appends the ids of one pre-tokenized piece to out: starting
// from single bytes, it repeatedly merges every occurrence of the adjacent
// pair of lowest rank.
func (t *ByteBPE) encodePiece(p string, out []int32) []int32 {
	w := make([]int32, len(p))
	for i := 0; i < len(p); i++ {
		w[i] = t.byteID[p[i]]
	}
	for len(w) > 1 {
		best := mergeTo{rank: -1}
		var bp pair
		for i := 0; i+1 < len(w); i++ {
			q := pair{w[i], w[i+1]}
			if m, ok := t.ranks[q]; ok && (best.rank < 0 || m.rank < best.rank) {
				best, bp = m, q
			}
		}
		if best.rank < 0 {
			break
		}
		w, _ = mergePair(w, bp, best.id)
	}
	return append(out, w...)
}

func (t *ByteBPE) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		switch {
		case id == t.eot:
			b.WriteString(EndOfText)
		case id >= 0 && int(id) < len(t.tokens) && t.tokens[id] != nil:
			b.Write(t.tokens[id])
		default:
			b.WriteRune(utf8.RuneError)
		}
	}
	return b.String()
}

// byteToUnicode is GPT-2's reversible map from bytes to printable characters
// (openai/gpt-2 src/encoder.py bytes_to_unicode): printable Latin-1 bytes map
// to themselves, the others to U+0100 upwards, so a space is 'Ġ' (U+0120).
var byteToUnicode, unicodeToByte = func() ([256]rune, map[rune]byte) {
	var fwd [256]rune
	keep := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	n := 0
	for b := range 256 {
		if keep(b) {
			fwd[b] = rune(b)
		} else {
			fwd[b] = rune(256 + n)
			n++
		}
	}
	back := make(map[rune]byte, 256)
	for b, r := range fwd {
		back[r] = byte(b)
	}
	return fwd, back
}()

// byteLevelString renders bytes with byteToUnicode, as tokenizer.json does.
func byteLevelString(bs []byte) string {
	var b strings.Builder
	for _, c := range bs {
		b.WriteRune(byteToUnicode[c])
	}
	return b.String()
}
