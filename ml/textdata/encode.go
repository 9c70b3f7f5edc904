package textdata

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/llmlab/llmlab/ml/tokdata"
	"github.com/llmlab/llmlab/ml/tokenizer"
)

// EncodeText tokenizes a text corpus as text data (no loss mask, no
// records).
func EncodeText(tok tokenizer.Tokenizer, text string) (*tokdata.Data, error) {
	ids, err := tok.Encode(text)
	if err != nil {
		return nil, err
	}
	return &tokdata.Data{Kind: tokdata.KindText, VocabSize: tok.VocabSize(), Tokens: toUint32(ids)}, nil
}

func toUint32(ids []int32) []uint32 {
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = uint32(id)
	}
	return out
}

// Policy says what happens to a record longer than the maximum length.
type Policy string

const (
	// PolicyDrop leaves the record out.
	PolicyDrop Policy = "drop"
	// PolicyTruncate keeps its first MaxLength.Tokens tokens; a record whose
	// prompt alone fills them is dropped, since nothing of it would be
	// learned.
	PolicyTruncate Policy = "truncate"
)

// MaxLength is data_prep's `max_length` setting. Tokens <= 0 means no limit.
type MaxLength struct {
	Tokens int
	Policy Policy
}

// InstructionStats counts what EncodeInstructions did. Dropped and Truncated
// are never silent: the stage reports them.
type InstructionStats struct {
	Records   int // records kept
	Dropped   int // records left out for length
	Truncated int // records kept but cut to the maximum length
	Tokens    int
}

// EncodeInstructions renders each record with tmpl and tokenizes it as
// prompt tokens, response tokens and the end-of-text token. Prompt and
// response are encoded separately, so the boundary between them is a token
// boundary. The loss mask is 1 on the response tokens and the end-of-text
// token, 0 on the prompt. Records longer than limit.Tokens are dropped or
// truncated by limit.Policy and counted. Errors name the record (its index in
// recs).
func EncodeInstructions(tok tokenizer.Tokenizer, tmpl Template, recs []Instruction, limit MaxLength) (*tokdata.Data, InstructionStats, error) {
	var st InstructionStats
	switch limit.Policy {
	case PolicyDrop, PolicyTruncate:
	case "":
		limit.Policy = PolicyDrop
	default:
		return nil, st, fmt.Errorf("max_length policy %q: use %q or %q", limit.Policy, PolicyDrop, PolicyTruncate)
	}
	d := &tokdata.Data{
		Kind:         tokdata.KindInstructions,
		VocabSize:    tok.VocabSize(),
		Tokens:       []uint32{},
		LossMask:     []byte{},
		RecordStarts: []uint64{},
		Records:      []tokdata.Record{},
	}
	eot := uint32(tok.EndOfText())
	for i, r := range recs {
		if r.Input != "" && !tmpl.HasInput() {
			return nil, st, fmt.Errorf("record %d has an input but the template has no {input}: add {input} to the template", i)
		}
		prompt, response := tmpl.Render(r)
		p, err := tok.Encode(prompt)
		if err != nil {
			return nil, st, fmt.Errorf("record %d: %w", i, err)
		}
		a, err := tok.Encode(response)
		if err != nil {
			return nil, st, fmt.Errorf("record %d: %w", i, err)
		}
		n := len(p) + len(a) + 1
		keep := n
		if limit.Tokens > 0 && n > limit.Tokens {
			if limit.Policy == PolicyDrop || len(p) >= limit.Tokens {
				st.Dropped++
				continue
			}
			keep = limit.Tokens
			st.Truncated++
		}
		d.RecordStarts = append(d.RecordStarts, uint64(len(d.Tokens)))
		d.Records = append(d.Records, tokdata.Record(r))
		for j := range keep {
			var id uint32
			var m byte
			switch {
			case j < len(p):
				id = uint32(p[j])
			case j < len(p)+len(a):
				id, m = uint32(a[j-len(p)]), 1
			default:
				id, m = eot, 1
			}
			d.Tokens = append(d.Tokens, id)
			d.LossMask = append(d.LossMask, m)
		}
		st.Records++
	}
	st.Tokens = len(d.Tokens)
	return d, st, nil
}

// SplitRecords puts each record in the validation set when the hash of its
// key and seed, read as a number in [0, 1), is below validation; the others
// go to train. Order is kept, the same record always lands on the same side
// for a seed (duplicates included, so they never straddle the split), and
// a record's side does not depend on the other records.
func SplitRecords[T any](recs []T, key func(T) string, validation float64, seed int64) (train, val []T, err error) {
	if !(validation >= 0 && validation < 1) {
		return nil, nil, fmt.Errorf("split validation = %v: want a share in [0, 1), such as 0.1", validation)
	}
	for _, r := range recs {
		if unitHash("split\x00"+strconv.FormatInt(seed, 10)+"\x00"+key(r)) < validation {
			val = append(val, r)
		} else {
			train = append(train, r)
		}
	}
	return train, val, nil
}

// unitHash maps s to [0, 1) with SHA-256.
func unitHash(s string) float64 {
	h := sha256.Sum256([]byte(s))
	return float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53)
}
