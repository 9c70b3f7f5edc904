package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Digest is the SHA-256 of an object's content: the ID of a blob or of a
// tree manifest in the store.
type Digest [32]byte

// ActionKey is the cache key of one stage run (see planner); it names an
// action entry. It is a separate type from Digest so that the two cannot be
// mixed up.
type ActionKey [32]byte

// DigestOf returns the SHA-256 digest of b.
func DigestOf(b []byte) Digest { return Digest(sha256.Sum256(b)) }

// String returns the 64 lower-case hex characters of d.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// Short returns the first 12 hex characters of d, for display.
func (d Digest) Short() string { return d.String()[:12] }

// IsZero reports whether d is the zero digest (no object).
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText encodes d as hex.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText decodes 64 hex characters into d.
func (d *Digest) UnmarshalText(b []byte) error {
	v, err := parseHex32("digest", string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDigest parses 64 hex characters.
func ParseDigest(s string) (Digest, error) {
	v, err := parseHex32("digest", s)
	return Digest(v), err
}

// String returns the 64 lower-case hex characters of k.
func (k ActionKey) String() string { return hex.EncodeToString(k[:]) }

// Short returns the first 12 hex characters of k, for display.
func (k ActionKey) Short() string { return k.String()[:12] }

// IsZero reports whether k is the zero key.
func (k ActionKey) IsZero() bool { return k == ActionKey{} }

// MarshalText encodes k as hex.
func (k ActionKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes 64 hex characters into k.
func (k *ActionKey) UnmarshalText(b []byte) error {
	v, err := parseHex32("action key", string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ParseActionKey parses 64 hex characters.
func ParseActionKey(s string) (ActionKey, error) {
	v, err := parseHex32("action key", s)
	return ActionKey(v), err
}

func parseHex32(what, s string) ([32]byte, error) {
	var v [32]byte
	if len(s) != 64 {
		return v, fmt.Errorf("invalid %s %q: want 64 hex characters, got %d characters", what, s, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return v, fmt.Errorf("invalid %s %q: character %q at offset %d is not lower-case hex", what, s, c, i)
		}
	}
	if _, err := hex.Decode(v[:], []byte(s)); err != nil {
		return v, fmt.Errorf("invalid %s %q: %v", what, s, err)
	}
	return v, nil
}
