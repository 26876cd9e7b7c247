package embedded

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aurax/aurax/rag"
)

func TestDotsNibble(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, stride := range []int{128, 384, 512, 1024} {
		const rows = 9
		codes := make([]uint8, rows*stride/2)
		for i := range codes {
			codes[i] = uint8(r.IntN(256))
		}
		codes[0] = 0xff // the extremes: 15·127 and 15·−128 in one pair
		q := make([]int8, stride)
		for i := range q {
			q[i] = int8(r.IntN(256) - 128)
		}
		q[0], q[1], q[64], q[65] = 127, 127, -128, -128
		want := make([]int32, rows)
		for row := range want {
			for d := range stride {
				want[row] += int32(nibble(codes[row*stride/2:], d)) * int32(q[d])
			}
		}
		generic := make([]int32, rows)
		dotsNibbleGeneric(q, codes, generic)
		require.Equal(t, want, generic, "dotsNibbleGeneric(stride=%d)", stride)
		for _, k := range nibbleKernels() {
			got := make([]int32, rows)
			k.fn(q, codes, got)
			require.Equal(t, want, got, "%s(stride=%d)", k.name, stride)
		}
	}
}

// TestQuantize: codes dequantize to within half a step of the
// preconditioned vector, the padding scores nothing, and the kernel sum
// minus the offset, scaled, approximates q·v − q·mean.
func TestQuantize(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, dim := range []int{1, 3, 384, 1000} {
		vecs := newSlab[float32](dim, 4)
		for range 2000 {
			v := randVec(r, dim)
			v[0] = 10 + v[0]*5 // an offset, wide dimension
			copy(vecs.push(), v)
		}
		p := train(&vecs)
		require.InDelta(t, 10, p.mean[0], 0.5, "train: mean of dimension 0")
		require.InDelta(t, 5, p.spread[0], 0.5, "train: spread of dimension 0")

		v, q := vecs.row(0), vecs.row(1)
		stride := codeStride(dim)
		codes := make([]uint8, stride/2)
		scale := p.quantize(codes, v, make([]float32, dim))
		got := make([]int8, stride) // back to c in dimension order
		for d := range stride {
			got[d] = int8(nibble(codes, d)) - 8
		}
		var want float64 // q·v − q·mean
		for d := range dim {
			w := (v[d] - p.mean[d]) / p.spread[d]
			require.InDelta(t, w, scale*float32(got[d]), float64(scale)/2+1e-5, "quantize(dim=%d)[%d]", dim, d)
			want += float64(q[d]) * float64(v[d]-p.mean[d])
		}
		for d := dim; d < stride; d++ {
			require.Equal(t, int8(-8), got[d], "padding is the zero byte")
		}

		qc := make([]int8, stride)
		qs, off := p.query(qc, q)
		out := make([]int32, 1)
		dotsNibble(qc, codes, out)
		approx := float64(out[0]-off) * float64(qs) * float64(scale)
		var norm float64
		for d := range dim {
			norm += math.Abs(float64(q[d]*p.spread[d])) * float64(scale)
		}
		require.InDelta(t, want, approx, norm/4+1e-3, "approximate q·v (dim=%d)", dim)
	}
	p := identity(5)
	require.Zero(t, p.quantize(make([]uint8, 64), make([]float32, 5), make([]float32, 5)))
	qs, off := p.query(make([]int8, 128), make([]float32, 5))
	require.Zero(t, qs)
	require.Zero(t, off)
}

// clusteredStore is a store holding clusteredSet(seed, n, 384) in
// collection "c".
func clusteredStore(t *testing.T, data *clusteredSet) (*Store, string) {
	t.Helper()
	ctx := context.Background()
	s, path := openTemp(t)
	_, err := s.EnsureCollection(ctx, rag.CollectionSpec{Name: "c", Dimension: data.dim})
	require.NoError(t, err)
	for i := 0; i < data.n; i += 1000 {
		require.NoError(t, s.Upsert(ctx, "c", data.points(i, min(i+1000, data.n))))
	}
	return s, path
}

