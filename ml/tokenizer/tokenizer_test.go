package tokenizer

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func readExcerpt(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("testdata/tinyshakespeare_20k.txt")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The golden pieces come from Python's regex module with GPT-2's pattern
// (testdata/gen_gpt2_splits.py).
func TestSplitGPT2MatchesRegexModule(t *testing.T) {
	data, err := os.ReadFile("testdata/gpt2_splits.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Text   string   `json:"text"`
		Pieces []string `json:"pieces"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("only %d golden cases", len(cases))
	}
	for _, c := range cases {
		var got []string
		splitGPT2(c.Text, func(p string) { got = append(got, p) })
		if !slices.Equal(got, c.Pieces) {
			t.Errorf("split(%q)\n got %q\nwant %q", c.Text, got, c.Pieces)
		}
	}
}

func TestSplitGPT2KeepsEveryByte(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", " ", "  ", "\n", "\t", "'", "'s", "1", "é", "日", "!", "\xff", "\xe6\x97", "\u00a0", "🙂"}
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		s := b.String()
		var got strings.Builder
		n := 0
		splitGPT2(s, func(p string) {
			if p == "" {
				t.Fatalf("empty piece in %q", s)
			}
			got.WriteString(p)
			n++
		})
		if got.String() != s {
			t.Fatalf("pieces of %q join to %q", s, got.String())
		}
	}
}

func TestTrainChar(t *testing.T) {
	tok, err := TrainChar("hello, world\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []rune{'\n', ' ', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w'}
	if got := tok.Chars(); !slices.Equal(got, want) {
		t.Fatalf("chars %q, want %q", got, want)
	}
	if tok.VocabSize() != 11 || tok.EndOfText() != 10 {
		t.Fatalf("vocab %d eot %d, want 11 and 10", tok.VocabSize(), tok.EndOfText())
	}
	ids, err := tok.Encode("hold")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{5, 7, 6, 3}; !slices.Equal(ids, want) {
		t.Fatalf("Encode(hold) = %v, want %v", ids, want)
	}
	if got := tok.Decode(append(ids, tok.EndOfText(), 99)); got != "hold<|endoftext|>\uFFFD" {
		t.Fatalf("Decode = %q", got)
	}
}

func TestCharErrors(t *testing.T) {
	tok, err := TrainChar("abc")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ text, want string }{
		{"abé", `characters not in the tokenizer's vocabulary: 'é' (U+00E9); train the char tokenizer on text that contains them, or use a byte-level BPE tokenizer (tokenizer { kind = "byte_bpe" }), which can encode any text`},
		{"ßaéßé\n", `characters not in the tokenizer's vocabulary: 'ß' (U+00DF), 'é' (U+00E9), '\n' (U+000A); `},
		{"0123456789xyz", `'9' (U+0039), and 3 more; `},
	} {
		_, err := tok.Encode(c.text)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Encode(%q) error = %v, want it to contain %q", c.text, err, c.want)
		}
	}
	if _, err := TrainChar(""); err == nil || err.Error() != "cannot train a char tokenizer on empty text" {
		t.Errorf("TrainChar(\"\") error = %v", err)
	}
	if _, err := Train("wordpiece", "x", 0); err == nil || err.Error() != `unknown tokenizer kind "wordpiece": use "char" or "byte_bpe"` {
		t.Errorf("Train(wordpiece) error = %v", err)
	}
}

// The example of Wikipedia's "Byte pair encoding" article: aa is merged
// first (4 times), then ab and Za tie at 2 and the lower ids win (a=97 <
// Z=256), then ZY; every pair left occurs once, below MinPairCount.
func TestTrainByteBPEWikipediaExample(t *testing.T) {
	tok, err := TrainByteBPE("aaabdaaabac", 300)
	if err != nil {
		t.Fatal(err)
	}
	wantMerges := []pair{{'a', 'a'}, {'a', 'b'}, {256, 257}}
	if !slices.Equal(tok.merges, wantMerges) {
		t.Fatalf("merges %v, want %v", tok.merges, wantMerges)
	}
	if tok.VocabSize() != 260 || tok.EndOfText() != 259 {
		t.Fatalf("vocab %d eot %d, want 260 and 259", tok.VocabSize(), tok.EndOfText())
	}
	ids, _ := tok.Encode("aaabdaaabac")
	if want := []int32{258, 'd', 258, 'a', 'c'}; !slices.Equal(ids, want) {
		t.Fatalf("Encode = %v, want %v", ids, want)
	}
	if got := string(tok.TokenBytes(258)); got != "aaab" {
		t.Fatalf("token 258 = %q, want aaab", got)
	}
}

