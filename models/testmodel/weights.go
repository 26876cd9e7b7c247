package testmodel

import (
	"fmt"
	"math"

	"github.com/ollama/ollama/fs/ggml"
)

// The weights are random but steered, so that the chat model behaves like a
// (very bad) real one: it answers with visible text (ASCII letters and
// spaces, like words), never starts with a space or an end of turn, and ends
// its turn with <|im_end|> after about 25 tokens (a geometric length: a few
// pass 100), so requests without num_predict finish in milliseconds instead
// of running to Ollama's limit of 10×num_ctx.
//
// The blocks' weights are small, so the residual stream at a position is
// nearly the input embedding of its token: the model is a bigram model whose
// logits are output·embedding(last token). Two embedding dimensions steer it:
//
//   - dimBias is the same for every token, so an output row's value there
//     acts as that token's logit bias;
//   - dimFresh is set for every token but letters ("not inside a word"), so
//     a negative value there forbids a token after a space, a newline (where
//     every assistant turn starts) or a control token.
//
// The other dimensions are random; only letters get random output rows, so
// which letter follows which is random but nothing else is ever sampled.
const (
	dimBias  = 0
	dimFresh = 1

	embedStd  = 1.0  // input embeddings, free dimensions
	biasValue = 4.0  // every token's dimBias
	freshFlag = 4.0  // non-letters' dimFresh
	letterStd = 0.15 // letters' output rows, free dimensions
	blockStd  = 0.02 // attention and feed-forward matrices

	spaceBias  = 0.70               // ≈ one token in six is a space
	imEndBias  = 0.35               // ≈ one in twenty-five ends the turn
	freshBan   = -3.0               // on dimFresh: no space or end right after a non-letter
	neverBias  = -10.0              // every other token
	randomSeed = 0x61757261782d746d // "aurax-tm"
)

// weights returns every tensor of the chat model.
func weights() []*ggml.Tensor {
	r := rng(randomSeed)
	n, v := EmbeddingLength, VocabSize

	tokEmbd := make(f32s, n*v)
	output := make(f32s, n*v)
	for t := range v {
		row := tokEmbd[t*n : (t+1)*n]
		for i := range row {
			row[i] = r.uniform(embedStd)
		}
		letter := t < 256 && isLetter(byte(t))
		row[dimBias], row[dimFresh] = biasValue, 0
		if !letter {
			row[dimFresh] = freshFlag
		}

		out := output[t*n : (t+1)*n]
		switch {
		case letter:
			for i := range out {
				out[i] = r.uniform(letterStd)
			}
			out[dimBias], out[dimFresh] = 0, 0
		case t == ' ':
			out[dimBias], out[dimFresh] = spaceBias, freshBan
		case t == TokenIMEnd:
			out[dimBias], out[dimFresh] = imEndBias, freshBan
		default:
			out[dimBias] = neverBias
		}
	}

	ts := []*ggml.Tensor{
		tensor("token_embd.weight", tokEmbd, uint64(n), uint64(v)),
		tensor("output_norm.weight", ones(n), uint64(n)),
		tensor("output.weight", output, uint64(n), uint64(v)),
	}
	return append(ts, blockTensors(&r, n, false)...)
}

func isLetter(b byte) bool { return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' }

func ones(n int) f32s {
	d := make(f32s, n)
	for i := range d {
		d[i] = 1
	}
	return d
}

// rng is splitmix64: written out here, rather than math/rand, so the bytes
// of the models can never change with the Go version.
// blockTensors are the BlockCount transformer blocks of width n, their
// matrices drawn from r in a fixed order; quiet zeroes each block's
// attention output and feed-forward down projection, so that the blocks
// add nothing to the residual stream (the embedder's bag of words).
func blockTensors(r *rng, n int, quiet bool) []*ggml.Tensor {
	out := func(size int) f32s {
		if quiet {
			return make(f32s, size)
		}
		return r.matrix(size)
	}
	var ts []*ggml.Tensor
	q, kv := HeadCount*HeadDim, HeadCountKV*HeadDim
	for b := range BlockCount {
		p := fmt.Sprintf("blk.%d.", b)
		ts = append(ts,
			tensor(p+"attn_norm.weight", ones(n), uint64(n)),
			tensor(p+"attn_q.weight", r.matrix(n*q), uint64(n), uint64(q)),
			tensor(p+"attn_k.weight", r.matrix(n*kv), uint64(n), uint64(kv)),
			tensor(p+"attn_v.weight", r.matrix(n*kv), uint64(n), uint64(kv)),
			tensor(p+"attn_output.weight", out(q*n), uint64(q), uint64(n)),
			tensor(p+"attn_q_norm.weight", ones(HeadDim), uint64(HeadDim)),
			tensor(p+"attn_k_norm.weight", ones(HeadDim), uint64(HeadDim)),
			tensor(p+"ffn_norm.weight", ones(n), uint64(n)),
			tensor(p+"ffn_gate.weight", r.matrix(n*FeedForward), uint64(n), uint64(FeedForward)),
			tensor(p+"ffn_up.weight", r.matrix(n*FeedForward), uint64(n), uint64(FeedForward)),
			tensor(p+"ffn_down.weight", out(FeedForward*n), uint64(FeedForward), uint64(n)),
		)
	}
	return ts
}

type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform draws from a uniform distribution with mean 0 and the given
// standard deviation.
func (r *rng) uniform(std float64) float32 {
	u := float64(r.next()>>11)/(1<<53)*2 - 1 // [-1, 1)
	return float32(u * std * math.Sqrt(3))
}

func (r *rng) matrix(size int) f32s {
	d := make(f32s, size)
	for i := range d {
		d[i] = r.uniform(blockStd)
	}
	return d
}