// TestQuantizedRecall holds the quality of the default search path: on a
// fixed clustered set of 20k 384-d vectors, recall@10 against the exact
// scan of the same store is at least 0.98, and the scores returned are the
// exact ones.
func TestQuantizedRecall(t *testing.T) {
	ctx := context.Background()
	data := newClusteredSet(20_000, 20_000, 384)
	s, _ := clusteredStore(t, data)
	const queries = 200
	var sum float64
	worst := 1.0
	for j := range queries {
		q := rag.Query{Vector: data.query(j), TopK: 10}
		exact, err := s.search(ctx, "c", q, true)
		require.NoError(t, err)
		got, err := s.search(ctx, "c", q, false)
		require.NoError(t, err)
		require.Len(t, got, 10)
		rc := recallAt(exact, got)
		sum += rc
		worst = min(worst, rc)
		for i := range got {
			if got[i].DocumentID == exact[i].DocumentID && got[i].Chunk == exact[i].Chunk {
				require.Equal(t, exact[i].Score, got[i].Score, "query %d hit %d: quantized path must return exact scores", j, i)
			}
		}
	}
	recall := sum / queries
	t.Logf("recall@10 = %.4f (worst query %.1f) over %d queries", recall, worst, queries)
	require.GreaterOrEqual(t, recall, 0.98, "recall@10 of the quantized path against the exact scan")
}

// TestQuantizedMatchesExact: filtered searches (selective ones included),
// deletes, document replacement and a reopen leave the quantized path
// answering exactly what the exact scan answers.
func TestQuantizedMatchesExact(t *testing.T) {
	defer func(b int) { chunkBytes = b }(chunkBytes)
	chunkBytes = 64 << 10 // 256-row chunks: scans and moves cross them
	ctx := context.Background()
	data := newClusteredSet(3, 20_000, 384)
	s, path := clusteredStore(t, data)

	queries := []rag.Query{
		{TopK: 10},
		{TopK: 10, Filter: rag.Filter{"lang": "en"}},
		{TopK: 10, Filter: rag.Filter{"lang": "la"}}, // 1 %: 200 points
		{TopK: 25, Filter: rag.Filter{"lang": []any{"la", "de"}}},
		{TopK: 10, Filter: rag.Filter{"source": []any{"file-8.md", "file-900.md", "file-1700.md"}}}, // 24 points, scattered
		{TopK: 300},
		{TopK: 10, MinScore: ptr(0.55)},
	}
	check := func(t *testing.T, s *Store, stage string) {
		t.Helper()
		for j := range 20 {
			for _, q := range queries {
				q.Vector = data.query(j)
				exact, err := s.search(ctx, "c", q, true)
				require.NoError(t, err)
				got, err := s.search(ctx, "c", q, false)
				require.NoError(t, err)
				require.Equal(t, exact, got, "%s: query %d %+v", stage, j, q.Filter)
				if q.MinScore == nil {
					require.Len(t, got, min(q.TopK, matching(data, q.Filter, s)), "%s: top k must fill", stage)
				}
			}
		}
	}
	check(t, s, "after ingest")

	// Deletes: whole documents and tails (slots move on every delete).
	for d := 0; d < 2500; d += 3 {
		require.NoError(t, s.DeleteChunks(ctx, "c", docOf(d*8), d%4))
	}
	check(t, s, "after deletes")

	// Replacement: a new version of a document with other vectors and
	// fewer chunks, as the Ingester writes it (upsert, then drop the tail).
	for d := 1; d < 2500; d += 5 {
		doc := docOf(d * 8)
		pts := data.points(d*8+4000, d*8+4005)
		for c := range pts {
			pts[c].DocumentID, pts[c].Chunk = doc, c
		}
		require.NoError(t, s.Upsert(ctx, "c", pts))
		require.NoError(t, s.DeleteChunks(ctx, "c", doc, len(pts)))
	}
	check(t, s, "after replacement")

	// The quantized copy is rebuilt from the file on open.
	require.NoError(t, s.Close())
	s2, err := Open(path, Options{})
	require.NoError(t, err)
	defer s2.Close()
	check(t, s2, "after reopen")
}

