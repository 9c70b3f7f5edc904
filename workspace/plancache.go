package workspace

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/llmlab/llmlab/dsl"
	"github.com/llmlab/llmlab/planner"
	"github.com/llmlab/llmlab/stages"
)

// The plan cache keeps, per pipeline, the last evaluated plan
// (planner.Evaluate: every stage's settings, inputs and key, before any
// action is decided) so that planning an unchanged pipeline again skips
// parsing and evaluating it. Only the evaluation is reused: which stages
// are cached is decided afresh from the store and the ledger every time
// (planner.Finish).
//
// An entry is used only if everything the evaluation depends on is
// unchanged (see PlanKey and CachedPlan):
//   - the llmlab executable (path, size, modification time, inode): stage
//     kinds, their schemas, versions and defaults, and the planner itself;
//   - the pipeline's path (as given and absolute) and its exact bytes;
//   - the variables: LLMLAB_VAR_* environment entries, -var flags and the
//     content of each -var-file, in order;
//   - the workspace's salt;
//   - the content digest of every file and directory the plan read
//     (Plan.Files), re-checked through the store's stat-keyed digest cache;
//   - each kind's version and backend fingerprint, re-checked.
//
// Pipelines (or variables) that may call file() are never cached, since
// what file() reads is not among these; nor are plans with any diagnostic
// or with sensitive values (the cache would hold their clear values).
// Entries carry a checksum; a damaged or stale entry is ignored.

// planCacheVersion changes whenever the entry format or what the key
// covers changes.
const planCacheVersion = "llmlab-plan-cache/1"

// mayReadFiles matches source that may call file(); conservative.
var mayReadFiles = regexp.MustCompile(`file\s*\(`)

// PlanKey returns the plan cache key of the pipeline named filename with
// source src and the given variables, or "" if its plan must not be
// cached.
func (w *Workspace) PlanKey(filename string, src []byte, vars dsl.VarInputs) string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return ""
	}
	h := sha256.New()
	field := func(h hash.Hash, s string) { fmt.Fprintf(h, "%d:%s\n", len(s), s) }
	field(h, planCacheVersion)
	field(h, exe)
	fmt.Fprintf(h, "%d %d\n", fi.Size(), fi.ModTime().UnixNano())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		fmt.Fprintf(h, "%d %d\n", st.Dev, st.Ino)
	}
	field(h, filename)
	field(h, w.Pipeline)
	if mayReadFiles.Match(src) {
		return ""
	}
	field(h, string(src))
	fmt.Fprintf(h, "env\n")
	for _, kv := range vars.Env {
		if strings.HasPrefix(kv, dsl.EnvPrefix) {
			if mayReadFiles.MatchString(kv) {
				return ""
			}
			field(h, kv)
		}
	}
	fmt.Fprintf(h, "files %d\n", len(vars.Files))
	for _, f := range vars.Files {
		b, err := os.ReadFile(f)
		if err != nil || mayReadFiles.Match(b) {
			return ""
		}
		field(h, f)
		field(h, string(b))
	}
	fmt.Fprintf(h, "vars %d\n", len(vars.Vars))
	for _, v := range vars.Vars {
		if mayReadFiles.MatchString(v) {
			return ""
		}
		field(h, v)
	}
	field(h, string(w.salt))
	return hex.EncodeToString(h.Sum(nil))
}

// planCacheFile is where the entry of this workspace's pipeline lives.
func (w *Workspace) planCacheFile() string {
	sum := sha256.Sum256([]byte(w.Pipeline))
	return filepath.Join(w.Root, "plans", hex.EncodeToString(sum[:16])+".json")
}

const planCacheHeader = "llmlab-plan/1 "

type planCacheEntry struct {
	Key  string        `json:"key"`
	Plan *planner.Plan `json:"plan"`
}

// SavePlan stores plan, as returned by planner.Evaluate (before
// planner.Finish changes it), under key. Plans that are not cacheable
// (key "", sensitive values) are not stored. Errors are ignored: the cache
// only saves time.
func (w *Workspace) SavePlan(key string, plan *planner.Plan) {
	if key == "" || !cacheable(plan) {
		return
	}
	body, err := json.Marshal(planCacheEntry{Key: key, Plan: plan})
	if err != nil {
		return
	}
	sum := sha256.Sum256(body)
	var buf bytes.Buffer
	buf.WriteString(planCacheHeader)
	buf.WriteString(hex.EncodeToString(sum[:]))
	buf.WriteByte('\n')
	buf.Write(body)
	final := w.planCacheFile()
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(final), "tmp-")
	if err != nil {
		return
	}
	_, err = f.Write(buf.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), final)
	}
	if err != nil {
		os.Remove(f.Name())
	}
}

// cacheable reports whether plan may be written to disk: it holds no
// clear sensitive value.
func cacheable(plan *planner.Plan) bool {
	for _, s := range plan.Stages {
		if len(s.Secrets) > 0 {
			return false
		}
	}
	return true
}

// CachedPlan returns the evaluated plan stored under key, if it is intact
// and still valid: every file it read has the same content digest, and
// every stage's kind the same version and fingerprint. Its CreatedAt is
// now. nil means evaluate the pipeline again.
func (w *Workspace) CachedPlan(key string) *planner.Plan {
	if key == "" {
		return nil
	}
	b, err := os.ReadFile(w.planCacheFile())
	if err != nil {
		return nil
	}
	line, body, ok := bytes.Cut(b, []byte("\n"))
	if !ok || !bytes.HasPrefix(line, []byte(planCacheHeader)) {
		return nil
	}
	sum := sha256.Sum256(body)
	if string(line[len(planCacheHeader):]) != hex.EncodeToString(sum[:]) {
		return nil
	}
	var e planCacheEntry
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // settings hold json.Number, as the planner makes them
	if err := dec.Decode(&e); err != nil || e.Key != key || e.Plan == nil || e.Plan.FormatVersion != planner.FormatVersion {
		return nil
	}
	for path, want := range e.Plan.Files {
		if got, err := w.Digest(path); err != nil || got != want {
			return nil
		}
	}
	for _, s := range e.Plan.Stages {
		kind, ok := stages.Lookup(s.Kind)
		if !ok || kind.Version() != s.KindVersion {
			return nil
		}
		fp := ""
		if f, ok := kind.(stages.Fingerprinter); ok {
			fp = f.Fingerprint()
		}
		if fp != s.Fingerprint {
			return nil
		}
	}
	if e.Plan.Files == nil {
		e.Plan.Files = map[string]string{} // as the planner makes it (omitted when empty)
	}
	e.Plan.CreatedAt = time.Now().UTC()
	return e.Plan
}
