package embedded

import (
	"math"

	"github.com/aurax/aurax/rag"
)

// The quantized copy: 4 bits a dimension, one scale per vector, after a
// per-dimension preconditioning.
//
// A vector v is first mapped to w = (v − mean) / spread, dimension by
// dimension, so that a few dimensions of large spread or offset (trained
// embedding models have them) do not take all the precision; then w
// becomes codes c = round(7·w/max|w|) in [−7, 7] and a scale max|w|/7.
// Since q·v = q·mean + (q∘spread)·w, the query is multiplied by spread
// and the constant q·mean is dropped: it moves no rank. The
// preconditioner is a mean and a spread measured on the collection
// itself (train); it only decides precision, never correctness: the
// candidates are rescored exactly in float32.

// Retraining thresholds: a collection's preconditioner is measured when it
// reaches trainMin points and again each time it has grown 4×, up to
// trainMax; past that its statistics are stable and only a reopen
// remeasures them (on at most trainSample points).
const (
	trainMin    = 1024
	trainMax    = 65536
	trainSample = 65536
)

// codeStride is the padded row length, in dimensions, of dim codes.
func codeStride(dim int) int { return (dim + codeAlign - 1) / codeAlign * codeAlign }

// precond is the per-dimension map w = (v − mean) · inv, inv = 1/spread.
type precond struct {
	mean, spread, inv []float32
}

func identity(dim int) precond {
	p := precond{mean: make([]float32, dim), spread: make([]float32, dim), inv: make([]float32, dim)}
	for d := range dim {
		p.spread[d], p.inv[d] = 1, 1
	}
	return p
}

// train measures the mean and spread of each dimension over (a strided
// sample of) the rows of vecs, flooring the spread at 1/1000 of the
// largest so a constant dimension is not blown up.
func train(vecs *slab[float32]) precond {
	n, dim := vecs.n, vecs.width
	step := max(1, n/trainSample)
	sum := make([]float64, dim)
	sq := make([]float64, dim)
	m := 0
	for s := 0; s < n; s += step {
		for d, x := range vecs.row(s) {
			sum[d] += float64(x)
			sq[d] += float64(x) * float64(x)
		}
		m++
	}
	p := identity(dim)
	var top float64
	sd := make([]float64, dim)
	for d := range dim {
		mean := sum[d] / float64(m)
		sd[d] = math.Sqrt(max(0, sq[d]/float64(m)-mean*mean))
		p.mean[d] = float32(mean)
		top = max(top, sd[d])
	}
	if top == 0 {
		return p
	}
	for d := range dim {
		s := float32(max(sd[d], top/1000))
		p.spread[d], p.inv[d] = s, 1/s
	}
	return p
}

// quantize writes v's codes into dst (codeStride/2 bytes: unsigned
// nibbles c+8 where nibbleAt says, padding zero) and returns the scale.
// tmp holds len(v) floats.
func (p *precond) quantize(dst []uint8, v, tmp []float32) float32 {
	w := tmp[:len(v)]
	var m float32
	for d, x := range v {
		y := (x - p.mean[d]) * p.inv[d]
		w[d] = y
		if a := abs32(y); a > m { // not max: its NaN and ±0 rules cost 3×
			m = a
		}
	}
	var inv float32
	if m > 0 {
		inv = 7 / m
	}
	clear(dst[len(v)/128*64:])
	// c+8 rounded: x*inv+8 lies in [1, 15], so truncating x*inv+8.5
	// rounds. Whole 128-dimension blocks first, then the partial one.
	b := 0
	for ; b+128 <= len(w); b += 128 {
		lo, hi, out := w[b:b+64:b+64], w[b+64:b+128:b+128], dst[b/2:b/2+64:b/2+64]
		for j := range out {
			out[j] = uint8(lo[j]*inv+8.5) | uint8(hi[j]*inv+8.5)<<4
		}
	}
	for d := b; d < len(w); d++ {
		u := uint8(w[d]*inv + 8.5)
		if i, high := nibbleAt(d); high {
			dst[i] |= u << 4
		} else {
			dst[i] |= u
		}
	}
	return m / 7
}

