// Package planner turns a parsed pipeline into a Plan: the stage graph,
// validation, cache keys, and for each stage whether it will run and why.
// A Plan is plain data: apply only reads it, and it can be saved to a file.
package planner

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// FormatVersion is the plan JSON schema version (see docs/plan-json.md).
const FormatVersion = "1"

// Actions.
const (
	ActionRun    = "run"
	ActionCached = "cached"
)

// Reason kinds.
const (
	ReasonNew           = "new"
	ReasonSetting       = "setting"
	ReasonInput         = "input"
	ReasonKindVersion   = "kind_version"
	ReasonReplace       = "replace"
	ReasonMissingOutput = "missing_output"
	ReasonCacheDisabled = "cache_disabled"
	ReasonFingerprint   = "fingerprint"
)

// Plan is what will run and why. Stages are in execution order.
type Plan struct {
	FormatVersion  string            `json:"format_version"`
	Pipeline       string            `json:"pipeline"`
	PipelineDigest string            `json:"pipeline_digest"`
	CreatedAt      time.Time         `json:"created_at"`
	Stages         []*StagePlan      `json:"stages"`
	Summary        Summary           `json:"summary"`
	Files          map[string]string `json:"files,omitempty"` // every user file or directory read, abs path -> digest
	Targets        []string          `json:"targets,omitempty"`
}

// Summary counts stages by action.
type Summary struct {
	Run    int `json:"run"`
	Cached int `json:"cached"`
}

// StagePlan is one stage instance in the plan.
type StagePlan struct {
	Address     string         `json:"address"`
	Kind        string         `json:"kind"`
	KindVersion int            `json:"kind_version"`
	Fingerprint string         `json:"fingerprint,omitempty"`
	Action      string         `json:"action"`
	Key         string         `json:"key"`
	Reasons     []Reason       `json:"reasons"`
	DependsOn   []string       `json:"depends_on"`
	Inputs      []Input        `json:"inputs"`
	Outputs     []string       `json:"outputs"`
	Settings    map[string]any `json:"settings"` // sensitive values shown as "(sensitive)"
	Resources   Resources      `json:"resources"`
	Retries     int            `json:"retries"`
	Timeout     string         `json:"timeout,omitempty"`
	Cache       bool           `json:"cache"`
	CachedAt    *time.Time     `json:"cached_at,omitempty"`

	// KeySettings is what entered the key: sensitive values as salted
	// hashes, references as addresses. The ledger keeps it for diffs.
	KeySettings map[string]any    `json:"key_settings"`
	KeyInputs   map[string]string `json:"key_inputs"`

	// Secrets holds the clear values of sensitive settings, by settings
	// path. It is written only to plan files (-out), never shown or stored
	// in the ledger.
	Secrets map[string]any `json:"secrets,omitempty"`
}

// Reason says why a stage will run.
type Reason struct {
	Kind string `json:"kind"`
	Path string `json:"path,omitempty"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

// Input is one artifact a stage reads, by its settings path.
type Input struct {
	Name   string `json:"name"`             // settings path, e.g. "data" or "inputs.base"
	Ref    string `json:"ref"`              // stage.x.out, dataset.x, or a path as written
	Path   string `json:"path,omitempty"`   // absolute path of a user file or directory
	Digest string `json:"digest,omitempty"` // content digest of a user file or directory
	Stage  string `json:"stage,omitempty"`  // producing stage instance
	Output string `json:"output,omitempty"` // its output name
}

// Resources are scheduling hints (never in the key).
type Resources struct {
	CPUs      int    `json:"cpus,omitempty"`
	Memory    string `json:"memory,omitempty"`
	GPUs      int    `json:"gpus,omitempty"`
	Time      string `json:"time,omitempty"`
	Partition string `json:"partition,omitempty"`
}

// Stage returns the stage with the given address.
func (p *Plan) Stage(addr string) *StagePlan {
	for _, s := range p.Stages {
		if s.Address == addr {
			return s
		}
	}
	return nil
}

// ClearSettings returns the settings with sensitive values in clear, for
// running the stage.
func (s *StagePlan) ClearSettings() map[string]any {
	if len(s.Secrets) == 0 {
		return s.Settings
	}
	out := deepCopy(s.Settings).(map[string]any)
	for path, v := range s.Secrets {
		setPath(out, path, v)
	}
	return out
}

// Public returns a copy of the plan without secrets, for display and -json.
func (p *Plan) Public() *Plan {
	cp := *p
	cp.Stages = make([]*StagePlan, len(p.Stages))
	for i, s := range p.Stages {
		sc := *s
		sc.Secrets = nil
		cp.Stages[i] = &sc
	}
	return &cp
}

// WriteFile saves the plan for a later `apply FILE`. The file may contain
// sensitive values, so it is created with mode 0600.
func (p *Plan) WriteFile(path string) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadFile loads a saved plan.
func ReadFile(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s is not a plan file: %w", path, err)
	}
	if p.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("%s is a plan of format %q; this llmlab reads format %q", path, p.FormatVersion, FormatVersion)
	}
	return &p, nil
}
