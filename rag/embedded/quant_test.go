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

func TestDotsInt8(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, stride := range []int{32, 64, 384, 416, 1024} {
		const rows = 9
		codes := make([]int8, rows*stride)
		for i := range codes {
			codes[i] = int8(r.IntN(255) - 127)
		}
		q := make([]int16, stride)
		for i := range q {
			q[i] = int16(r.IntN(2*4000+1) - 4000)
		}
		q[0], codes[0] = 32767, -127 // the extremes quantize can produce
		want := make([]int32, rows)
		for row := range want {
			var s int64
			for i := range q {
				s += int64(q[i]) * int64(codes[row*stride+i])
			}
			want[row] = int32(s)
		}
		got, generic := make([]int32, rows), make([]int32, rows)
		dotsInt8(q, codes, got)
		dotsInt8Generic(q, codes, generic)
		require.Equal(t, want, got, "dotsInt8(stride=%d)", stride)
		require.Equal(t, want, generic, "dotsInt8Generic(stride=%d)", stride)
	}
}

func TestQuantize(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, dim := range []int{1, 3, 384, 65536} {
		v := randVec(r, dim)
		codes := make([]int8, codeStride(dim))
		for i := range codes {
			codes[i] = 99 // padding must come back zero
		}
		scale := quantize(codes, v)
		for i, x := range v {
			require.InDelta(t, x, scale*float32(codes[i]), float64(scale)/2+1e-7, "quantize(dim=%d)[%d]", dim, i)
		}
		for _, c := range codes[dim:] {
			require.Zero(t, c, "padding")
		}

		qc := make([]int16, codeStride(dim))
		qs := quantizeQuery(qc, v)
		var sum int64
		for i, x := range v {
			require.InDelta(t, x, qs*float32(qc[i]), float64(qs)/2+1e-7, "quantizeQuery(dim=%d)[%d]", dim, i)
			sum += int64(math.Abs(float64(qc[i])))
		}
		require.Less(t, 127*sum, int64(math.MaxInt32), "Σ|q|·127 must fit int32 (dim=%d)", dim)
	}
	require.Zero(t, quantize(make([]int8, 32), make([]float32, 5)))
	require.Zero(t, quantizeQuery(make([]int16, 32), make([]float32, 5)))
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
	require.Nil(t, ix.codes, "exact search keeps no int8 copy")
	hits, err := s.Search(ctx, "c", rag.Query{Vector: data.vector(17), TopK: 1})
	require.NoError(t, err)
	require.Equal(t, []string{docOf(17) + "/1"}, ids(hits))
}
