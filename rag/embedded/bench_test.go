package embedded

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aurax/aurax/rag"
)

const benchDim = 384

func benchPoints(r *rand.Rand, from, n int) []rag.Point {
	pts := make([]rag.Point, n)
	for i := range pts {
		id := from + i
		pts[i] = rag.Point{
			DocumentID: fmt.Sprintf("doc-%d", id/8), Chunk: id % 8,
			Text:     "a chunk of some four hundred characters would be typical; this one is shorter.",
			Vector:   randVec(r, benchDim),
			Metadata: rag.Metadata{"source": fmt.Sprintf("file-%d.md", id/8)},
		}
	}
	return pts
}

// BenchmarkIngest is store-bound ingest: precomputed 384-d vectors upserted
// in batches of 256 (one fsynced transaction each), into an exact and a
// quantized store in turn, so both see the same machine.
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	open := func(search string) *Store {
		s, err := Open(filepath.Join(b.TempDir(), "rag.db"), Options{Search: search})
		require.NoError(b, err)
		b.Cleanup(func() { s.Close() })
		_, err = s.EnsureCollection(ctx, rag.CollectionSpec{Name: "c", Dimension: benchDim})
		require.NoError(b, err)
		return s
	}
	stores := []*Store{open(rag.SearchExact), open(rag.SearchQuantized)}
	r := rand.New(rand.NewPCG(1, 1))
	const batch = 256
	batches := make([][]rag.Point, 16)
	for i := range batches {
		batches[i] = benchPoints(r, i*batch, batch)
	}
	var took [2]time.Duration
	i := 0
	for b.Loop() {
		pts := batches[i%len(batches)]
		for j := range pts { // fresh ids: inserts, not overwrites
			pts[j].DocumentID = fmt.Sprintf("doc-%d-%d", i, j/8)
		}
		for k, s := range stores {
			t0 := time.Now()
			if err := s.Upsert(ctx, "c", pts); err != nil {
				b.Fatal(err)
			}
			took[k] += time.Since(t0)
		}
		i++
	}
	b.ReportMetric(float64(i*batch)/took[0].Seconds(), "exact-chunks/s")
	b.ReportMetric(float64(i*batch)/took[1].Seconds(), "chunks/s")
}

// bench1M turns on the million-point rows of BenchmarkSearch: about 2 GiB
// of heap, a 1.7 GB file and a few minutes.
const bench1M = "AURAX_BENCH_1M"

// BenchmarkSearch compares the exact and the quantized path side by side
// on clustered 384-d data (clusteredSet), cosine, top 10: each iteration
// runs one query near a stored point on both paths of the same loaded
// store, alternating which goes first, and scores the quantized answer's
// recall@10 against the exact one. It also reports what building the
// store ingested per second (batches of 512), how long opening it took
// (warm: the file just written, in the page cache; cold-open-s: its pages
// evicted first, Linux only) and the heap it holds, in each mode. Run with
// -benchtime 300x; set AURAX_BENCH_1M=1 to add n=1000000.
func BenchmarkSearch(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if os.Getenv(bench1M) != "" {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) { benchSearch(b, n, nil) })
	}
	b.Run("n=100000/filter=la", func(b *testing.B) { benchSearch(b, 100_000, rag.Filter{"lang": "la"}) })
}

func benchSearch(b *testing.B, n int, filter rag.Filter) {
	ctx := context.Background()
	data := newClusteredSet(42, n, benchDim)
	path := filepath.Join(b.TempDir(), "rag.db")

	s, err := Open(path, Options{})
	require.NoError(b, err)
	_, err = s.EnsureCollection(ctx, rag.CollectionSpec{Name: "c", Dimension: benchDim})
	require.NoError(b, err)
	const batch = 512
	var ingest time.Duration
	for i := 0; i < n; i += batch {
		pts := data.points(i, min(i+batch, n))
		t0 := time.Now()
		require.NoError(b, s.Upsert(ctx, "c", pts))
		ingest += time.Since(t0)
	}
	require.NoError(b, s.Close())
	fi, err := os.Stat(path)
	require.NoError(b, err)

	// Each mode opened on its own, for its open time and its heap.
	reopen := func(search string) (*Store, time.Duration, float64) {
		s = nil
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		t0 := time.Now()
		st, err := Open(path, Options{Search: search})
		took := time.Since(t0)
		require.NoError(b, err)
		runtime.GC()
		runtime.ReadMemStats(&after)
		return st, took, float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / (1 << 20)
	}
	coldOpen := -1.0
	if evict(path) {
		st, took, _ := reopen(rag.SearchQuantized)
		require.NoError(b, st.Close())
		coldOpen = took.Seconds()
	}
	ex, exactOpen, exactHeap := reopen(rag.SearchExact)
	require.NoError(b, ex.Close())
	ex = nil
	s, open, heap := reopen(rag.SearchQuantized)
	defer s.Close()

	queries := make([][]float32, 300)
	for j := range queries {
		queries[j] = data.query(j)
	}
	var lat [2][]time.Duration // exact, quantized
	var recall float64
	i := 0
	for b.Loop() {
		q := rag.Query{Vector: queries[i%len(queries)], TopK: 10, Filter: filter}
		var hits [2][]rag.Hit
		for o := range 2 {
			path := (i + o) % 2 // alternate which path goes first
			t0 := time.Now()
			h, err := s.search(ctx, "c", q, path == 0)
			lat[path] = append(lat[path], time.Since(t0))
			if err != nil || len(h) != 10 {
				b.Fatal(err, len(h))
			}
			hits[path] = h
		}
		recall += recallAt(hits[0], hits[1])
		i++
	}
	b.StopTimer()
	p := func(path, pct int) float64 {
		l := slices.Sorted(slices.Values(lat[path]))
		return float64(l[(len(l)-1)*pct/100].Microseconds()) / 1000
	}
	b.ReportMetric(p(0, 50), "exact-p50-ms")
	b.ReportMetric(p(0, 99), "exact-p99-ms")
	b.ReportMetric(p(1, 50), "p50-ms")
	b.ReportMetric(p(1, 99), "p99-ms")
	b.ReportMetric(p(0, 99)/p(1, 99), "speedup-p99")
	b.ReportMetric(recall/float64(i), "recall@10")
	b.ReportMetric(exactHeap, "exact-heap-MiB")
	b.ReportMetric(heap, "heap-MiB")
	b.ReportMetric(exactOpen.Seconds(), "exact-open-s")
	b.ReportMetric(open.Seconds(), "open-s")
	if coldOpen >= 0 {
		b.ReportMetric(coldOpen, "cold-open-s")
	}
	b.ReportMetric(float64(n)/ingest.Seconds(), "ingest-chunks/s")
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
}

// recallAt is the share of want's hits that got also has.
func recallAt(want, got []rag.Hit) float64 {
	if len(want) == 0 {
		return 1
	}
	type id struct {
		doc   string
		chunk int
	}
	have := make(map[id]bool, len(got))
	for _, h := range got {
		have[id{h.DocumentID, h.Chunk}] = true
	}
	n := 0
	for _, h := range want {
		if have[id{h.DocumentID, h.Chunk}] {
			n++
		}
	}
	return float64(n) / float64(len(want))
}
