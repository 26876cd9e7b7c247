package rag

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/google/uuid"
)

// Sentinel errors. Stores, the Ingester and the Retriever wrap them with
// context; the HTTP layer maps them with errors.Is:
// ErrCollectionNotFound → 404, ErrDimensionMismatch, ErrInvalidFilter and
// ErrInvalidArgument → 400 (or 422), ErrUnavailable → 503.
var (
	ErrCollectionNotFound = errors.New("collection not found")
	ErrDimensionMismatch  = errors.New("vector dimension mismatch")
	ErrInvalidFilter      = errors.New("invalid filter")
	ErrInvalidArgument    = errors.New("invalid argument")
	// ErrUnavailable means the store cannot be reached or is closed; the
	// request may succeed later.
	ErrUnavailable = errors.New("vector store unavailable")
)

// DimensionError reports a vector whose length differs from its
// collection's dimension. It matches ErrDimensionMismatch.
type DimensionError struct {
	Collection string
	Want, Got  int
}

func (e *DimensionError) Error() string {
	return fmt.Sprintf("collection %q has dimension %d, got a vector of %d", e.Collection, e.Want, e.Got)
}

// Is makes errors.Is(err, ErrDimensionMismatch) true.
func (e *DimensionError) Is(target error) bool { return target == ErrDimensionMismatch }

// Distance is the similarity a collection ranks by. Scores are higher-is-better
// for every distance: cosine similarity, dot product, or the negated
// Euclidean distance (Qdrant's convention).
type Distance string

// Distances.
const (
	Cosine    Distance = "cosine"
	Dot       Distance = "dot"
	Euclidean Distance = "euclid"
)

// ParseDistance accepts "cosine", "dot" and "euclid" (or "euclidean").
func ParseDistance(s string) (Distance, error) {
	switch s {
	case "cosine", "Cosine":
		return Cosine, nil
	case "dot", "Dot":
		return Dot, nil
	case "euclid", "euclidean", "Euclid":
		return Euclidean, nil
	}
	return "", fmt.Errorf("%w: unknown distance %q (want cosine, dot or euclid)", ErrInvalidArgument, s)
}

// CollectionSpec describes a collection to create.
type CollectionSpec struct {
	Name      string   `json:"name"`
	Dimension int      `json:"dimension"`
	Distance  Distance `json:"distance"`
	// EmbedModel is the model that produced the vectors; stored with the
	// collection so later ingests and queries use the same one. Optional.
	EmbedModel string `json:"embed_model,omitempty"`
}

// Compatible says whether an existing collection (c) can take what a
// caller asks for (want): the same dimension and distance.
func (c CollectionSpec) Compatible(want CollectionSpec) error {
	if c.Dimension != want.Dimension {
		return &DimensionError{Collection: c.Name, Want: c.Dimension, Got: want.Dimension}
	}
	if c.Distance != want.Distance {
		return fmt.Errorf("%w: collection %q exists with distance %s, not %s", ErrInvalidArgument, c.Name, c.Distance, want.Distance)
	}
	return nil
}

// CollectionInfo describes an existing collection.
type CollectionInfo struct {
	CollectionSpec
	Points int `json:"points"`
}

// Validate checks the name, a positive dimension and a known distance.
func (s CollectionSpec) Validate() error {
	if err := ValidateCollectionName(s.Name); err != nil {
		return err
	}
	if s.Dimension <= 0 || s.Dimension > MaxDimension {
		return fmt.Errorf("%w: dimension %d out of range 1..%d", ErrInvalidArgument, s.Dimension, MaxDimension)
	}
	if _, err := ParseDistance(string(s.Distance)); err != nil {
		return err
	}
	return nil
}

// MaxDimension bounds vector length (Qdrant's limit is 65536).
const MaxDimension = 65536

var collectionNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ValidateCollectionName accepts 1–128 letters, digits, '_', '-' and '.',
// starting with a letter or digit: safe as a Qdrant name, a bbolt bucket and
// a URL path segment.
func ValidateCollectionName(name string) error {
	if !collectionNameRE.MatchString(name) {
		return fmt.Errorf("%w: collection name %q (want 1-128 of [A-Za-z0-9_.-], starting alphanumeric)", ErrInvalidArgument, name)
	}
	return nil
}

// MaxDocumentIDLen bounds document ids.
const MaxDocumentIDLen = 512

// ValidateDocumentID rejects empty, oversized and NUL-containing ids.
func ValidateDocumentID(id string) error {
	if id == "" || len(id) > MaxDocumentIDLen {
		return fmt.Errorf("%w: document id must be 1-%d bytes", ErrInvalidArgument, MaxDocumentIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] == 0 {
			return fmt.Errorf("%w: document id contains NUL", ErrInvalidArgument)
		}
	}
	return nil
}

// Point is one chunk to store. Its identity is (DocumentID, Chunk): upserting
// the same pair again replaces it.
type Point struct {
	DocumentID string
	Chunk      int
	Text       string
	Vector     []float32
	Metadata   Metadata
}

