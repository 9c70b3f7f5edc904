package gpt

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/llmlab/llmlab/ml/safetensors"
)

// Files of a model directory written by this package. tokenizer.json is
// written by the tokenizer package beside them.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// SpecialTokens are optional token ids recorded in config.json.
type SpecialTokens struct {
	BOS, EOS *int
}

// hfConfig is the subset of Hugging Face's GPT2Config that we write and read.
type hfConfig struct {
	ModelType           string   `json:"model_type"`
	Architectures       []string `json:"architectures"`
	NLayer              int      `json:"n_layer"`
	NHead               int      `json:"n_head"`
	NEmbd               int      `json:"n_embd"`
	NPositions          int      `json:"n_positions"`
	NCtx                int      `json:"n_ctx"`
	VocabSize           int      `json:"vocab_size"`
	LayerNormEpsilon    float64  `json:"layer_norm_epsilon"`
	ActivationFunction  string   `json:"activation_function"`
	ResidPdrop          float64  `json:"resid_pdrop"`
	EmbdPdrop           float64  `json:"embd_pdrop"`
	AttnPdrop           float64  `json:"attn_pdrop"`
	TieWordEmbeddings   bool     `json:"tie_word_embeddings"`
	BOSTokenID          *int     `json:"bos_token_id,omitempty"`
	EOSTokenID          *int     `json:"eos_token_id,omitempty"`
	TorchDtype          string   `json:"torch_dtype"`
	ScaleAttnWeights    bool     `json:"scale_attn_weights"`
	InitializerRange    float64  `json:"initializer_range"`
	NInner              *int     `json:"n_inner"`
	ReorderAndUpcastAtt bool     `json:"reorder_and_upcast_attn"`
}

// SaveModelDir writes config.json and model.safetensors (Hugging Face GPT-2
// names, tied head so no lm_head) into dir, creating it if needed. Each file
// is written atomically. special may be nil.
func SaveModelDir(dir string, m *Model, special *SpecialTokens) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c := m.Config
	hc := hfConfig{
		ModelType: "gpt2", Architectures: []string{"GPT2LMHeadModel"},
		NLayer: c.Layers, NHead: c.Heads, NEmbd: c.Dim, NPositions: c.Context, NCtx: c.Context,
		VocabSize: c.Vocab, LayerNormEpsilon: float64(c.eps()), ActivationFunction: "gelu_new",
		TieWordEmbeddings: true, TorchDtype: "float32", ScaleAttnWeights: true, InitializerRange: 0.02,
	}
	if special != nil {
		hc.BOSTokenID, hc.EOSTokenID = special.BOS, special.EOS
	}
	js, err := json.MarshalIndent(hc, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, ConfigFile), append(js, '\n')); err != nil {
		return err
	}
	var ts []safetensors.Tensor
	for _, t := range m.Tensors() {
		ts = append(ts, safetensors.Tensor{Name: t.Name, Shape: t.Shape, Data: t.Data})
	}
	return safetensors.WriteFile(filepath.Join(dir, WeightsFile), ts, map[string]string{"format": "pt"})
}

// LoadModelDir reads a GPT-2 model directory (ours or a Hugging Face one in
// safetensors form).
func LoadModelDir(dir string) (*Model, *SpecialTokens, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, nil, fmt.Errorf("model directory %s: %w", dir, err)
	}
	var hc hfConfig
	if err := json.Unmarshal(b, &hc); err != nil {
		return nil, nil, fmt.Errorf("model directory %s: config.json: %w", dir, err)
	}
	if hc.ModelType != "gpt2" {
		return nil, nil, fmt.Errorf("model directory %s: model_type is %q; only \"gpt2\" is supported", dir, hc.ModelType)
	}
	switch hc.ActivationFunction {
	case "gelu_new", "gelu_pytorch_tanh":
	default:
		return nil, nil, fmt.Errorf("model directory %s: activation_function %q is not supported (want \"gelu_new\")", dir, hc.ActivationFunction)
	}
	if hc.NInner != nil && *hc.NInner != 4*hc.NEmbd {
		return nil, nil, fmt.Errorf("model directory %s: n_inner %d is not supported (want 4 x n_embd)", dir, *hc.NInner)
	}
	cfg := Config{Layers: hc.NLayer, Heads: hc.NHead, Dim: hc.NEmbd, Context: hc.NPositions, Vocab: hc.VocabSize, Eps: float32(hc.LayerNormEpsilon)}
	m, err := New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("model directory %s: %w", dir, err)
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, nil, fmt.Errorf("model directory %s: %w", dir, err)
	}
	if err := m.LoadTensors(f); err != nil {
		return nil, nil, fmt.Errorf("model directory %s: %w", dir, err)
	}
	return m, &SpecialTokens{BOS: hc.BOSTokenID, EOS: hc.EOSTokenID}, nil
}

// LoadTensors fills every parameter from a safetensors file by its GPT-2
// name. A "transformer." prefix is accepted; the attention-mask buffers
// (attn.bias, attn.masked_bias) and lm_head.weight (tied) are ignored; any
// other extra or missing tensor, or a shape mismatch, is an error.
func (m *Model) LoadTensors(f *safetensors.File) error {
	byName := make(map[string]string)
	for _, n := range f.Names() {
		short := strings.TrimPrefix(n, "transformer.")
		if short == "lm_head.weight" || strings.HasSuffix(short, ".attn.bias") || strings.HasSuffix(short, ".attn.masked_bias") {
			continue
		}
		byName[short] = n
	}
	for _, t := range m.Tensors() {
		n, ok := byName[t.Name]
		if !ok {
			return fmt.Errorf("weights have no tensor %q", t.Name)
		}
		delete(byName, t.Name)
		data, shape, err := f.Float32(n)
		if err != nil {
			return err
		}
		if !equalShape(shape, t.Shape) {
			return fmt.Errorf("tensor %q has shape %v, the config needs %v", t.Name, shape, t.Shape)
		}
		copy(t.Data, data)
	}
	var extra []string
	for _, n := range byName {
		extra = append(extra, n)
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("weights have unexpected tensors: %s", strings.Join(extra, ", "))
	}
	return nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
