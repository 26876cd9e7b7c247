package testmodel_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/stretchr/testify/require"

	"github.com/aurax/aurax/models/testmodel"
)

var update = flag.Bool("update", false, "rewrite testdata/sha256sums from the current output")

func paths(f testmodel.Files) []string {
	return []string{f.ChatGGUF, f.ChatModelfile, f.EmbedGGUF, f.EmbedModelfile}
}

func TestWriteIsDeterministic(t *testing.T) {
	a, err := testmodel.Write(t.TempDir())
	require.NoError(t, err)
	b, err := testmodel.Write(t.TempDir())
	require.NoError(t, err)
	pa, pb := paths(a), paths(b)
	for i := range pa {
		da, err := os.ReadFile(pa[i])
		require.NoError(t, err)
		db, err := os.ReadFile(pb[i])
		require.NoError(t, err)
		require.Truef(t, bytes.Equal(da, db), "%s differs between two runs", filepath.Base(pa[i]))
	}
}

// TestWriteGolden pins the bytes: a change to the models must be deliberate
// (go test -update), since caches and Ollama's blobs key on them.
func TestWriteGolden(t *testing.T) {
	f, err := testmodel.Write(t.TempDir())
	require.NoError(t, err)
	var got strings.Builder
	for _, p := range paths(f) {
		d, err := os.ReadFile(p)
		require.NoError(t, err)
		sum := sha256.Sum256(d)
		fmt.Fprintf(&got, "%s  %s\n", hex.EncodeToString(sum[:]), filepath.Base(p))
	}
	golden := filepath.Join("testdata", "sha256sums")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got.String()), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), got.String())
}

func TestWriteOverwrites(t *testing.T) {
	dir := t.TempDir()
	_, err := testmodel.Write(dir)
	require.NoError(t, err)
	f, err := testmodel.Write(dir)
	require.NoError(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 4, "no temporary files left behind")
	for _, p := range paths(f) {
		require.FileExists(t, p)
	}
}

func decode(t *testing.T, path string) *ggml.GGML {
	t.Helper()
	r, err := os.Open(path)
	require.NoError(t, err)
	defer r.Close()
	g, err := ggml.Decode(r, -1)
	require.NoError(t, err)
	return g
}

func TestGGUFDecodes(t *testing.T) {
	f, err := testmodel.Write(t.TempDir())
	require.NoError(t, err)

	n := uint64(testmodel.EmbeddingLength)
	q, kv := uint64(testmodel.HeadCount*testmodel.HeadDim), uint64(testmodel.HeadCountKV*testmodel.HeadDim)
	ffn, hd := uint64(testmodel.FeedForward), uint64(testmodel.HeadDim)
	shapes := func(vocab uint64, output bool) map[string][]uint64 {
		want := map[string][]uint64{
			"token_embd.weight":  {n, vocab},
			"output_norm.weight": {n},
		}
		if output {
			want["output.weight"] = []uint64{n, vocab}
		}
		for b := range testmodel.BlockCount {
			for name, shape := range map[string][]uint64{
				"attn_norm": {n}, "attn_q": {n, q}, "attn_k": {n, kv}, "attn_v": {n, kv},
				"attn_output": {q, n}, "attn_q_norm": {hd}, "attn_k_norm": {hd},
				"ffn_norm": {n}, "ffn_gate": {n, ffn}, "ffn_up": {n, ffn}, "ffn_down": {ffn, n},
			} {
				want[fmt.Sprintf("blk.%d.%s.weight", b, name)] = shape
			}
		}
		return want
	}

	for _, tc := range []struct {
		path    string
		name    string
		pooling bool
		vocab   int
	}{
		{f.ChatGGUF, testmodel.ChatModel, false, testmodel.VocabSize},
		{f.EmbedGGUF, testmodel.EmbedModel, true, testmodel.EmbedVocabSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := decode(t, tc.path)
			k := g.KV()
			require.Equal(t, "qwen3", k.Architecture())
			require.Equal(t, tc.name, k.String("general.name"))
			require.Equal(t, uint64(testmodel.BlockCount), k.BlockCount())
			require.Equal(t, n, k.EmbeddingLength())
			require.Equal(t, uint64(testmodel.ContextLength), k.ContextLength())
			require.Equal(t, []uint64{testmodel.HeadCount, testmodel.HeadCount}, k.HeadCount())
			require.Equal(t, []uint64{testmodel.HeadCountKV, testmodel.HeadCountKV}, k.HeadCountKV())
			require.Equal(t, hd, k.EmbeddingHeadCountK())
			require.Equal(t, hd, k.EmbeddingHeadCountV())
			require.Equal(t, uint32(testmodel.FeedForward), k.Uint("feed_forward_length"))
			require.NotZero(t, k.Float("attention.layer_norm_rms_epsilon"))
			require.NotZero(t, k.Float("rope.freq_base"))
			require.Equal(t, "gpt2", k.String("tokenizer.ggml.model"))
			require.Equal(t, "qwen2", k.String("tokenizer.ggml.pre"))
			require.False(t, k.Bool("tokenizer.ggml.add_bos_token", true))
			require.Equal(t, uint32(testmodel.TokenIMEnd), k.Uint("tokenizer.ggml.eos_token_id"))
			_, hasPooling := k["qwen3.pooling_type"]
			require.Equal(t, tc.pooling, hasPooling)

			tokens := k.Strings("tokenizer.ggml.tokens")
			types := k.Ints("tokenizer.ggml.token_type")
			require.Len(t, tokens, tc.vocab)
			require.Len(t, types, tc.vocab)
			for i, tok := range []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"} {
				require.Equal(t, tok, tokens[256+i])
				require.Equal(t, int32(3), types[256+i], "%s is a control token", tok)
			}

			got := map[string][]uint64{}
			for _, tt := range g.Tensors().Items() {
				require.Equalf(t, uint32(0), tt.Kind, "%s is F32", tt.Name)
				got[tt.Name] = tt.Shape
			}
			require.Equal(t, shapes(uint64(tc.vocab), !tc.pooling), got, "the embedding model has no output.weight")
		})
	}
}

