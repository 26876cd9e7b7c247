package embedded

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aurax/aurax/rag"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rag.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, path
}

func randVec(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func ptr(f float64) *float64 { return &f }

func TestDot(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 70; n++ {
		a, b := randVec(r, n), randVec(r, n)
		var want float64
		for i := range a {
			want += float64(a[i]) * float64(b[i])
		}
		got := dot(a, b)
		require.InDelta(t, want, float64(got), 1e-4, "dot(n=%d)", n)
		require.InDelta(t, want, float64(dotGeneric(a, b)), 1e-4, "dotGeneric(n=%d)", n)
	}
}

func TestStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)

	created, err := s.EnsureCollection(ctx, rag.CollectionSpec{Name: "docs", Dimension: 3, EmbedModel: "m"})
	require.NoError(t, err)
	require.True(t, created)
	created, err = s.EnsureCollection(ctx, rag.CollectionSpec{Name: "docs", Dimension: 3, Distance: rag.Cosine})
	require.NoError(t, err)
	require.False(t, created)
	_, err = s.EnsureCollection(ctx, rag.CollectionSpec{Name: "docs", Dimension: 4})
	require.ErrorIs(t, err, rag.ErrDimensionMismatch)

	pts := []rag.Point{
		{DocumentID: "a", Chunk: 0, Text: "alpha zero", Vector: []float32{1, 0, 0}, Metadata: rag.Metadata{"lang": "en", "year": 2024}},
		{DocumentID: "a", Chunk: 1, Text: "alpha one", Vector: []float32{0.9, 0.1, 0}, Metadata: rag.Metadata{"lang": "en", "year": 2024}},
		{DocumentID: "a", Chunk: 2, Text: "alpha two", Vector: []float32{0, 1, 0}, Metadata: rag.Metadata{"lang": "en", "year": 2024}},
		{DocumentID: "b", Chunk: 0, Text: "beta", Vector: []float32{0.8, 0, 0.2}, Metadata: rag.Metadata{"lang": "pt", "draft": true}},
	}
	require.NoError(t, s.Upsert(ctx, "docs", pts))
	require.NoError(t, s.Upsert(ctx, "docs", pts)) // idempotent
	n, err := s.Count(ctx, "docs")
	require.NoError(t, err)
	require.Equal(t, 4, n)

	tests := []struct {
		name string
		q    rag.Query
		want []string // doc/chunk
	}{
		{"top2", rag.Query{Vector: []float32{1, 0, 0}, TopK: 2}, []string{"a/0", "a/1"}},
		{"all", rag.Query{Vector: []float32{1, 0, 0}, TopK: 10}, []string{"a/0", "a/1", "b/0", "a/2"}},
		{"filter string", rag.Query{Vector: []float32{1, 0, 0}, Filter: rag.Filter{"lang": "pt"}}, []string{"b/0"}},
		{"filter number any-of", rag.Query{Vector: []float32{0, 1, 0}, Filter: rag.Filter{"year": []any{2023.0, 2024.0}}}, []string{"a/2", "a/1", "a/0"}},
		{"filter bool", rag.Query{Vector: []float32{0, 1, 0}, Filter: rag.Filter{"draft": true}}, []string{"b/0"}},
		{"filter missing key", rag.Query{Vector: []float32{0, 1, 0}, Filter: rag.Filter{"nope": "x"}}, nil},
		{"min score", rag.Query{Vector: []float32{1, 0, 0}, MinScore: ptr(0.95)}, []string{"a/0", "a/1", "b/0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits, err := s.Search(ctx, "docs", tt.q)
			require.NoError(t, err)
			require.Equal(t, tt.want, ids(hits), "Search(%+v)", tt.q)
		})
	}

	hits, err := s.Search(ctx, "docs", rag.Query{Vector: []float32{1, 0, 0}, TopK: 1})
	require.NoError(t, err)
	require.Equal(t, rag.Hit{DocumentID: "a", Chunk: 0, Score: 1, Text: "alpha zero", Metadata: rag.Metadata{"lang": "en", "year": 2024.0}}, hits[0])

	// Stale chunks of a new, shorter version go away.
	require.NoError(t, s.DeleteChunks(ctx, "docs", "a", 1))
	hits, err = s.Search(ctx, "docs", rag.Query{Vector: []float32{1, 0, 0}, TopK: 10})
	require.NoError(t, err)
	require.Equal(t, []string{"a/0", "b/0"}, ids(hits))

	// Everything survives a reopen.
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Ping(ctx), rag.ErrUnavailable)
	_, err = s.Search(ctx, "docs", rag.Query{Vector: []float32{1, 0, 0}})
	require.ErrorIs(t, err, rag.ErrUnavailable)
	s2, err := Open(path, Options{})
	require.NoError(t, err)
	defer s2.Close()
	require.NoError(t, s2.Ping(ctx))
	hits, err = s2.Search(ctx, "docs", rag.Query{Vector: []float32{1, 0, 0}, TopK: 10})
	require.NoError(t, err)
	require.Equal(t, []string{"a/0", "b/0"}, ids(hits))
	infos, err := s2.ListCollections(ctx)
	require.NoError(t, err)
	require.Equal(t, []rag.CollectionInfo{{CollectionSpec: rag.CollectionSpec{Name: "docs", Dimension: 3, Distance: rag.Cosine, EmbedModel: "m"}, Points: 2}}, infos)

	require.NoError(t, s2.DeleteChunks(ctx, "docs", "b", 0))
	require.NoError(t, s2.DeleteCollection(ctx, "docs"))
	require.ErrorIs(t, s2.DeleteCollection(ctx, "docs"), rag.ErrCollectionNotFound)
	infos, err = s2.ListCollections(ctx)
	require.NoError(t, err)
	require.Empty(t, infos)
}

func TestStoreErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	_, err := s.EnsureCollection(ctx, rag.CollectionSpec{Name: "c", Dimension: 2})
	require.NoError(t, err)
	good := []float32{1, 0}

	tests := []struct {
		name string
		err  error
		call func() error
	}{
		{"unknown collection search", rag.ErrCollectionNotFound, func() error {
			_, err := s.Search(ctx, "nope", rag.Query{Vector: good})
			return err
		}},
		{"unknown collection upsert", rag.ErrCollectionNotFound, func() error {
			return s.Upsert(ctx, "nope", []rag.Point{{DocumentID: "d", Vector: good}})
		}},
		{"unknown collection count", rag.ErrCollectionNotFound, func() error { _, err := s.Count(ctx, "nope"); return err }},
		{"query dimension", rag.ErrDimensionMismatch, func() error {
			_, err := s.Search(ctx, "c", rag.Query{Vector: []float32{1, 2, 3}})
			return err
		}},
		{"point dimension", rag.ErrDimensionMismatch, func() error {
			return s.Upsert(ctx, "c", []rag.Point{{DocumentID: "d", Vector: []float32{1}}})
		}},
		{"bad filter", rag.ErrInvalidFilter, func() error {
			_, err := s.Search(ctx, "c", rag.Query{Vector: good, Filter: rag.Filter{"k": map[string]any{"x": 1}}})
			return err
		}},
		{"empty filter list", rag.ErrInvalidFilter, func() error {
			_, err := s.Search(ctx, "c", rag.Query{Vector: good, Filter: rag.Filter{"k": []any{}}})
			return err
		}},
		{"top_k", rag.ErrInvalidArgument, func() error {
			_, err := s.Search(ctx, "c", rag.Query{Vector: good, TopK: -1})
			return err
		}},
		{"NaN", rag.ErrInvalidArgument, func() error {
			return s.Upsert(ctx, "c", []rag.Point{{DocumentID: "d", Vector: []float32{float32(math.NaN()), 0}}})
		}},
		{"empty doc id", rag.ErrInvalidArgument, func() error {
			return s.Upsert(ctx, "c", []rag.Point{{Vector: good}})
		}},
		{"nested metadata", rag.ErrInvalidArgument, func() error {
			return s.Upsert(ctx, "c", []rag.Point{{DocumentID: "d", Vector: good, Metadata: rag.Metadata{"x": []any{1}}}})
		}},
		{"bad name", rag.ErrInvalidArgument, func() error {
			_, err := s.EnsureCollection(ctx, rag.CollectionSpec{Name: "../x", Dimension: 2})
			return err
		}},
		{"distance change", rag.ErrInvalidArgument, func() error {
			_, err := s.EnsureCollection(ctx, rag.CollectionSpec{Name: "c", Dimension: 2, Distance: rag.Dot})
			return err
		}},
		{"cancelled", context.Canceled, func() error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := s.Search(cctx, "c", rag.Query{Vector: good})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, tt.call(), tt.err)
		})
	}
}

// TestSearchMatchesBruteForce checks the parallel heap search against a
// float64 sort for every distance, across the parallel threshold, with
// deletions (slot moves) in between.
func TestSearchMatchesBruteForce(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	const dim, n = 24, parallelMin + 500
	for _, dist := range []rag.Distance{rag.Cosine, rag.Dot, rag.Euclidean} {
		t.Run(string(dist), func(t *testing.T) {
			s, _ := openTemp(t)
			_, err := s.EnsureCollection(ctx, rag.CollectionSpec{Name: "c", Dimension: dim, Distance: dist})
			require.NoError(t, err)
			pts := make([]rag.Point, n)
			for i := range pts {
				pts[i] = rag.Point{DocumentID: "d" + string(rune('a'+i%7)), Chunk: i, Vector: randVec(r, dim), Metadata: rag.Metadata{"m": float64(i % 3)}}
			}
			require.NoError(t, s.Upsert(ctx, "c", pts))
			require.NoError(t, s.DeleteChunks(ctx, "c", "dc", 4000))
			live := pts[:0:0]
			for _, p := range pts {
				if !(p.DocumentID == "dc" && p.Chunk >= 4000) {
					live = append(live, p)
				}
			}
			for range 5 {
				q := randVec(r, dim)
				hits, err := s.Search(ctx, "c", rag.Query{Vector: q, TopK: 10, Filter: rag.Filter{"m": 1}})
				require.NoError(t, err)
				require.Equal(t, bruteForce(live, q, dist, 10, 1), ids(hits))
			}
		})
	}
}

func bruteForce(pts []rag.Point, q []float32, dist rag.Distance, k int, m float64) []string {
	type sc struct {
		id string
		s  float64
	}
	var all []sc
	for _, p := range pts {
		if p.Metadata["m"] != m {
			continue
		}
		var d, na, nb, e float64
		for i := range q {
			a, b := float64(p.Vector[i]), float64(q[i])
			d += a * b
			na += a * a
			nb += b * b
			e += (a - b) * (a - b)
		}
		s := d
		switch dist {
		case rag.Cosine:
			s = d / math.Sqrt(na*nb)
		case rag.Euclidean:
			s = -math.Sqrt(e)
		}
		all = append(all, sc{p.DocumentID + "/" + itoa(p.Chunk), s})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].s > all[j].s })
	var out []string
	for _, x := range all[:min(k, len(all))] {
		out = append(out, x.id)
	}
	return out
}

func ids(hits []rag.Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.DocumentID+"/"+itoa(h.Chunk))
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
