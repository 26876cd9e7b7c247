package testmodel

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// nextToken is the bigram approximation the steering relies on (blocks
// ignored): softmax(output · rmsnorm(embedding(last)) / temperature).
func nextToken(t *testing.T, last int, temperature float64) []float64 {
	t.Helper()
	var embd, out f32s
	for _, ts := range weights() {
		switch ts.Name {
		case "token_embd.weight":
			embd = ts.WriterTo.(f32s)
		case "output.weight":
			out = ts.WriterTo.(f32s)
		}
	}
	n := EmbeddingLength
	h := embd[last*n : (last+1)*n]
	var ss float64
	for _, x := range h {
		ss += float64(x) * float64(x)
	}
	rms := math.Sqrt(ss / float64(n))
	p := make([]float64, VocabSize)
	var sum float64
	for tok := range p {
		var l float64
		for i, x := range h {
			l += float64(out[tok*n+i]) * float64(x) / rms
		}
		p[tok] = math.Exp(l / temperature)
		sum += p[tok]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

func TestSteering(t *testing.T) {
	const temperature = 0.8 // Ollama's default
	for _, tc := range []struct {
		name               string
		last               int
		minSpace, maxSpace float64
		minIMEnd, maxIMEnd float64
	}{
		{"turn start (newline)", '\n', 0, 1e-4, 0, 1e-4},
		{"after a space", ' ', 0, 1e-4, 0, 1e-4},
		{"after im_start", TokenIMStart, 0, 1e-4, 0, 1e-4},
		{"after a letter", 'e', 0.05, 0.4, 0.01, 0.1},
		{"after another letter", 'Q', 0.05, 0.4, 0.01, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := nextToken(t, tc.last, temperature)
			require.InDelta(t, (tc.minSpace+tc.maxSpace)/2, p[' '], (tc.maxSpace-tc.minSpace)/2, "P(space)")
			require.InDelta(t, (tc.minIMEnd+tc.maxIMEnd)/2, p[TokenIMEnd], (tc.maxIMEnd-tc.minIMEnd)/2, "P(<|im_end|>)")
			var letters float64
			for b := range 256 {
				if isLetter(byte(b)) {
					letters += p[b]
				}
			}
			require.InDelta(t, 1, letters+p[' ']+p[TokenIMEnd], 1e-3, "only letters, space and <|im_end|> are ever sampled")
		})
	}
}