// TestVocabularyIsGPT2ByteLevel checks the symbols Ollama's BPE tokenizer
// looks bytes up by: token i is byte i, in both models.
func TestVocabularyIsGPT2ByteLevel(t *testing.T) {
	f, err := testmodel.Write(t.TempDir())
	require.NoError(t, err)
	for _, path := range []string{f.ChatGGUF, f.EmbedGGUF} {
		tokens := decode(t, path).KV().Strings("tokenizer.ggml.tokens")
		for b, want := range map[int]string{'a': "a", '!': "!", '~': "~", ' ': "Ġ", '\n': "Ċ", 0: "Ā", 0xAD: "Ń", 0xFF: "ÿ"} {
			require.Equalf(t, want, tokens[b], "%s: token for byte %#x", filepath.Base(path), b)
		}
		seen := map[string]bool{}
		for _, tok := range tokens {
			require.False(t, seen[tok], "%s: duplicate token %q", filepath.Base(path), tok)
			seen[tok] = true
		}
	}
}

func TestModelfiles(t *testing.T) {
	f, err := testmodel.Write(t.TempDir())
	require.NoError(t, err)
	chat, err := os.ReadFile(f.ChatModelfile)
	require.NoError(t, err)
	require.Contains(t, string(chat), "FROM ./aurax-tiny.gguf\n")
	require.Contains(t, string(chat), "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n")
	require.Contains(t, string(chat), "<|im_start|>assistant\n\"\"\"")
	require.Contains(t, string(chat), "PARAMETER stop <|im_end|>\n")
	require.Contains(t, string(chat), "PARAMETER num_thread 1\n")
	require.Contains(t, string(chat), "PARAMETER num_predict 512\n", "an answer without a limit still ends")
	embed, err := os.ReadFile(f.EmbedModelfile)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(embed), "FROM ./aurax-tiny-embed.gguf\n"))
	require.Contains(t, string(embed), "PARAMETER num_thread 1\n")
	require.NotContains(t, string(embed), "TEMPLATE")
}

func ExampleWrite() {
	dir, _ := os.MkdirTemp("", "testmodels")
	defer os.RemoveAll(dir)
	f, err := testmodel.Write(dir)
	if err != nil {
		panic(err)
	}
	fmt.Println(filepath.Base(f.ChatGGUF), filepath.Base(f.ChatModelfile))
	fmt.Println(filepath.Base(f.EmbedGGUF), filepath.Base(f.EmbedModelfile))
	// Output:
	// aurax-tiny.gguf aurax-tiny.Modelfile
	// aurax-tiny-embed.gguf aurax-tiny-embed.Modelfile
}