// matching counts the points of collection "c" that f allows.
func matching(data *clusteredSet, f rag.Filter, s *Store) int {
	m, _ := f.Compile()
	ix, _ := s.get("c")
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := 0
	for _, id := range ix.meta {
		if m.Match(ix.metas[id]) {
			n++
		}
	}
	return n
}

func TestSearchOption(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rag.db")
	_, err := Open(path, Options{Search: "hnsw"})
	require.ErrorIs(t, err, rag.ErrInvalidArgument)

	s, err := Open(path, Options{Search: rag.SearchExact})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.EnsureCollection(ctx, rag.CollectionSpec{Name: "c", Dimension: 384})
	require.NoError(t, err)
	data := newClusteredSet(9, 1000, 384)
	require.NoError(t, s.Upsert(ctx, "c", data.points(0, 1000)))
	ix, err := s.get("c")
	require.NoError(t, err)
	require.Zero(t, ix.stride, "exact search keeps no quantized copy")
	require.Empty(t, ix.codes.chunks)
	hits, err := s.Search(ctx, "c", rag.Query{Vector: data.vector(17), TopK: 1})
	require.NoError(t, err)
	require.Equal(t, []string{docOf(17) + "/1"}, ids(hits))
}

func TestSelectBest(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 2, 3, 10, 100, 1000} {
		for _, k := range []int{1, 2, 7, 50, 512} {
			c := make([]candidate, n)
			for i := range c {
				c[i] = candidate{score: float32(r.IntN(20)), slot: int32(i)} // many ties
			}
			want := append([]candidate(nil), c...)
			sortBest(want)
			got := selectBest(c, k)
			sortBest(got)
			require.Equal(t, want[:min(k, n)], got, "selectBest(n=%d, r=%d)", n, k)
		}
	}
}

// nibble is dimension d's code in a row.
func nibble(row []uint8, d int) uint8 {
	i, high := nibbleAt(d)
	if high {
		return row[i] >> 4
	}
	return row[i] & 15
}

// TestSearchDuringWrites: searches on both paths run while another
// goroutine grows the collection through its retraining thresholds,
// replaces and deletes documents; run under -race it checks the locking,
// and every answer must satisfy its filter and be best first.
func TestSearchDuringWrites(t *testing.T) {
	defer func(b int) { chunkBytes = b }(chunkBytes)
	chunkBytes = 64 << 10
	ctx := context.Background()
	data := newClusteredSet(13, 6000, 384)
	s, _ := openTemp(t)
	_, err := s.EnsureCollection(ctx, rag.CollectionSpec{Name: "c", Dimension: 384})
	require.NoError(t, err)
	require.NoError(t, s.Upsert(ctx, "c", data.points(0, 500)))

	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 500; i < data.n; i += 250 {
			if err := s.Upsert(ctx, "c", data.points(i, i+250)); err != nil {
				errs <- err
				return
			}
			if err := s.DeleteChunks(ctx, "c", docOf(i-400), 3); err != nil {
				errs <- err
				return
			}
		}
	}()
	for j := 0; ; j++ {
		select {
		case <-done:
			close(errs)
			require.NoError(t, <-errs)
			return
		default:
		}
		q := rag.Query{Vector: data.query(j % 300), TopK: 10, Filter: rag.Filter{"lang": "en"}}
		hits, err := s.search(ctx, "c", q, j%2 == 0)
		require.NoError(t, err)
		require.LessOrEqual(t, len(hits), 10)
		for i, h := range hits {
			require.Equal(t, "en", h.Metadata["lang"], "filtered hit %d", i)
			if i > 0 {
				require.GreaterOrEqual(t, hits[i-1].Score, h.Score, "best first")
			}
		}
	}
}
