package embedded

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/aurax/aurax/rag"
)

// Search implements rag.Searcher on the path Options.Search chose. Every
// point is scored (int8 or float32); the scores returned are exact.
// Cancellation is checked before the scan, which is short (milliseconds).
func (s *Store) Search(ctx context.Context, collection string, q rag.Query) ([]rag.Hit, error) {
	return s.search(ctx, collection, q, s.exact)
}

// search is Search on the exact path or, when the collection has its
// quantized copy, the quantized one. Benchmarks and tests compare both on
// one store with it.
func (s *Store) search(ctx context.Context, collection string, q rag.Query, exact bool) ([]rag.Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := q.Normalize(); err != nil {
		return nil, err
	}
	m, err := q.Filter.Compile()
	if err != nil {
		return nil, err
	}
	ix, err := s.get(collection)
	if err != nil {
		return nil, err
	}
	if len(q.Vector) != ix.dim {
		return nil, &rag.DimensionError{Collection: collection, Want: ix.dim, Got: len(q.Vector)}
	}
	qv := q.Vector
	if ix.spec.Distance == rag.Cosine {
		qv = slices.Clone(qv)
		normalize(qv)
	}
	minScore := float32(math.Inf(-1))
	if q.MinScore != nil {
		minScore = float32(*q.MinScore)
	}

	ix.mu.RLock()
	var allowed []bool
	if m != nil {
		allowed = make([]bool, len(ix.metas))
		for i, md := range ix.metas {
			allowed[i] = m.Match(md)
		}
	}
	var cands []candidate
	if exact {
		cands = ix.search(qv, q.TopK, minScore, allowed, s.workers)
	} else {
		cands = ix.searchQuantized(qv, q.TopK, minScore, allowed, s.workers)
	}
	keys := make([]string, len(cands))
	metas := make([]rag.Metadata, len(cands))
	for i, c := range cands {
		keys[i] = ix.keys[c.slot]
		metas[i] = ix.metas[ix.meta[c.slot]]
	}
	ix.mu.RUnlock()

	return s.hits(collection, ix.dim, cands, keys, metas)
}

// hits reads the texts of the scan's winners (keys, their metadata) from
// the file; a point deleted since the scan is left out.
func (s *Store) hits(collection string, dim int, cands []candidate, keys []string, metas []rag.Metadata) ([]rag.Hit, error) {
	hits := make([]rag.Hit, 0, len(cands))
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(pointsPrefix + collection))
		if b == nil {
			return fmt.Errorf("collection %q: %w", collection, rag.ErrCollectionNotFound)
		}
		for i, c := range cands {
			v := b.Get([]byte(keys[i]))
			if v == nil {
				continue // deleted since the scan
			}
			doc, chunk, _ := splitKey([]byte(keys[i]))
			_, text, err := decodeTail(v, dim)
			if err != nil {
				return err
			}
			hits = append(hits, rag.Hit{
				DocumentID: doc, Chunk: chunk, Score: float64(c.score),
				Text: string(text), Metadata: maps(metas[i]),
			})
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			return nil, errClosed
		}
		return nil, fmt.Errorf("search %q: %w", collection, err)
	}
	return hits, nil
}

// maps copies md so callers cannot mutate the interned map.
func maps(md rag.Metadata) rag.Metadata {
	if md == nil {
		return nil
	}
	out := make(rag.Metadata, len(md))
	for k, v := range md {
		out[k] = v
	}
	return out
}
