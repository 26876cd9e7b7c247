package embedded

import (
	"encoding/json"
	"math"
	"slices"
	"sync"

	"github.com/aurax/aurax/rag"
)

// index is a collection's in-memory side: every vector in a slab of rows
// (slot i is vecs.row(i)), the slot's bbolt key, and an interned metadata
// id. Cosine vectors are stored normalised, so cosine is a dot product;
// Euclidean keeps squared norms. With quantization on, each slot also has
// 4-bit codes and a scale (quant.go), kept in step by put and remove.
type index struct {
	spec rag.CollectionSpec
	dim  int
	// stride is the padded length of a slot's codes; 0 when the index
	// keeps no quantized copy (exact search only).
	stride int

	mu    sync.RWMutex
	vecs  slab[float32]
	norms []float32 // squared norms; Euclidean only
	keys  []string  // slot → bbolt key
	// codes.row(i) is slot i's 4-bit codes (stride/2 bytes), scales[i]
	// its dequantization factor; pre is the preconditioner they were made
	// with, measured when the collection had trainedAt points.
	codes     slab[uint8]
	scales    []float32
	pre       precond
	trainedAt int
	// loading defers quantization to the end of a bulk load (retrain).
	loading bool
	meta    []uint32 // slot → metas index
	slots   map[string]int32

	// Metadata is interned: all chunks of a document usually share one map.
	metas   []rag.Metadata
	metaIDs map[string]uint32
}

// newIndex returns an empty index; quantized adds the 4-bit copy.
func newIndex(spec rag.CollectionSpec, quantized bool) *index {
	ix := &index{
		spec:    spec,
		dim:     spec.Dimension,
		slots:   make(map[string]int32),
		metaIDs: make(map[string]uint32),
		vecs:    newSlab[float32](spec.Dimension, 4),
	}
	if quantized {
		ix.stride = codeStride(spec.Dimension)
		ix.codes = newSlab[uint8](ix.stride/2, 1)
		ix.pre = identity(spec.Dimension)
	}
	return ix
}

// grow reserves room for n more slots (bulk load); the slabs grow by
// chunks and need no reservation.
func (ix *index) grow(n int) {
	if len(ix.slots) == 0 {
		ix.slots = make(map[string]int32, n)
	}
	ix.keys = slices.Grow(ix.keys, n)
	ix.meta = slices.Grow(ix.meta, n)
	if ix.stride > 0 {
		ix.scales = slices.Grow(ix.scales, n)
	}
}

func (ix *index) len() int { return len(ix.keys) }

// intern returns the id of md given its canonical JSON. Caller holds mu.
func (ix *index) intern(metaJSON []byte) uint32 {
	if id, ok := ix.metaIDs[string(metaJSON)]; ok {
		return id
	}
	var md rag.Metadata
	if len(metaJSON) > 0 {
		_ = json.Unmarshal(metaJSON, &md) // written by us from a validated map
	}
	id := uint32(len(ix.metas))
	ix.metas = append(ix.metas, md)
	ix.metaIDs[string(metaJSON)] = id
	return id
}

// put inserts or replaces key's vector (already normalised if cosine).
// Caller holds mu for writing.
func (ix *index) put(key string, vec []float32, metaJSON []byte) {
	mid := ix.intern(metaJSON)
	s, ok := ix.slots[key]
	if ok {
		copy(ix.vecs.row(int(s)), vec)
		ix.meta[s] = mid
		if ix.spec.Distance == rag.Euclidean {
			ix.norms[s] = sqNorm(vec)
		}
	} else {
		s = int32(len(ix.keys))
		ix.slots[key] = s
		ix.keys = append(ix.keys, key)
		copy(ix.vecs.push(), vec)
		ix.meta = append(ix.meta, mid)
		if ix.spec.Distance == rag.Euclidean {
			ix.norms = append(ix.norms, sqNorm(vec))
		}
		if ix.stride > 0 {
			ix.codes.push()
			ix.scales = append(ix.scales, 0)
		}
	}
	if ix.stride == 0 || ix.loading {
		return
	}
	if !ok && ix.dueRetrain() {
		ix.retrain(1) // at most trainMax points: milliseconds
		return
	}
	ix.quantizeSlot(int(s), make([]float32, ix.dim))
}

