package embedded

import (
	"math"

	"github.com/aurax/aurax/rag"
)

// Scalar quantization (int8, one scale per vector).
//
// A stored vector v becomes codes c = round(v·127/max|v|) and a scale
// max|v|/127, so v ≈ scale·c. No training and no shared ranges: an upsert
// quantizes its own vector, and data drift cannot push values outside a
// learnt range. The query becomes int16 (more precision where it is cheap:
// it is read once per query, not once per row).

// codeStride is the padded row length of dim codes.
func codeStride(dim int) int { return (dim + codeAlign - 1) / codeAlign * codeAlign }

// quantize writes v's codes into dst (len(dst) ≥ len(v); the padding is
// zeroed) and returns the scale.
func quantize(dst []int8, v []float32) float32 {
	var m float32
	for _, x := range v {
		m = max(m, abs32(x))
	}
	clear(dst)
	if m == 0 {
		return 0
	}
	inv := 127 / m
	for i, x := range v {
		dst[i] = int8(math.Round(float64(x * inv)))
	}
	return m / 127
}

// quantizeQuery writes q's int16 codes into dst (len(dst) ≥ len(q); the
// padding is zeroed) and returns the scale. The codes are bounded so that
// Σ|dst[i]|·127 < 2³¹: an int32 dot product with any int8 row cannot
// overflow, whatever the dimension.
func quantizeQuery(dst []int16, q []float32) float32 {
	var m, sum float64
	for _, x := range q {
		a := math.Abs(float64(x))
		m = max(m, a)
		sum += a
	}
	clear(dst)
	if m == 0 {
		return 0
	}
	s := min(32767/m, 2.0e9/(127*sum))
	for i, x := range q {
		dst[i] = int16(math.Round(float64(x) * s))
	}
	return float32(1 / s)
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// rerankMin is how many candidates the int8 scan hands to the exact
// re-rank at least (more when k is large: rerankSize). On the 20k
// clustered set of TestQuantizedRecall, recall@10 against the exact scan
// measured 0.982 with no re-rank beyond the top 10, 0.9995 with 12 and 1.0
// from 16 up: 256 is a wide margin for real embeddings, whose outlier
// dimensions cost one-scale-per-vector codes precision, and rescoring 256
// vectors reads 384 KiB.
const rerankMin = 256

// rerankSize is how many candidates a top-k search rescores exactly.
func rerankSize(k int) int { return max(rerankMin, 4*k) }

// blockRows is how many rows one kernel call scores: 96 KiB of 384-d
// codes, and the scores stay in L1.
const blockRows = 256

// searchQuantized ranks every allowed slot by its int8 approximation,
// keeps the best rerankSize(k) and rescores those exactly, so the scores
// returned are exact and a hit missing from the exact answer can only be
// one whose approximation fell out of the candidates. The filter applies
// before ranking: every candidate is allowed, so top k fills whenever k
// allowed slots exist. Caller holds mu for reading.
func (ix *index) searchQuantized(q []float32, k int, minScore float32, allowed []bool, workers int) []candidate {
	n := ix.len()
	r := rerankSize(k)
	if ix.stride == 0 || n <= r {
		return ix.search(q, k, minScore, allowed, workers)
	}
	qc := make([]int16, ix.stride)
	qs := quantizeQuery(qc, q)
	euclid := ix.spec.Distance == rag.Euclidean
	shards := make([]topK, splitWorkers(n, workers))
	parallel(n, len(shards), func(w, lo, hi int) {
		t := &shards[w]
		t.k = r
		t.h = make([]candidate, 0, r)
		consider := func(s int, d int32) {
			// Approximate q·v; for Euclidean rank by 2q·v − |v|², which
			// orders like −|q−v|.
			score := float32(d) * qs * ix.scales[s]
			if euclid {
				score = 2*score - ix.norms[s]
			}
			if t.full() && score <= t.h[0].score {
				return
			}
			t.push(candidate{score: score, slot: int32(s)})
		}
		var buf [blockRows]int32
		var rows [blockRows]int32
		st := ix.stride
		for b := lo; b < hi; b += blockRows {
			e := min(b+blockRows, hi)
			if allowed == nil {
				dotsInt8(qc, ix.codes[b*st:e*st], buf[:e-b])
				for j, d := range buf[:e-b] {
					consider(b+j, d)
				}
				continue
			}
			block := rows[:0]
			for s := b; s < e; s++ {
				if allowed[ix.meta[s]] {
					block = append(block, int32(s))
				}
			}
			if len(block) > (e-b)/2 {
				dotsInt8(qc, ix.codes[b*st:e*st], buf[:e-b])
				for _, s := range block {
					consider(int(s), buf[int(s)-b])
				}
				continue
			}
			for _, s := range block { // a selective filter: score only what it allows
				dotsInt8(qc, ix.codes[int(s)*st:(int(s)+1)*st], buf[:1])
				consider(int(s), buf[0])
			}
		}
	})
	cands := merge(shards, r)
	qn := ix.queryNorm(q)
	best := topK{k: k, h: make([]candidate, 0, k)}
	for _, c := range cands {
		score := ix.score(q, qn, int(c.slot))
		if score < minScore {
			continue
		}
		best.push(candidate{score: score, slot: c.slot})
	}
	return merge([]topK{best}, k)
}

// anyAllowed reports whether any of the metadata ids is allowed.
func anyAllowed(allowed []bool, metas []uint32) bool {
	for _, m := range metas {
		if allowed[m] {
			return true
		}
	}
	return false
}
