package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/aurax/aurax/rag"
)

// EnsureCollection implements rag.Writer.
func (s *Store) EnsureCollection(ctx context.Context, spec rag.CollectionSpec) (bool, error) {
	if spec.Distance == "" {
		spec.Distance = rag.Cosine
	}
	if err := spec.Validate(); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if ix, err := s.get(spec.Name); err == nil {
		return false, ix.spec.Compatible(spec)
	} else if !errors.Is(err, rag.ErrCollectionNotFound) {
		return false, err
	}
	raw, _ := json.Marshal(spec)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketCollections).Put([]byte(spec.Name), raw); err != nil {
			return err
		}
		_, err := tx.CreateBucket([]byte(pointsPrefix + spec.Name))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("create collection %q: %w", spec.Name, err)
	}
	s.mu.Lock()
	s.colls[spec.Name] = newIndex(spec, !s.exact)
	s.mu.Unlock()
	return true, nil
}

// ListCollections implements rag.Collections, sorted by name.
func (s *Store) ListCollections(ctx context.Context) ([]rag.CollectionInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, errClosed
	}
	out := make([]rag.CollectionInfo, 0, len(s.colls))
	for _, ix := range s.colls {
		ix.mu.RLock()
		out = append(out, rag.CollectionInfo{CollectionSpec: ix.spec, Points: ix.len()})
		ix.mu.RUnlock()
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b rag.CollectionInfo) int { return cmpString(a.Name, b.Name) })
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DeleteCollection implements rag.Collections.
func (s *Store) DeleteCollection(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.get(name); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketCollections).Delete([]byte(name)); err != nil {
			return err
		}
		return tx.DeleteBucket([]byte(pointsPrefix + name))
	})
	if err != nil {
		return fmt.Errorf("delete collection %q: %w", name, err)
	}
	s.mu.Lock()
	delete(s.colls, name)
	s.mu.Unlock()
	return nil
}

// Count implements rag.Store.
func (s *Store) Count(ctx context.Context, collection string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	ix, err := s.get(collection)
	if err != nil {
		return 0, err
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.len(), nil
}