// remove deletes key by moving the last slot into its place. Caller holds
// mu for writing.
func (ix *index) remove(key string) {
	s, ok := ix.slots[key]
	if !ok {
		return
	}
	last := int32(len(ix.keys) - 1)
	if s != last {
		lk := ix.keys[last]
		copy(ix.vecs.row(int(s)), ix.vecs.row(int(last)))
		ix.keys[s] = lk
		ix.meta[s] = ix.meta[last]
		if ix.norms != nil {
			ix.norms[s] = ix.norms[last]
		}
		if ix.stride > 0 {
			copy(ix.codes.row(int(s)), ix.codes.row(int(last)))
			ix.scales[s] = ix.scales[last]
		}
		ix.slots[lk] = s
	}
	delete(ix.slots, key)
	ix.keys = ix.keys[:last]
	ix.meta = ix.meta[:last]
	ix.vecs.pop()
	if ix.norms != nil {
		ix.norms = ix.norms[:last]
	}
	if ix.stride > 0 {
		ix.codes.pop()
		ix.scales = ix.scales[:last]
	}
}

// candidate is a scored slot.
type candidate struct {
	score float32
	slot  int32
}

// topK keeps the k best candidates in a min-heap (worst at [0]).
type topK struct {
	k int
	h []candidate
}

func (t *topK) push(c candidate) {
	if len(t.h) < t.k {
		t.h = append(t.h, c)
		// sift up
		i := len(t.h) - 1
		for i > 0 {
			p := (i - 1) / 2
			if !worse(t.h[i], t.h[p]) {
				break
			}
			t.h[i], t.h[p] = t.h[p], t.h[i]
			i = p
		}
		return
	}
	if !worse(t.h[0], c) {
		return
	}
	t.h[0] = c
	// sift down
	i, n := 0, len(t.h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && worse(t.h[r], t.h[l]) {
			m = r
		}
		if !worse(t.h[m], t.h[i]) {
			break
		}
		t.h[i], t.h[m] = t.h[m], t.h[i]
		i = m
	}
}

// min returns the threshold a candidate must beat once the heap is full.
func (t *topK) full() bool { return len(t.h) == t.k }

// worse orders by score, then prefers the lower slot on ties (deterministic).
func worse(a, b candidate) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	return a.slot > b.slot
}

// parallelMin is the collection size below which one goroutine searches:
// splitting costs more than it saves.
const parallelMin = 8192

// score is slot s's exact score for q (qn: q's squared norm, Euclidean
// only). Both search paths rank with it, so they agree to the bit.
func (ix *index) score(q []float32, qn float32, s int) float32 {
	score := dot(q, ix.vecs.row(s))
	if ix.spec.Distance == rag.Euclidean {
		d2 := ix.norms[s] + qn - 2*score
		if d2 < 0 {
			d2 = 0
		}
		score = -float32(math.Sqrt(float64(d2)))
	}
	return score
}

// queryNorm is what score needs of q besides q.
func (ix *index) queryNorm(q []float32) float32 {
	if ix.spec.Distance == rag.Euclidean {
		return sqNorm(q)
	}
	return 0
}

// search scans every slot and returns the best k, best first. Caller holds
// mu for reading. allowed, when non-nil, is indexed by metadata id.
func (ix *index) search(q []float32, k int, minScore float32, allowed []bool, workers int) []candidate {
	n := ix.len()
	if n == 0 {
		return nil
	}
	qn := ix.queryNorm(q)
	shards := make([]topK, splitWorkers(n, workers))
	parallel(n, len(shards), func(w, lo, hi int) {
		t := &shards[w]
		t.k = k
		t.h = make([]candidate, 0, k)
		for s := lo; s < hi; s++ {
			if allowed != nil && !allowed[ix.meta[s]] {
				continue
			}
			score := ix.score(q, qn, s)
			if score < minScore {
				continue
			}
			if t.full() && score <= t.h[0].score {
				continue
			}
			t.push(candidate{score: score, slot: int32(s)})
		}
	})
	return merge(shards, k)
}

// splitWorkers is how many goroutines scan n slots.
func splitWorkers(n, workers int) int {
	if workers < 1 || n < parallelMin {
		return 1
	}
	return workers
}

// parallel runs scan(w, lo, hi) over workers contiguous shares of [0, n),
// share 0 on the calling goroutine, and returns when all have.
func parallel(n, workers int, scan func(w, lo, hi int)) {
	if workers == 1 {
		scan(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { scan(w, w*n/workers, (w+1)*n/workers) })
	}
	scan(0, 0, n/workers)
	wg.Wait()
}

// merge returns the best k of the shards' heaps, best first.
func merge(shards []topK, k int) []candidate {
	var all []candidate
	for _, t := range shards {
		all = append(all, t.h...)
	}
	sortBest(all)
	if len(all) > k {
		all = all[:k]
	}
	return all
}

// sortBest sorts best first (worse's order, reversed).
func sortBest(c []candidate) {
	slices.SortFunc(c, func(a, b candidate) int {
		switch {
		case worse(b, a):
			return -1
		case worse(a, b):
			return 1
		}
		return 0
	})
}
