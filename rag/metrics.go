package rag

import "github.com/prometheus/client_golang/prometheus"

// Skip reasons for aurax_rag_skipped_total{reason}.
const (
	SkipStore   = "store"   // the store failed or is unavailable
	SkipEmbed   = "embed"   // the query or a chunk could not be embedded
	SkipTimeout = "timeout" // retrieval ran past its deadline
	SkipDecode  = "decode"  // a file could not be decoded during ingest
	SkipInvalid = "invalid" // a document was empty, oversized or rejected
)

// Metrics are the RAG metrics. A nil *Metrics records nothing, so tests and
// tools can leave it out.
type Metrics struct {
	RetrievalDuration prometheus.Histogram
	ChunksIngested    prometheus.Counter
	SearchHits        prometheus.Histogram
	CacheHits         prometheus.Counter
	CacheMisses       prometheus.Counter
	Skipped           *prometheus.CounterVec
}

// NewMetrics builds the metrics and registers them on reg (nil: not
// registered). Every skip reason starts at 0.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RetrievalDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "aurax_rag_retrieval_duration_seconds",
			Help:    "Time to embed a query and search the vector store.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		ChunksIngested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aurax_rag_chunks_ingested_total",
			Help: "Chunks written to the vector store.",
		}),
		SearchHits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "aurax_rag_search_hits",
			Help:    "Hits returned per retrieval.",
			Buckets: []float64{0, 1, 2, 3, 5, 8, 10, 20, 50},
		}),
		CacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aurax_embedding_cache_hits_total",
			Help: "Texts whose embedding came from the in-memory cache.",
		}),
		CacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aurax_embedding_cache_misses_total",
			Help: "Texts that had to be embedded by the model.",
		}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aurax_rag_skipped_total",
			Help: "Retrievals answered without context, or documents skipped at ingest, by reason.",
		}, []string{"reason"}),
	}
	for _, r := range []string{SkipStore, SkipEmbed, SkipTimeout, SkipDecode, SkipInvalid} {
		m.Skipped.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.RetrievalDuration, m.ChunksIngested, m.SearchHits, m.CacheHits, m.CacheMisses, m.Skipped)
	}
	return m
}

// Skip counts one skip for reason (one of the Skip* constants).
func (m *Metrics) Skip(reason string) {
	if m != nil {
		m.Skipped.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) chunks(n int) {
	if m != nil {
		m.ChunksIngested.Add(float64(n))
	}
}

func (m *Metrics) cache(hits, misses int) {
	if m != nil {
		m.CacheHits.Add(float64(hits))
		m.CacheMisses.Add(float64(misses))
	}
}
