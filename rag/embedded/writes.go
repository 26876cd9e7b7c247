package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/aurax/aurax/rag"
)

// Upsert implements rag.Writer: all points in one transaction, fsynced
// before it returns. Batch for throughput (hundreds of points per call).
func (s *Store) Upsert(ctx context.Context, collection string, points []rag.Point) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ix, err := s.get(collection)
	if err != nil {
		return err
	}
	if len(points) == 0 {
		return nil
	}
	enc := make([]encoded, len(points))
	for i := range points {
		p := &points[i]
		if err := p.Validate(collection, ix.dim); err != nil {
			return err
		}
		vec := slices.Clone(p.Vector)
		if ix.spec.Distance == rag.Cosine {
			normalize(vec)
		}
		var meta []byte
		if len(p.Metadata) > 0 {
			if meta, err = json.Marshal(p.Metadata); err != nil {
				return fmt.Errorf("%w: metadata: %v", rag.ErrInvalidArgument, err)
			}
		}
		enc[i] = encoded{key: pointKey(p.DocumentID, p.Chunk), vec: vec, meta: meta, val: encodeRecord(vec, meta, p.Text)}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if ix, err = s.get(collection); err != nil { // dropped meanwhile?
		return err
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(pointsPrefix + collection))
		if b == nil {
			return fmt.Errorf("collection %q: %w", collection, rag.ErrCollectionNotFound)
		}
		for _, e := range enc {
			if err := b.Put(e.key, e.val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("upsert into %q: %w", collection, err)
	}
	ix.mu.Lock()
	for _, e := range enc {
		ix.put(string(e.key), e.vec, e.meta)
	}
	ix.mu.Unlock()
	return nil
}

// DeleteChunks implements rag.Writer.
func (s *Store) DeleteChunks(ctx context.Context, collection, documentID string, fromChunk int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := rag.ValidateDocumentID(documentID); err != nil {
		return err
	}
	if fromChunk < 0 {
		return fmt.Errorf("%w: fromChunk %d", rag.ErrInvalidArgument, fromChunk)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ix, err := s.get(collection)
	if err != nil {
		return err
	}
	var deleted []string
	prefix := append([]byte(documentID), 0)
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(pointsPrefix + collection))
		c := b.Cursor()
		for k, _ := c.Seek(pointKey(documentID, fromChunk)); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+4; {
			deleted = append(deleted, string(k))
			if err := c.Delete(); err != nil {
				return err
			}
			k, _ = c.Seek(k) // after Delete the cursor position is undefined
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %q from %q: %w", documentID, collection, err)
	}
	ix.mu.Lock()
	for _, k := range deleted {
		ix.remove(k)
	}
	ix.mu.Unlock()
	return nil
}
