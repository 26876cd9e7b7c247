package testmodel

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func embedTensors(t *testing.T) (embedVocab, map[string]f32s) {
	t.Helper()
	v := newEmbedVocab()
	ts := map[string]f32s{}
	for _, tt := range embedWeights(v) {
		ts[tt.Name] = tt.WriterTo.(f32s)
	}
	return v, ts
}

// TestEmbedMerges checks what Ollama's BPE needs to build every piece: each
// merge's halves and result are tokens, and each capitalised merge ranks
// right after its lowercase twin, so both split a word alike.
func TestEmbedMerges(t *testing.T) {
	v, _ := embedTensors(t)
	require.Len(t, v.tokens, EmbedVocabSize)
	ids := map[string]int{}
	for id, tok := range v.tokens {
		ids[tok] = id
	}
	seen := map[string]bool{}
	for i, m := range v.merges {
		require.False(t, seen[m], "duplicate merge %q", m)
		seen[m] = true
		l, r, ok := strings.Cut(m, " ")
		require.True(t, ok, "merge %q", m)
		for _, tok := range []string{l, r, l + r} {
			_, ok := ids[tok]
			require.Truef(t, ok, "merge %q: %q is not a token", m, tok)
		}
		require.NotContains(t, m, "Ġ", "no merge takes the space: words tokenise alike after one")
		if i%2 == 1 {
			require.Equal(t, capitalise(v.merges[i-1]), m, "merge %d is the twin of merge %d", i, i-1)
		}
	}
	for _, piece := range []string{"th", "Th", "the", "The", "par", "Par", "zzz"} {
		require.Contains(t, ids, piece)
	}
}

// TestEmbedWeights checks the arithmetic embed.go relies on: the blocks add
// nothing, twins share a row, and RMSNorm scales each row to its weight.
func TestEmbedWeights(t *testing.T) {
	v, ts := embedTensors(t)
	for name, d := range ts {
		if strings.HasSuffix(name, "attn_output.weight") || strings.HasSuffix(name, "ffn_down.weight") {
			for _, x := range d {
				require.Zero(t, x, "%s must be zero", name)
			}
		}
	}
	_, hasOutput := ts["output.weight"]
	require.False(t, hasOutput)

	n := EmbeddingLength
	embd := ts["token_embd.weight"]
	require.Len(t, embd, n*EmbedVocabSize)
	row := func(tok string) []float32 {
		for id, s := range v.tokens {
			if s == tok {
				return embd[id*n : (id+1)*n]
			}
		}
		t.Fatalf("no token %q", tok)
		return nil
	}
	// normed is the row's RMS after Ollama's RMSNorm: its weight.
	normed := func(r []float32) float64 {
		var ss float64
		for _, x := range r {
			ss += float64(x) * float64(x)
		}
		ms := ss / float64(n)
		return math.Sqrt(ms) / math.Sqrt(ms+rmsEpsilon)
	}
	for tok, want := range map[string]float64{
		"par": weightPiece, "Par": weightPiece, "zq": weightPiece,
		"the": weightFunction, "The": weightFunction, "and": weightFunction,
		"x": weightLone, "7": weightLone, "\u00e9": weightNonASCII,
		"Ġ": weightOther, ".": weightOther, "<|im_end|>": weightOther,
	} {
		require.InDeltaf(t, want, normed(row(tok)), 1e-3, "weight of %q", tok)
	}
	require.Equal(t, row("par"), row("Par"), "a twin shares its lowercase piece's row")
	require.Equal(t, row("p"), row("P"), "a capital letter shares its lowercase letter's row")

	// Different pieces point in near-orthogonal directions.
	cos := func(a, b []float32) float64 {
		var ab, aa, bb float64
		for i := range a {
			ab += float64(a[i]) * float64(b[i])
			aa += float64(a[i]) * float64(a[i])
			bb += float64(b[i]) * float64(b[i])
		}
		return ab / math.Sqrt(aa*bb)
	}
	var sum, worst float64
	pieces := []string{"par", "kin", "per", "mit", "fir", "dri", "ll", "hol", "day"}
	pairs := 0
	for i := range pieces {
		for j := range i {
			c := math.Abs(cos(row(pieces[i]), row(pieces[j])))
			sum += c
			worst = max(worst, c)
			pairs++
		}
	}
	require.Less(t, sum/float64(pairs), 0.2, "mean |cos| between pieces")
	require.Less(t, worst, 0.5, "largest |cos| between pieces")
}
