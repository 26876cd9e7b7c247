package embedded

import (
	"context"
	"fmt"
	"math/rand/v2"
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
// in batches of 256 (one fsynced transaction each).
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	s, _ := openTemp(b)
	_, err := s.EnsureCollection(ctx, rag.CollectionSpec{Name: "c", Dimension: benchDim})
	require.NoError(b, err)
	r := rand.New(rand.NewPCG(1, 1))
	const batch = 256
	batches := make([][]rag.Point, 16)
	for i := range batches {
		batches[i] = benchPoints(r, i*batch, batch)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pts := batches[i%len(batches)]
		for j := range pts { // fresh ids: inserts, not overwrites
			pts[j].DocumentID = fmt.Sprintf("doc-%d-%d", i, j/8)
		}
		if err := s.Upsert(ctx, "c", pts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "chunks/s")
}

// BenchmarkSearch reports p50/p99 latency of top-10 cosine search and the
// heap the loaded collection holds.
func BenchmarkSearch(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			ctx := context.Background()
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			s, _ := openTemp(b)
			_, err := s.EnsureCollection(ctx, rag.CollectionSpec{Name: "c", Dimension: benchDim})
			require.NoError(b, err)
			r := rand.New(rand.NewPCG(2, 2))
			for i := 0; i < n; i += 4096 {
				require.NoError(b, s.Upsert(ctx, "c", benchPoints(r, i, min(4096, n-i))))
			}
			runtime.GC()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			queries := make([][]float32, 64)
			for i := range queries {
				queries[i] = randVec(r, benchDim)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				hits, err := s.Search(ctx, "c", rag.Query{Vector: queries[i%len(queries)], TopK: 10})
				lat = append(lat, time.Since(t0))
				if err != nil || len(hits) != 10 {
					b.Fatal(err, len(hits))
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/(1<<20), "heap-MiB")
		})
	}
}
