package store

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// benchSize is LLMLAB_BENCH_SIZE bytes (default 256 MiB).
func benchSize(b *testing.B) int {
	if v := os.Getenv("LLMLAB_BENCH_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("LLMLAB_BENCH_SIZE=%q: want a positive number of bytes", v)
		}
		return n
	}
	return 256 << 20
}

// prepareOutput writes data as a stage output in a fresh work dir and
// flushes it, so that the timed part is what PutArtifact itself costs
// (hash, fsync of clean data, chmod, rename, directory fsync). It first
// removes the object a previous iteration stored, so every iteration
// stores a new object (re-storing an existing one also pays for freeing
// the old copy's blocks, about 50 ms per 256 MiB on ext4 here).
func prepareOutput(b *testing.B, s *Store, data []byte) string {
	b.Helper()
	os.Remove(s.objectPath(digestOnce(data)))
	work, err := s.NewWorkDir("bench")
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(work, "model.bin")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return p
}

// BenchmarkPutArtifact measures storing one large output file (hash +
// move). Size: LLMLAB_BENCH_SIZE.
func BenchmarkPutArtifact(b *testing.B) {
	size := benchSize(b)
	data := randomBytes(42, size)
	s := openTemp(b)
	digestOnce(data)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p := prepareOutput(b, s, data)
		b.StartTimer()
		if _, err := s.PutArtifact(p); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.RemoveWorkDir(filepath.Dir(p))
		b.StartTimer()
	}
}

// BenchmarkPutArtifactVsOpenSSL times, on the same file in each iteration,
// `openssl dgst -sha256 FILE` and then PutArtifact(FILE), and reports both
// throughputs and their ratio (store/openssl; the goal is >= 0.9).
func BenchmarkPutArtifactVsOpenSSL(b *testing.B) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		b.Skip("openssl not installed")
	}
	size := benchSize(b)
	data := randomBytes(43, size)
	s := openTemp(b)
	digestOnce(data)
	var tStore, tSSL time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p := prepareOutput(b, s, data)
		want := digestOnce(data)
		b.StartTimer()

		t0 := time.Now()
		out, err := exec.Command(openssl, "dgst", "-sha256", "-r", p).Output()
		tSSL += time.Since(t0)
		if err != nil || string(out[:64]) != want.String() {
			b.Fatalf("openssl: %v %q", err, out)
		}
		t0 = time.Now()
		a, err := s.PutArtifact(p)
		tStore += time.Since(t0)
		if err != nil || a.Digest != want {
			b.Fatal(a, err)
		}

		b.StopTimer()
		s.RemoveWorkDir(filepath.Dir(p))
		b.StartTimer()
	}
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/tStore.Seconds(), "store-MB/s")
	b.ReportMetric(mb/tSSL.Seconds(), "openssl-MB/s")
	b.ReportMetric(tSSL.Seconds()/tStore.Seconds(), "store/openssl")
}

// BenchmarkHashFile is hashing alone (what HashPath costs on a cache miss).
func BenchmarkHashFile(b *testing.B) {
	size := benchSize(b)
	p := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(p, randomBytes(44, size), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := hashFile(p); err != nil {
			b.Fatal(err)
		}
	}
}

var digests = map[*byte]Digest{}

// digestOnce caches DigestOf(data) so prepareOutput does not re-hash the
// benchmark data in every iteration.
func digestOnce(data []byte) Digest {
	if d, ok := digests[&data[0]]; ok {
		return d
	}
	d := DigestOf(data)
	digests[&data[0]] = d
	return d
}
