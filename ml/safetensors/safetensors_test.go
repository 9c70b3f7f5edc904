package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTripAndLayout(t *testing.T) {
	ts := []Tensor{
		{Name: "b", Shape: []int{3}, Data: []float32{1, -2, 3.5}},
		{Name: "a", Shape: []int{2, 1}, Data: []float32{float32(math.Inf(1)), 0.25}},
	}
	var buf bytes.Buffer
	if err := Write(&buf, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	n := binary.LittleEndian.Uint64(b[:8])
	hdr := string(b[8 : 8+n])
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	// Expected header, written by hand from the format description: metadata
	// first, tensors sorted by name with consecutive offsets, space padding.
	want := `{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[3],"data_offsets":[8,20]}}`
	if strings.TrimRight(hdr, " ") != want {
		t.Errorf("header\n%s\nwant\n%s", hdr, want)
	}
	if len(b) != 8+int(n)+20 {
		t.Errorf("file is %d bytes, want %d", len(b), 8+int(n)+20)
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", f.Metadata)
	}
	for _, tt := range ts {
		got, shape, err := f.Float32(tt.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(shape) != len(tt.Shape) || len(got) != len(tt.Data) {
			t.Fatalf("%s: shape %v data %v", tt.Name, shape, got)
		}
		for i := range got {
			if got[i] != tt.Data[i] {
				t.Errorf("%s[%d] = %g, want %g", tt.Name, i, got[i], tt.Data[i])
			}
		}
	}
	if got := f.Names(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("Names() = %v", got)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.safetensors")
	if err := WriteFile(p, []Tensor{{Name: "x", Shape: []int{1}, Data: []float32{7}}}, nil); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
	f, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := f.Float32("x"); v[0] != 7 {
		t.Errorf("x = %v", v)
	}
}

// TestReadHalf reads F16 and BF16 tensors written by hand: 1.0 is 0x3C00 in
// F16 and 0x3F80 in BF16; -2.0 is 0xC000 / 0xC000; 2^-24 is F16 0x0001.
func TestReadHalf(t *testing.T) {
	hdr := `{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"g":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]}}`
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, uint64(len(hdr)))
	b = append(b, hdr...)
	for _, v := range []uint16{0x3C00, 0xC000, 0x0001, 0x3F80, 0xC000} {
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := f.Float32("h")
	if h[0] != 1 || h[1] != -2 || h[2] != float32(math.Ldexp(1, -24)) {
		t.Errorf("F16 = %v", h)
	}
	g, _, _ := f.Float32("g")
	if g[0] != 1 || g[1] != -2 {
		t.Errorf("BF16 = %v", g)
	}
}

func TestErrors(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, []Tensor{{Name: "x", Shape: []int{2, 2}, Data: []float32{1}}}, nil)
	if err == nil || !strings.Contains(err.Error(), `tensor "x" has shape [2 2] (4 values) but 1 values`) {
		t.Errorf("shape mismatch error = %v", err)
	}
	err = Write(&buf, []Tensor{{Name: "x", Shape: []int{1}, Data: []float32{1}}, {Name: "x", Shape: []int{1}, Data: []float32{1}}}, nil)
	if err == nil || !strings.Contains(err.Error(), `duplicate tensor name "x"`) {
		t.Errorf("duplicate error = %v", err)
	}
	if _, err := Parse([]byte{1, 2}); err == nil || !strings.Contains(err.Error(), "shorter than the 8-byte header length") {
		t.Errorf("short file error = %v", err)
	}
	bad := binary.LittleEndian.AppendUint64(nil, 1000)
	if _, err := Parse(append(bad, "{}"...)); err == nil || !strings.Contains(err.Error(), "header length 1000 does not fit") {
		t.Errorf("long header error = %v", err)
	}
	hdr := `{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}`
	b := append(binary.LittleEndian.AppendUint64(nil, uint64(len(hdr))), hdr...)
	b = append(b, make([]byte, 12)...)
	if _, err := Parse(b); err == nil || !strings.Contains(err.Error(), `tensor "x" has 12 bytes for shape [2] of F32`) {
		t.Errorf("size mismatch error = %v", err)
	}
	f, _ := Parse(append(binary.LittleEndian.AppendUint64(nil, 2), "{}"...))
	if _, _, err := f.Float32("nope"); err == nil || !strings.Contains(err.Error(), `no tensor named "nope"`) {
		t.Errorf("missing tensor error = %v", err)
	}
}