func TestTrainByteBPEErrors(t *testing.T) {
	if _, err := TrainByteBPE("abc", 256); err == nil || !strings.HasPrefix(err.Error(), "vocab_size 256 is too small for a byte_bpe tokenizer: it needs at least 257") {
		t.Errorf("error = %v", err)
	}
	if _, err := TrainByteBPE("", 300); err == nil || err.Error() != "cannot train a byte_bpe tokenizer on empty text" {
		t.Errorf("error = %v", err)
	}
}

// naiveMerges recounts every pair from scratch at each step: the reference
// for the incremental trainer.
func naiveMerges(text string, n int) []pair {
	var words [][]int32
	var freqs []int
	idx := map[string]int{}
	splitGPT2(text, func(p string) {
		if i, ok := idx[p]; ok {
			freqs[i]++
			return
		}
		idx[p] = len(words)
		w := make([]int32, len(p))
		for i := range len(p) {
			w[i] = int32(p[i])
		}
		words, freqs = append(words, w), append(freqs, 1)
	})
	var merges []pair
	for len(merges) < n {
		counts := map[pair]int{}
		for wi, w := range words {
			for i := 0; i+1 < len(w); i++ {
				counts[pair{w[i], w[i+1]}] += freqs[wi]
			}
		}
		best, bc := pair{}, 0
		for p, c := range counts {
			if c > bc || (c == bc && (p.a < best.a || (p.a == best.a && p.b < best.b))) {
				best, bc = p, c
			}
		}
		if bc < MinPairCount {
			break
		}
		id := int32(256 + len(merges))
		merges = append(merges, best)
		for wi := range words {
			words[wi], _ = mergePair(words[wi], best, id)
		}
	}
	return merges
}

func TestTrainByteBPEMatchesNaiveRecount(t *testing.T) {
	text := readExcerpt(t)[:6000]
	tok, err := TrainByteBPE(text, 257+120)
	if err != nil {
		t.Fatal(err)
	}
	want := naiveMerges(text, 120)
	if !slices.Equal(tok.merges, want) {
		t.Fatalf("incremental merges differ from a full recount:\n got %v\nwant %v", tok.merges, want)
	}
}

func TestByteBPEShakespeare(t *testing.T) {
	text := readExcerpt(t)
	start := time.Now()
	tok, err := TrainByteBPE(text, 512)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trained on %d bytes in %v", len(text), time.Since(start))
	if tok.VocabSize() != 512 || tok.EndOfText() != 511 || tok.NumMerges() != 255 {
		t.Fatalf("vocab %d eot %d merges %d", tok.VocabSize(), tok.EndOfText(), tok.NumMerges())
	}
	ids, err := tok.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Decode(ids); got != text {
		t.Fatal("decode(encode(text)) != text")
	}
	// 255 merges on English text compress well below one token per byte.
	if ratio := float64(len(text)) / float64(len(ids)); ratio < 2 {
		t.Fatalf("only %.2f bytes per token", ratio)
	}
	// Determinism: the same text gives the same bytes.
	again, _ := TrainByteBPE(text, 512)
	a, _ := tok.MarshalJSON()
	b, _ := again.MarshalJSON()
	if !bytes.Equal(a, b) {
		t.Fatal("two trainings gave different tokenizer.json")
	}
	// Unseen text, any bytes, the special token's spelling as plain text.
	for _, s := range []string{"Ünïcödé 日本語 🙂", "\xff\xfe bad utf8 \xe6", "x<|endoftext|>y", ""} {
		ids, _ := tok.Encode(s)
		if got := tok.Decode(ids); got != s {
			t.Errorf("round trip of %q gave %q", s, got)
		}
		if slices.Contains(ids, tok.EndOfText()) {
			t.Errorf("Encode(%q) produced the special token", s)
		}
	}
}

