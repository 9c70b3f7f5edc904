package gpt

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmlab/llmlab/ml/safetensors"
)

func TestModelDirRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	m := tinyModel(t, Config{Layers: 2, Heads: 2, Dim: 8, Context: 6, Vocab: 10}, 1)
	eos := 3
	if err := SaveModelDir(dir, m, &SpecialTokens{EOS: &eos}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "config.json,model.safetensors" {
		t.Errorf("directory holds %v", names)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"model_type": "gpt2", "n_layer": 2.0, "n_head": 2.0, "n_embd": 8.0,
		"n_positions": 6.0, "n_ctx": 6.0, "vocab_size": 10.0, "layer_norm_epsilon": 1e-5,
		"activation_function": "gelu_new", "eos_token_id": 3.0, "resid_pdrop": 0.0} {
		if got := cfg[k]; got != want {
			if f, ok := got.(float64); !ok || math.Abs(f-want.(float64)) > 1e-12 {
				t.Errorf("config.json %s = %v, want %v", k, got, want)
			}
		}
	}
	if _, ok := cfg["bos_token_id"]; ok {
		t.Errorf("bos_token_id written though unknown")
	}
	if a, _ := cfg["architectures"].([]any); len(a) != 1 || a[0] != "GPT2LMHeadModel" {
		t.Errorf("architectures = %v", cfg["architectures"])
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if info := f.Tensors["h.1.mlp.c_fc.weight"]; len(info.Shape) != 2 || info.Shape[0] != 8 || info.Shape[1] != 32 {
		t.Errorf("h.1.mlp.c_fc.weight shape %v, want [8 32] (Conv1D [in, out])", info.Shape)
	}
	if _, ok := f.Tensors["lm_head.weight"]; ok {
		t.Error("lm_head.weight written; the head is tied")
	}
	back, special, err := LoadModelDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Config != m.Config {
		t.Errorf("config %+v, want %+v", back.Config, m.Config)
	}
	if special.EOS == nil || *special.EOS != 3 || special.BOS != nil {
		t.Errorf("special tokens %+v", special)
	}
	for i := range m.Params {
		if back.Params[i] != m.Params[i] {
			t.Fatalf("param %d = %g, want %g", i, back.Params[i], m.Params[i])
		}
	}
}

func TestLoadModelDirErrors(t *testing.T) {
	dir := t.TempDir()
	m := tinyModel(t, Config{Layers: 1, Heads: 1, Dim: 4, Context: 4, Vocab: 5}, 1)
	if err := SaveModelDir(dir, m, nil); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.json")
	orig, _ := os.ReadFile(cfgPath)
	edit := func(from, to string) {
		os.WriteFile(cfgPath, []byte(strings.Replace(string(orig), from, to, 1)), 0o644)
	}
	edit(`"model_type": "gpt2"`, `"model_type": "llama"`)
	if _, _, err := LoadModelDir(dir); err == nil || !strings.Contains(err.Error(), `model_type is "llama"; only "gpt2" is supported`) {
		t.Errorf("model_type: err = %v", err)
	}
	edit(`"gelu_new"`, `"relu"`)
	if _, _, err := LoadModelDir(dir); err == nil || !strings.Contains(err.Error(), `activation_function "relu" is not supported`) {
		t.Errorf("activation: err = %v", err)
	}
	edit(`"n_embd": 4`, `"n_embd": 8`)
	if _, _, err := LoadModelDir(dir); err == nil || !strings.Contains(err.Error(), `tensor "wte.weight" has shape [5 4], the config needs [5 8]`) {
		t.Errorf("shape: err = %v", err)
	}
	if _, _, err := LoadModelDir(filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "config.json: no such file") {
		t.Errorf("missing dir: err = %v", err)
	}
}
