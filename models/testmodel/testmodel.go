// Package testmodel writes tiny qwen3 GGUF models and their Modelfiles, so dev and CI can run a real Ollama in seconds.
package testmodel

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ollama/ollama/fs/ggml"
)

// Names under which scripts/ollama-up.sh creates the models in Ollama.
const (
	ChatModel  = "aurax-tiny"
	EmbedModel = "aurax-tiny-embed"
)

// Shape of both models (FACTS.md, "Tiny qwen3 models"). EmbeddingLength is
// also the length of the vectors /api/embed returns for EmbedModel.
const (
	EmbeddingLength = 64
	HeadCount       = 4
	HeadCountKV     = 2
	HeadDim         = 16
	FeedForward     = 128
	BlockCount      = 2
	ContextLength   = 8192
	VocabSize       = 256 + len(controlTokens)
)

// Control tokens follow the 256 byte tokens, so token id i < 256 is byte i.
const (
	TokenEndOfText = 256 + iota
	TokenIMStart
	TokenIMEnd
)

var controlTokens = [...]string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}

// Token types as GGUF stores them.
const (
	tokenTypeNormal  = 1
	tokenTypeControl = 3
)

// poolingMean makes Ollama load the file as qwen3_embed with mean pooling
// (pooling.TypeMean is 1 in Ollama v0.17.4; 2 is the first token, 3 the
// last): the vector is the mean over the text's tokens (see embed.go).
const poolingMean uint32 = 1

// chatTemplate is ChatML, as qwen3 uses; stop is the token that ends a turn.
const chatTemplate = `{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
`

// Files are the paths Write wrote.
type Files struct {
	ChatGGUF       string // chat model weights
	ChatModelfile  string // Modelfile for ChatModel: FROM, TEMPLATE, stop
	EmbedGGUF      string // embedding model weights (pooling_type set)
	EmbedModelfile string // Modelfile for EmbedModel
}

// Write writes both models and their Modelfiles into dir, creating it if
// needed, and returns their paths. The output is byte-for-byte the same on
// every run. Each file is written to a temporary name and renamed, so a
// reader never sees a partial file.
func Write(dir string) (Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("testmodel: %w", err)
	}
	f := Files{
		ChatGGUF:       filepath.Join(dir, ChatModel+".gguf"),
		ChatModelfile:  filepath.Join(dir, ChatModel+".Modelfile"),
		EmbedGGUF:      filepath.Join(dir, EmbedModel+".gguf"),
		EmbedModelfile: filepath.Join(dir, EmbedModel+".Modelfile"),
	}
	steps := []struct {
		path  string
		write func(*os.File) error
	}{
		{f.ChatGGUF, func(w *os.File) error { return writeGGUF(w, false) }},
		{f.EmbedGGUF, func(w *os.File) error { return writeGGUF(w, true) }},
		{f.ChatModelfile, func(w *os.File) error { return writeString(w, chatModelfile(filepath.Base(f.ChatGGUF))) }},
		{f.EmbedModelfile, func(w *os.File) error { return writeString(w, embedModelfile(filepath.Base(f.EmbedGGUF))) }},
	}
	for _, s := range steps {
		if err := writeAtomic(s.path, s.write); err != nil {
			return Files{}, fmt.Errorf("testmodel: write %s: %w", s.path, err)
		}
	}
	return f, nil
}

// oneThread is in both Modelfiles: the models are so small that one thread
// is fastest, and on a busy machine ggml's threads, spinning at barriers,
// made 50 tokens take 14 s with 2 threads against 20 ms with one.
const oneThread = "# One thread: fastest for a tiny model, and immune to a busy CPU.\nPARAMETER num_thread 1\n"

// chatModelfile refers to the GGUF relative to the Modelfile's directory,
// as `ollama create -f` resolves FROM.
func chatModelfile(gguf string) string {
	return fmt.Sprintf("FROM ./%s\nTEMPLATE \"\"\"%s\"\"\"\nPARAMETER stop <|im_end|>\n%s%s", gguf, chatTemplate, oneThread, answerCap)
}