func TestHFJSONByteBPE(t *testing.T) {
	tok, err := TrainByteBPE(readExcerpt(t)[:4000], 300)
	if err != nil {
		t.Fatal(err)
	}
	data, err := tok.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder", "model"} {
		if _, ok := f[k]; !ok {
			t.Errorf("tokenizer.json lacks %q", k)
		}
	}
	if f["version"] != "1.0" {
		t.Errorf("version %v", f["version"])
	}
	model := f["model"].(map[string]any)
	if model["type"] != "BPE" {
		t.Errorf("model.type %v", model["type"])
	}
	vocab := model["vocab"].(map[string]any)
	if len(vocab) != 300 || vocab["Ġ"] != float64(' ') || vocab["<|endoftext|>"] != float64(299) || vocab["a"] != float64('a') {
		t.Errorf("vocab has %d entries, Ġ=%v, eot=%v, a=%v", len(vocab), vocab["Ġ"], vocab["<|endoftext|>"], vocab["a"])
	}
	merges := model["merges"].([]any)
	if len(merges) != 43 {
		t.Errorf("%d merges, want 43", len(merges))
	}
	for _, m := range merges {
		a, b, _ := strings.Cut(m.(string), " ")
		if _, ok := vocab[a+b]; !ok {
			t.Errorf("merge %q makes a token not in the vocab", m)
		}
	}
	if pt := f["pre_tokenizer"].(map[string]any); pt["type"] != "ByteLevel" || pt["add_prefix_space"] != false {
		t.Errorf("pre_tokenizer %v", pt)
	}
	if d := f["decoder"].(map[string]any); d["type"] != "ByteLevel" {
		t.Errorf("decoder %v", d)
	}
	added := f["added_tokens"].([]any)[0].(map[string]any)
	if added["content"] != EndOfText || added["id"] != float64(299) || added["special"] != true {
		t.Errorf("added_tokens %v", added)
	}
	if !bytes.Contains(data, []byte(`"<|endoftext|>": 299`)) {
		t.Error("special token is HTML-escaped or missing")
	}

	// Save, Load: same bytes, same encodings.
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := Save(path, tok); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := loaded.MarshalJSON()
	if !bytes.Equal(data, again) {
		t.Fatal("tokenizer.json changed across Load/MarshalJSON")
	}
	text := readExcerpt(t)[4000:9000] + " ünïcode"
	x, _ := tok.Encode(text)
	y, _ := loaded.Encode(text)
	if !slices.Equal(x, y) || loaded.Decode(y) != text || loaded.Kind() != KindByteBPE {
		t.Fatal("loaded tokenizer encodes differently")
	}
}