// Validate checks the point against a collection of dimension dim.
func (p *Point) Validate(collection string, dim int) error {
	if err := ValidateDocumentID(p.DocumentID); err != nil {
		return err
	}
	if p.Chunk < 0 || p.Chunk > math.MaxInt32 {
		return fmt.Errorf("%w: chunk index %d", ErrInvalidArgument, p.Chunk)
	}
	if len(p.Vector) != dim {
		return &DimensionError{Collection: collection, Want: dim, Got: len(p.Vector)}
	}
	for _, v := range p.Vector {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: vector of %q chunk %d has a non-finite value", ErrInvalidArgument, p.DocumentID, p.Chunk)
		}
	}
	return p.Metadata.Validate()
}

// Query is a nearest-neighbour search.
type Query struct {
	Vector []float32
	// TopK is the most hits returned; 0 means DefaultTopK.
	TopK int
	// MinScore, when set, drops hits scoring below it.
	MinScore *float64
	// Filter, when non-empty, keeps only points whose metadata matches.
	Filter Filter
}

// DefaultTopK and MaxTopK bound Query.TopK.
const (
	DefaultTopK = 5
	MaxTopK     = 1000
)

// Normalize validates q and fills in defaults.
func (q *Query) Normalize() error {
	if q.TopK == 0 {
		q.TopK = DefaultTopK
	}
	if q.TopK < 0 || q.TopK > MaxTopK {
		return fmt.Errorf("%w: top_k %d out of range 1..%d", ErrInvalidArgument, q.TopK, MaxTopK)
	}
	if len(q.Vector) == 0 {
		return fmt.Errorf("%w: empty query vector", ErrInvalidArgument)
	}
	if q.MinScore != nil && (math.IsNaN(*q.MinScore) || math.IsInf(*q.MinScore, 0)) {
		return fmt.Errorf("%w: min_score must be finite", ErrInvalidArgument)
	}
	return q.Filter.Validate()
}

// Hit is one search result, best first.
type Hit struct {
	DocumentID string   `json:"document_id"`
	Chunk      int      `json:"chunk"`
	Score      float64  `json:"score"`
	Text       string   `json:"text"`
	Metadata   Metadata `json:"metadata,omitempty"`
}

// Searcher finds the chunks nearest to a vector. The Retriever consumes it.
//
// Search returns at most q.TopK hits sorted by descending score. It returns
// ErrCollectionNotFound for an unknown collection, a *DimensionError for a
// query vector of the wrong length, ErrInvalidFilter / ErrInvalidArgument for
// a bad query, ErrUnavailable when the store cannot be reached, and ctx.Err()
// (wrapped) when ctx ends first. It is safe for concurrent use.
type Searcher interface {
	Search(ctx context.Context, collection string, q Query) ([]Hit, error)
}

// Writer creates collections and writes points. The Ingester consumes it.
//
// An acknowledged write (nil error) is durable. On a failed or cancelled
// call the write is either fully applied or not at all per call for the
// embedded store; a remote store may have applied part of a batch, which is
// safe to retry because point ids are deterministic.
type Writer interface {
	// EnsureCollection creates spec.Name if it does not exist and reports
	// whether it did. An existing collection with another dimension or
	// distance is a *DimensionError / ErrInvalidArgument.
	EnsureCollection(ctx context.Context, spec CollectionSpec) (created bool, err error)
	// Upsert writes points, replacing those with the same (DocumentID, Chunk).
	Upsert(ctx context.Context, collection string, points []Point) error
	// DeleteChunks deletes the chunks of documentID whose index is ≥
	// fromChunk; fromChunk 0 deletes the whole document. Deleting nothing
	// is not an error.
	DeleteChunks(ctx context.Context, collection, documentID string, fromChunk int) error
}

// Store is a vector store: what the server holds. Implementations:
// rag/embedded and rag/qdrant. The code that opened a Store closes it
// (the concrete types have Close); a closed store returns ErrUnavailable.
type Store interface {
	Searcher
	Writer
	// Count returns the number of points in collection.
	Count(ctx context.Context, collection string) (int, error)
	// Ping reports whether the store is reachable: nil, or an error
	// wrapping ErrUnavailable. /health uses it.
	Ping(ctx context.Context) error
}

// Collections lists and drops collections; the HTTP collection routes
// consume it. Both stores implement it.
type Collections interface {
	ListCollections(ctx context.Context) ([]CollectionInfo, error)
	// DeleteCollection drops name and its points; ErrCollectionNotFound if
	// it does not exist.
	DeleteCollection(ctx context.Context, name string) error
}

// pointNamespace roots the deterministic point ids (UUID v5).
var pointNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/aurax/aurax/rag/point"))

// PointID is the deterministic id of a chunk: the UUID v5 of collection,
// document id and chunk index. Qdrant accepts it as a point id.
func PointID(collection, documentID string, chunk int) string {
	b := make([]byte, 0, len(collection)+len(documentID)+12)
	b = append(b, collection...)
	b = append(b, 0)
	b = append(b, documentID...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(chunk), 10)
	return uuid.NewSHA1(pointNamespace, b).String()
}