// query returns q's codes for the kernel (codeStride int8s, padding zero),
// the scale that turns kernel sums back into q·w units, and the offset to
// subtract from every kernel sum (the codes are c+8: 8·Σq).
func (p *precond) query(dst []int8, q []float32) (scale float32, offset int32) {
	var m float32
	qw := make([]float32, len(q))
	for d, x := range q {
		qw[d] = x * p.spread[d]
		m = max(m, abs32(qw[d]))
	}
	clear(dst)
	if m == 0 {
		return 0, 0
	}
	inv := 127 / m
	var sum int32
	for d, x := range qw {
		dst[d] = int8(math.Round(float64(x * inv)))
		sum += int32(dst[d])
	}
	return m / 127, 8 * sum
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// retrain measures the preconditioner on the current vectors and
// requantizes every slot, on workers goroutines. Caller holds mu for
// writing.
func (ix *index) retrain(workers int) {
	n := ix.len()
	if n >= trainMin {
		ix.pre = train(&ix.vecs)
	}
	ix.trainedAt = n
	parallel(n, splitWorkers(n, workers), func(_, lo, hi int) {
		tmp := make([]float32, ix.dim)
		for s := lo; s < hi; s++ {
			ix.quantizeSlot(s, tmp)
		}
	})
}

// quantizeSlot (re)computes slot s's codes and scale.
func (ix *index) quantizeSlot(s int, tmp []float32) {
	ix.scales[s] = ix.pre.quantize(ix.codes.row(s), ix.vecs.row(s), tmp)
}

// dueRetrain reports whether a collection that just grew to its current
// size should measure its preconditioner again.
func (ix *index) dueRetrain() bool {
	n := ix.len()
	return n >= trainMin && n <= trainMax && n >= 4*ix.trainedAt
}

// rerankMin is how many candidates the 4-bit scan hands to the exact
// re-rank at least (more when k is large: rerankSize). See BENCHMARKS.md
// for the recall it was chosen on.
const rerankMin = 512

// rerankSize is how many candidates a top-k search rescores exactly.
func rerankSize(k int) int { return max(rerankMin, 8*k) }

// blockRows is how many rows one kernel call scores: 48 KiB of 384-d
// codes, and the scores stay in L1.
const blockRows = 256

// searchQuantized ranks every allowed slot by its 4-bit approximation,
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
	qc := make([]int8, ix.stride)
	qs, off := ix.pre.query(qc, q)
	euclid := ix.spec.Distance == rag.Euclidean
	shards := make([]collector, splitWorkers(n, workers))
	parallel(n, len(shards), func(w, lo, hi int) {
		t := &shards[w]
		t.init(r)
		consider := func(s int, d int32) {
			// q·v up to a constant; for Euclidean rank by 2q·v − |v|²,
			// which orders like −|q−v|.
			score := float32(d-off) * qs * ix.scales[s]
			if euclid {
				score = 2*score - ix.norms[s]
			}
			if score > t.floor {
				t.add(candidate{score: score, slot: int32(s)})
			}
		}
		var buf [blockRows]int32
		var rows [blockRows]int32
		for b, e := lo, lo; b < hi; b = e {
			e = min(b+blockRows, hi, ix.codes.chunkEnd(b))
			if allowed == nil {
				dotsNibble(qc, ix.codes.rows(b, e), buf[:e-b])
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
				dotsNibble(qc, ix.codes.rows(b, e), buf[:e-b])
				for _, s := range block {
					consider(int(s), buf[int(s)-b])
				}
				continue
			}
			for _, s := range block { // a selective filter: score only what it allows
				dotsNibble(qc, ix.codes.row(int(s)), buf[:1])
				consider(int(s), buf[0])
			}
		}
	})
	var cands []candidate
	for _, t := range shards {
		cands = append(cands, t.buf...)
	}
	cands = selectBest(cands, r)
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

// collector keeps at least the best r candidates of a scan, cheaply: a
// candidate is appended if it beats floor, and when the buffer holds 2r
// the best r are selected (selectBest, linear) and floor rises to the
// worst of them. Amortised, a candidate costs an append; a top-r heap
// costs a sift on every improvement, which on a 100k scan measured a
// third of the kernel's time.
type collector struct {
	r     int
	floor float32
	buf   []candidate
}

func (c *collector) init(r int) {
	c.r, c.floor = r, float32(math.Inf(-1))
	c.buf = make([]candidate, 0, 2*r)
}

func (c *collector) add(x candidate) {
	c.buf = append(c.buf, x)
	if len(c.buf) == cap(c.buf) {
		c.buf = selectBest(c.buf, c.r)
		c.floor = c.buf[0].score
		for _, y := range c.buf[1:] {
			c.floor = min(c.floor, y.score)
		}
	}
}

// selectBest reorders c so that c[:r] holds its r best (worse's order)
// and returns c[:r], in no particular order: quickselect with a
// median-of-three pivot (deterministic, so a search is repeatable).
func selectBest(c []candidate, r int) []candidate {
	if len(c) <= r {
		return c
	}
	lo, hi := 0, len(c)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// Median of three to c[hi] as the pivot.
		if worse(c[lo], c[mid]) {
			c[lo], c[mid] = c[mid], c[lo]
		}
		if worse(c[mid], c[hi]) {
			c[mid], c[hi] = c[hi], c[mid]
			if worse(c[lo], c[mid]) {
				c[lo], c[mid] = c[mid], c[lo]
			}
		}
		c[mid], c[hi] = c[hi], c[mid]
		p := c[hi]
		i := lo
		for j := lo; j < hi; j++ {
			if worse(p, c[j]) { // c[j] better than the pivot
				c[i], c[j] = c[j], c[i]
				i++
			}
		}
		c[i], c[hi] = c[hi], c[i]
		switch {
		case i == r-1 || i == r:
			return c[:r]
		case i < r:
			lo = i + 1
		default:
			hi = i - 1
		}
	}
	return c[:r]
}