func TestHFJSONChar(t *testing.T) {
	tok, err := TrainChar("To be, or not to be\n\"é\"")
	if err != nil {
		t.Fatal(err)
	}
	data, err := tok.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		PreTokenizer any `json:"pre_tokenizer"`
		Normalizer   any `json:"normalizer"`
		Decoder      struct {
			Type string `json:"type"`
		} `json:"decoder"`
		Model struct {
			Type   string           `json:"type"`
			Vocab  map[string]int32 `json:"vocab"`
			Merges []any            `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if f.PreTokenizer != nil || f.Normalizer != nil || f.Decoder.Type != "Fuse" || f.Model.Type != "BPE" || f.Model.Merges == nil || len(f.Model.Merges) != 0 {
		t.Fatalf("char tokenizer.json settings: %+v", f)
	}
	if f.Model.Vocab["\n"] != 0 || f.Model.Vocab["é"] != int32(tok.VocabSize()-2) || f.Model.Vocab[EndOfText] != tok.EndOfText() {
		t.Fatalf("vocab %v", f.Model.Vocab)
	}
	loaded, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := loaded.MarshalJSON()
	if !bytes.Equal(data, again) || loaded.Kind() != KindChar {
		t.Fatal("char tokenizer.json changed across Parse/MarshalJSON")
	}
	ids, err := loaded.Encode("not \"é\"")
	if err != nil || loaded.Decode(ids) != "not \"é\"" {
		t.Fatalf("loaded char tokenizer: %v %v", ids, err)
	}
}

func TestParseErrors(t *testing.T) {
	bpe := `{"version":"1.0","added_tokens":[],"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":%s,"merges":%s}}`
	for _, c := range []struct{ name, data, want string }{
		{"not json", `{`, "not a tokenizer.json: unexpected end of JSON input"},
		{"wordpiece", `{"model":{"type":"WordPiece","vocab":{}}}`, `unsupported tokenizer.json: model type "WordPiece"; llmlab reads BPE models only`},
		{"no eot", `{"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`, `tokenizer.json: no "<|endoftext|>" token in model.vocab; llmlab needs it to end records`},
		{"gap in ids", `{"model":{"type":"BPE","vocab":{"a":0,"<|endoftext|>":2},"merges":[]}}`, `tokenizer.json: model.vocab ids must be 0..1, each once; "<|endoftext|>" has id 2`},
		{"char with multi-char token", `{"model":{"type":"BPE","vocab":{"ab":0,"<|endoftext|>":1},"merges":[]}}`, `tokenizer.json: token "ab" (id 0) is not a single character; a char vocabulary has one character per token`},
		{"byte level missing bytes", strings.Replace(strings.Replace(bpe, "%s", `{"a":0,"<|endoftext|>":1}`, 1), "%s", `[]`, 1), `tokenizer.json: byte 0x00 ('Ā') has no token; a byte-level vocabulary needs all 256`},
		{"bad merge", `{"model":{"type":"BPE","vocab":{"a":0,"<|endoftext|>":1},"merges":["ab"]}}`, `tokenizer.json: model.merges[0] "ab" is not two tokens separated by one space`},
		{"merges without byte level", `{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"<|endoftext|>":3},"merges":[["a","b"]]}}`, "unsupported tokenizer.json: llmlab reads byte-level BPE"},
	} {
		_, err := Parse([]byte(c.data))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: error = %v, want prefix %q", c.name, err, c.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.HasPrefix(err.Error(), "reading tokenizer: open ") {
		t.Errorf("Load(missing) error = %v", err)
	}
}

func TestParseAcceptsArrayMerges(t *testing.T) {
	tok, _ := TrainByteBPE("hello hello hello world world", 270)
	data, _ := tok.MarshalJSON()
	var f map[string]any
	json.Unmarshal(data, &f)
	model := f["model"].(map[string]any)
	var arr [][]string
	for _, m := range model["merges"].([]any) {
		a, b, _ := strings.Cut(m.(string), " ")
		arr = append(arr, []string{a, b})
	}
	model["merges"] = arr
	data2, _ := json.Marshal(f)
	loaded, err := Parse(data2)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := tok.Encode("hello world")
	y, _ := loaded.Encode("hello world")
	if !slices.Equal(x, y) || len(x) >= len("hello world") {
		t.Fatalf("array merges: %v vs %v", x, y)
	}
}

func FuzzByteBPERoundTrip(f *testing.F) {
	text := readExcerpt(f)[:5000]
	tok, err := TrainByteBPE(text, 400)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "hello world", "  \n\n x", "\xff\x00", "日本語 🙂", "I'm 12.5 ok'll"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := tok.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Decode(ids); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, got)
		}
		if len(ids) > len(s) {
			t.Fatalf("%d ids for %d bytes", len(ids), len(s))
		}
		if utf8.ValidString(s) {
			c, err := TrainChar(s + "x")
			if err != nil {
				t.Fatal(err)
			}
			cids, err := c.Encode(s)
			if err != nil || c.Decode(cids) != s {
				t.Fatalf("char round trip of %q: %v", s, err)
			}
		}
	})
}

// BenchmarkTrainByteBPE512 trains on the corpus in $TOKENIZER_BENCH_CORPUS
// (e.g. the whole tinyshakespeare) or, without it, on the 20 KB excerpt.
func BenchmarkTrainByteBPE512(b *testing.B) {
	text := benchCorpus(b)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := TrainByteBPE(text, 512); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeByteBPE512(b *testing.B) {
	text := benchCorpus(b)
	tok, err := TrainByteBPE(text, 512)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.mu.Lock()
		clear(tok.cache) // measure a cold cache: one pass over a corpus
		tok.mu.Unlock()
		if _, err := tok.Encode(text); err != nil {
			b.Fatal(err)
		}
	}
}

func benchCorpus(b *testing.B) string {
	if p := os.Getenv("TOKENIZER_BENCH_CORPUS"); p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		return string(data)
	}
	return readExcerpt(b)
}
