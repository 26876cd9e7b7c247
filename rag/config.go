package rag

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Store kinds for Config.Store.
const (
	StoreEmbedded = "embedded"
	StoreQdrant   = "qdrant"
)

// Search paths of the embedded store for Config.Search.
const (
	// SearchQuantized scans a 4-bit copy of the vectors and rescores the
	// best few hundred candidates exactly (the default).
	SearchQuantized = "quantized"
	// SearchExact scores every float32 vector.
	SearchExact = "exact"
)

// On-error policies for Config.OnError.
const (
	OnErrorSkip = "skip" // answer without context, header X-Aurax-RAG: skipped
	OnErrorFail = "fail" // 503
)

// Config is the rag section of the AURAX config file.
type Config struct {
	// Store is "embedded" (default, zero setup) or "qdrant".
	Store string `yaml:"store" help:"embedded (zero setup) or qdrant"`
	// Path is the embedded store's file.
	Path string `yaml:"path" help:"the embedded store's file"`
	// Search is the embedded store's search path: quantized or exact.
	Search string       `yaml:"search" help:"embedded store search: quantized (4-bit scan, exact re-rank of the best 512) or exact"`
	Qdrant QdrantConfig `yaml:"qdrant"`
	// EmbedModel embeds documents and queries unless a collection says
	// otherwise.
	EmbedModel string `yaml:"embed_model" help:"embedding model for documents and queries (empty: models.embedding)"`
	// Distance for new collections: cosine, dot or euclid.
	Distance     string `yaml:"distance" help:"distance of new collections: cosine, dot or euclid"`
	ChunkSize    int    `yaml:"chunk_size" help:"chunk size in characters"`
	ChunkOverlap int    `yaml:"chunk_overlap" help:"characters shared by neighbouring chunks"`
	// MaxDocumentBytes rejects larger documents at ingest.
	MaxDocumentBytes int     `yaml:"max_document_bytes" help:"largest document accepted at ingest"`
	TopK             int     `yaml:"top_k" help:"chunks retrieved per question"`
	MinScore         float64 `yaml:"min_score" help:"lowest score a retrieved chunk may have"`
	// OnError is what chat does when retrieval fails: skip or fail.
	OnError string `yaml:"on_error" help:"when retrieval fails during chat: skip (answer without context) or fail (503)"`
	// Timeout bounds one retrieval (embed + search) during chat.
	Timeout time.Duration `yaml:"timeout" help:"bound of one retrieval (embed + search) during chat"`
	// Template is the system-message text/template; "" means DefaultTemplate.
	Template string      `yaml:"template" help:"system-message text/template over .Query and .Hits (empty: built-in)"`
	Embed    EmbedConfig `yaml:"embed"`
	// Aliases are model names that turn retrieval on by default: alias →
	// "chatmodel@collection" (see ParseAlias).
	Aliases map[string]string `yaml:"aliases" help:"models answering with retrieval: name=chatmodel@collection, comma-separated in the environment"`
}

// ParseAlias splits an alias target "chatmodel@collection" at its last '@'
// (collection names cannot contain one) and validates the collection name.
func ParseAlias(target string) (model, collection string, err error) {
	i := strings.LastIndexByte(target, '@')
	if i <= 0 || i == len(target)-1 {
		return "", "", fmt.Errorf("%w: %q is not chatmodel@collection", ErrInvalidArgument, target)
	}
	model, collection = target[:i], target[i+1:]
	if err := ValidateCollectionName(collection); err != nil {
		return "", "", err
	}
	return model, collection, nil
}

// EmbedConfig tunes the CachedEmbedder.
type EmbedConfig struct {
	BatchSize   int `yaml:"batch_size" help:"texts per embed call"`
	Concurrency int `yaml:"concurrency" help:"embed calls at once"`
	CacheSize   int `yaml:"cache_size" help:"embeddings kept in the in-memory cache"`
}

// QdrantConfig is the Qdrant connection and collection settings.
type QdrantConfig struct {
	Host   string `yaml:"host" help:"Qdrant host"`
	Port   int    `yaml:"port" help:"Qdrant gRPC port"` // gRPC port
	APIKey string `yaml:"api_key" help:"Qdrant API key"`
	TLS    bool   `yaml:"tls" help:"TLS to Qdrant"`
	// Timeout bounds each call.
	Timeout time.Duration `yaml:"timeout" help:"bound of each Qdrant call"`
	// Collection creation (the seed's QDRANT_CONFIG: 4 / 2 / 1).
	ShardNumber            int  `yaml:"shard_number" help:"shards of new collections"`
	ReplicationFactor      int  `yaml:"replication_factor" help:"replicas of each shard"`
	WriteConsistencyFactor int  `yaml:"write_consistency_factor" help:"replicas that must acknowledge a write"`
	OnDiskPayload          bool `yaml:"on_disk_payload" help:"keep payloads on disk"`
	HNSW                   HNSW `yaml:"hnsw"`
	// IndexedFields are the metadata keys filters use; each gets a keyword
	// payload index (document_id always has one).
	IndexedFields []string `yaml:"indexed_fields" help:"metadata keys that get a payload index for filters"`
}

