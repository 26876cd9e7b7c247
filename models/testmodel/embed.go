package testmodel

import (
	"math"
	"strings"

	"github.com/ollama/ollama/fs/ggml"
)

// The embedding model is lexical: a bag of word pieces, so that texts
// sharing words are near and unrelated texts are not, through the real
// Ollama. Ollama's qwen3_embed path (v0.17.4) computes
//
//	L2Norm(Mean_over_tokens(RMSNorm_eps(h_t)))
//
// where h_t is the residual stream at token t after the blocks. The blocks'
// output projections (attn_output, ffn_down) are zero, so every block adds
// nothing and h_t is token t's input embedding: the vector of a text is the
// normalised mean of its tokens' RMS-normalised embeddings.
//
// Tokens. Byte-level tokens alone would make a bag of letters, nearly the
// same for any two English texts. The vocabulary adds every lowercase
// letter bigram and trigram, each with its capitalised twin ("pa", "Pa",
// "par", "Par"), and merges that build them: all bigram merges rank before
// all trigram merges, and each twin's merge ranks right after its lowercase
// merge, so "Parking" splits exactly as "parking" does (into pieces of one
// to three letters, e.g. "par" "kin" "g"). No merge involves the space
// byte: a word tokenises the same with or without a leading space.
//
// Embeddings. Every lowercase piece has its own random direction (64
// random dimensions: near-orthogonal, |cos| ≈ 0.12); a twin (and a capital
// letter) shares its lowercase piece's direction. A token's weight in the mean is set by its
// embedding's RMS a: RMSNorm maps it to RMS a/√(a²+ε), so a ≫ √ε counts
// fully and a ≈ √ε counts partly (ε is layer_norm_rms_epsilon). Word
// pieces weigh 1; a few function words ("the", "and", "of") and lone
// letters and digits less; spaces, punctuation and control tokens almost
// nothing, so they neither dominate nor make a vector zero.
const (
	letterCount = 26

	// EmbedVocabSize is the embedding model's vocabulary: the chat model's,
	// then the bigram and trigram pieces and their capitalised twins.
	EmbedVocabSize = VocabSize + 2*letterCount*letterCount + 2*letterCount*letterCount*letterCount

	rmsEpsilon = 1e-6

	weightPiece    = 1.0  // letter bigrams and trigrams
	weightFunction = 0.15 // function words that are pieces ("the", "of")
	weightLone     = 0.2  // a letter or digit left alone
	weightNonASCII = 0.5  // a byte of a UTF-8 sequence (non-English text)
	weightOther    = 0.02 // space, punctuation, control bytes and tokens

	embedSeed = 0x61757261782d656d // "aurax-em"
)

// functionWords weigh weightFunction: the common English words short
// enough to be one piece.
var functionWords = strings.Fields(`an as at be by do he if in is it me my no of on or so to up us we
	all and any are but can did for had has her him his how its may nor not our out she the was who why you`)

// embedVocab is the embedding model's tokenizer and, per token, the
// lowercase token whose direction it shares and its weight.
type embedVocab struct {
	tokens []string
	types  []int32
	merges []string
	dir    []int     // token id whose random direction this token uses
	weight []float64 // its weight in the mean, in (0, 1]
}

func newEmbedVocab() embedVocab {
	v := embedVocab{tokens: vocabulary(), types: tokenTypes()}
	for id := range v.tokens {
		d := id
		if 'A' <= id && id <= 'Z' {
			d += 'a' - 'A' // a capital letter is its lowercase letter
		}
		v.dir = append(v.dir, d)
		v.weight = append(v.weight, baseWeight(id))
	}
	function := map[string]bool{}
	for _, w := range functionWords {
		function[w] = true
	}
	add := func(piece string) {
		w := weightPiece
		if function[piece] {
			w = weightFunction
		}
		id := len(v.tokens)
		v.tokens = append(v.tokens, piece, capitalise(piece))
		v.types = append(v.types, tokenTypeNormal, tokenTypeNormal)
		v.dir = append(v.dir, id, id)
		v.weight = append(v.weight, w, w)
	}
	merge := func(left, right string) {
		v.merges = append(v.merges, left+" "+right, capitalise(left)+" "+right)
	}
	letter := func(i int) string { return string(rune('a' + i)) }
	for a := range letterCount {
		for b := range letterCount {
			add(letter(a) + letter(b))
			merge(letter(a), letter(b))
		}
	}
	for a := range letterCount {
		for b := range letterCount {
			for c := range letterCount {
				x, y, z := letter(a), letter(b), letter(c)
				add(x + y + z)
				merge(x+y, z)
				merge(x, y+z)
			}
		}
	}
	return v
}

// baseWeight is the weight of a byte or control token.
func baseWeight(id int) float64 {
	if id >= 256 {
		return weightOther
	}
	b := byte(id)
	switch {
	case isLetter(b) || '0' <= b && b <= '9':
		return weightLone
	case b >= 0x80:
		return weightNonASCII
	}
	return weightOther
}

func capitalise(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// amplitude is the RMS an embedding needs for RMSNorm(ε) to scale it to
// RMS w.
func amplitude(w float64) float64 {
	if w >= 1 {
		return 1 // a/√(a²+ε) = 1 - 5e-7
	}
	return w * math.Sqrt(rmsEpsilon/(1-w*w))
}

// embedWeights returns every tensor of the embedding model. It has no
// output.weight: the embedding path never computes logits.
func embedWeights(v embedVocab) []*ggml.Tensor {
	r := rng(embedSeed)
	n := EmbeddingLength
	tokEmbd := make(f32s, n*len(v.tokens))
	for id := range v.tokens {
		if v.dir[id] != id {
			continue // a twin: copied below
		}
		row := tokEmbd[id*n : (id+1)*n]
		var ss float64
		for i := range row {
			row[i] = r.uniform(1)
			ss += float64(row[i]) * float64(row[i])
		}
		scale := amplitude(v.weight[id]) / math.Sqrt(ss/float64(n))
		for i := range row {
			row[i] = float32(float64(row[i]) * scale)
		}
	}
	for id, d := range v.dir {
		copy(tokEmbd[id*n:(id+1)*n], tokEmbd[d*n:(d+1)*n]) // the same direction and weight
	}

	ts := []*ggml.Tensor{
		tensor("token_embd.weight", tokEmbd, uint64(n), uint64(len(v.tokens))),
		tensor("output_norm.weight", ones(n), uint64(n)),
	}
	return append(ts, blockTensors(&r, n, true)...)
}
