package ledger

import "testing"

func TestStatStartTime(t *testing.T) {
	stat := []byte("4242 (we ird) (name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 12345678 100\n")
	got, ok := statStartTime(stat)
	if !ok || got != "987654" {
		t.Errorf("statStartTime = %q, %v; want 987654 (field 22)", got, ok)
	}
	if _, ok := statStartTime([]byte("garbage")); ok {
		t.Error("statStartTime accepted a line without a command name")
	}
}