// HNSW parameters; 0 leaves Qdrant's default.
type HNSW struct {
	M           int `yaml:"m" help:"HNSW m (0: Qdrant default)"`
	EfConstruct int `yaml:"ef_construct" help:"HNSW ef_construct (0: Qdrant default)"`
	// Ef is the search-time beam width.
	Ef int `yaml:"ef" help:"HNSW search ef (0: Qdrant default)"`
}

// DefaultConfig is the zero-setup configuration.
func DefaultConfig() Config {
	return Config{
		Store:            StoreEmbedded,
		Path:             "data/rag.db",
		Search:           SearchQuantized,
		Qdrant:           DefaultQdrantConfig(),
		EmbedModel:       "", // models.embedding
		Distance:         string(Cosine),
		ChunkSize:        800,
		ChunkOverlap:     100,
		MaxDocumentBytes: 10 << 20,
		TopK:             DefaultTopK,
		MinScore:         0,
		OnError:          OnErrorSkip,
		Timeout:          5 * time.Second,
		Embed:            EmbedConfig{BatchSize: 32, Concurrency: 2, CacheSize: 10_000},
	}
}

// DefaultQdrantConfig is a local Qdrant with the seed's collection settings.
func DefaultQdrantConfig() QdrantConfig {
	return QdrantConfig{
		Host: "localhost", Port: 6334, Timeout: 10 * time.Second,
		ShardNumber: 4, ReplicationFactor: 2, WriteConsistencyFactor: 1,
		HNSW: HNSW{M: 16, EfConstruct: 100},
	}
}

// Validate reports every problem at once (errors.Join), each wrapping
// ErrInvalidArgument.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: rag."+format, append([]any{ErrInvalidArgument}, args...)...))
	}
	switch c.Store {
	case StoreEmbedded:
		if c.Path == "" {
			bad("path is required for the embedded store")
		}
		if c.Search != SearchQuantized && c.Search != SearchExact {
			bad("search %q: want %s or %s", c.Search, SearchQuantized, SearchExact)
		}
	case StoreQdrant:
		if err := c.Qdrant.Validate(); err != nil {
			errs = append(errs, err)
		}
	default:
		bad("store %q: want embedded or qdrant", c.Store)
	}
	if _, err := ParseDistance(c.Distance); err != nil {
		bad("distance %q: want cosine, dot or euclid", c.Distance)
	}
	if err := (Chunker{Size: c.ChunkSize, Overlap: c.ChunkOverlap}).Validate(); err != nil {
		bad("chunk_size %d / chunk_overlap %d: want size > 0 and 0 <= overlap < size", c.ChunkSize, c.ChunkOverlap)
	}
	if c.MaxDocumentBytes <= 0 {
		bad("max_document_bytes must be positive")
	}
	if c.TopK <= 0 || c.TopK > MaxTopK {
		bad("top_k %d: want 1..%d", c.TopK, MaxTopK)
	}
	if c.MinScore < -1 || c.MinScore > 1 {
		// Cosine scores; dot and euclid users may need more, but a
		// threshold outside [-1, 1] is almost always a typo.
		bad("min_score %v: want -1..1", c.MinScore)
	}
	if c.OnError != OnErrorSkip && c.OnError != OnErrorFail {
		bad("on_error %q: want skip or fail", c.OnError)
	}
	if c.Timeout < 0 {
		bad("timeout must not be negative")
	}
	if _, err := NewAugmenter(c.Template); err != nil {
		errs = append(errs, err)
	}
	if c.Embed.BatchSize < 0 || c.Embed.Concurrency < 0 {
		bad("embed batch_size and concurrency must not be negative")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Aliases)) {
		if _, _, err := ParseAlias(c.Aliases[name]); err != nil || name == "" {
			bad("aliases %q=%q: want name=chatmodel@collection", name, c.Aliases[name])
		}
	}
	return errors.Join(errs...)
}

// Validate checks the connection and collection settings.
func (q QdrantConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: rag.qdrant."+format, append([]any{ErrInvalidArgument}, args...)...))
	}
	if q.Host == "" {
		bad("host is required")
	}
	if q.Port <= 0 || q.Port > 65535 {
		bad("port %d", q.Port)
	}
	if q.ShardNumber < 1 || q.ReplicationFactor < 1 || q.WriteConsistencyFactor < 1 {
		bad("shard_number, replication_factor and write_consistency_factor must be >= 1")
	}
	if q.WriteConsistencyFactor > q.ReplicationFactor {
		bad("write_consistency_factor %d exceeds replication_factor %d", q.WriteConsistencyFactor, q.ReplicationFactor)
	}
	if q.HNSW.M < 0 || q.HNSW.EfConstruct < 0 || q.HNSW.Ef < 0 {
		bad("hnsw parameters must not be negative")
	}
	if q.Timeout < 0 {
		bad("timeout must not be negative")
	}
	for _, f := range q.IndexedFields {
		if f == "" {
			bad("indexed_fields has an empty name")
		}
	}
	return errors.Join(errs...)
}