// answerCap bounds an answer that sets no limit of its own: random weights
// may never emit <|im_end|>, and Ollama, shifting its context, would then
// generate forever and hold its slot (seen: one such request wedged the
// shared test Ollama for everyone). 512 tokens is half a second here.
const answerCap = "# Random weights may never end a turn: cap answers that set no limit.\nPARAMETER num_predict 512\n"

func embedModelfile(gguf string) string {
	return fmt.Sprintf("FROM ./%s\n%s", gguf, oneThread)
}

func writeString(w io.Writer, s string) error {
	_, err := io.WriteString(w, s)
	return err
}

func writeAtomic(path string, write func(*os.File) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeGGUF writes one model. The chat model is byte-level with steered
// random weights (weights.go); the embedding model has the same shape but
// its own vocabulary and lexical weights (embed.go), and pooling_type.
func writeGGUF(w *os.File, embed bool) error {
	kv := ggml.KV{
		"general.architecture":             "qwen3",
		"general.name":                     ChatModel,
		"general.file_type":                uint32(0), // all F32
		"block_count":                      uint32(BlockCount),
		"context_length":                   uint32(ContextLength),
		"embedding_length":                 uint32(EmbeddingLength),
		"feed_forward_length":              uint32(FeedForward),
		"attention.head_count":             uint32(HeadCount),
		"attention.head_count_kv":          uint32(HeadCountKV),
		"attention.key_length":             uint32(HeadDim),
		"attention.value_length":           uint32(HeadDim),
		"attention.layer_norm_rms_epsilon": float32(rmsEpsilon),
		"rope.freq_base":                   float32(1e6),
		"tokenizer.ggml.model":             "gpt2",
		"tokenizer.ggml.pre":               "qwen2",
		"tokenizer.ggml.tokens":            vocabulary(),
		"tokenizer.ggml.token_type":        tokenTypes(),
		"tokenizer.ggml.merges":            []string{},
		"tokenizer.ggml.bos_token_id":      uint32(TokenEndOfText),
		"tokenizer.ggml.eos_token_id":      uint32(TokenIMEnd),
		"tokenizer.ggml.padding_token_id":  uint32(TokenEndOfText),
		"tokenizer.ggml.add_bos_token":     false,
	}
	if !embed {
		return ggml.WriteGGUF(w, kv, weights())
	}
	v := newEmbedVocab()
	kv["general.name"] = EmbedModel
	kv["pooling_type"] = poolingMean
	kv["tokenizer.ggml.tokens"] = v.tokens
	kv["tokenizer.ggml.token_type"] = v.types
	kv["tokenizer.ggml.merges"] = v.merges
	return ggml.WriteGGUF(w, kv, embedWeights(v))
}

// vocabulary is the 256 GPT-2 byte-level symbols, in byte order, then the
// control tokens.
func vocabulary() []string {
	v := make([]string, 0, VocabSize)
	for b := range 256 {
		v = append(v, string(byteSymbol(byte(b))))
	}
	return append(v, controlTokens[:]...)
}

func tokenTypes() []int32 {
	t := make([]int32, VocabSize)
	for i := range t {
		t[i] = tokenTypeNormal
		if i >= 256 {
			t[i] = tokenTypeControl
		}
	}
	return t
}

// byteSymbol is GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for
// themselves, the other 68 map in order to U+0100 onwards (space is 'Ġ').
func byteSymbol(b byte) rune {
	if printable(b) {
		return rune(b)
	}
	n := 0
	for c := range int(b) {
		if !printable(byte(c)) {
			n++
		}
	}
	return rune(256 + n)
}

func printable(b byte) bool {
	return ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || 0xAE <= b
}

// f32s is a tensor's data, written little-endian as GGUF F32.
type f32s []float32

// WriteTo implements io.WriterTo for ggml.Tensor.
func (d f32s) WriteTo(w io.Writer) (int64, error) {
	if err := binary.Write(w, binary.LittleEndian, []float32(d)); err != nil {
		return 0, err
	}
	return int64(4 * len(d)), nil
}

func tensor(name string, data f32s, shape ...uint64) *ggml.Tensor {
	return &ggml.Tensor{Name: name, Kind: 0, Shape: shape, WriterTo: data}
}
