// Package embedded is the zero-setup rag.Store: points live in one bbolt
// file on local disk and every vector is held in memory for search.
//
// Durability: each Upsert or DeleteChunks is one bbolt transaction, and a
// bbolt commit fsyncs before it returns, so an acknowledged write survives
// kill -9 and power loss. Memory is updated only after the commit, and the
// in-memory side (float32 vectors and their 4-bit copy) is rebuilt from
// the file on open: there is no second file to fall out of step.
//
// Search (Options.Search): the default, quantized, scans a 4-bit copy of
// every vector (an eighth of the memory traffic; AVX-512 VNNI or AVX2
// kernel) and rescores the best 512 candidates exactly in float32, so the
// scores returned are exact and recall@10 against the exact scan is ≥ 0.98
// (a test holds it there). Exact scores every float32 vector (AVX2/FMA).
// Both split one search over Options.Workers goroutines and apply a filter
// before ranking, so top k fills whenever k points match. BENCHMARKS.md at
// the repository root has the figures.
package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/aurax/aurax/rag"
)

var (
	_ rag.Store       = (*Store)(nil)
	_ rag.Collections = (*Store)(nil)
)

var (
	bucketCollections = []byte("collections")
	pointsPrefix      = "points/"
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Logger receives open/load messages; nil discards.
	Logger *slog.Logger
	// Workers is how many goroutines one search uses; 0 means GOMAXPROCS.
	Workers int
	// OpenTimeout bounds the wait for the file lock another process holds;
	// 0 means 2s.
	OpenTimeout time.Duration
	// Search is rag.SearchQuantized (the default when empty) or
	// rag.SearchExact, which also saves the 4-bit copy (dim/2 bytes a
	// point).
	Search string
}

// Store is the embedded rag.Store. It is safe for concurrent use; Close it
// when done.
type Store struct {
	db      *bbolt.DB
	log     *slog.Logger
	workers int
	exact   bool // rag.SearchExact: no quantized copy

	wmu sync.Mutex // serialises writers so memory follows commit order

	mu     sync.RWMutex
	colls  map[string]*index
	closed bool
}

// Open opens (creating if needed) the store file at path and loads every
// collection into memory. Only one process may hold the file.
func Open(path string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = 2 * time.Second
	}
	switch opts.Search {
	case "", rag.SearchQuantized, rag.SearchExact:
	default:
		return nil, fmt.Errorf("%w: embedded store: search %q (want %s or %s)", rag.ErrInvalidArgument, opts.Search, rag.SearchQuantized, rag.SearchExact)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("embedded store: %w", err)
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:        opts.OpenTimeout,
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded store: open %s: %w", path, err)
	}
	s := &Store{
		db: db, log: opts.Logger.With("component", "rag.embedded"), workers: opts.Workers,
		exact: opts.Search == rag.SearchExact, colls: map[string]*index{},
	}
	start := time.Now()
	prefetch(path) // with the file lock held: a second process fails fast
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded store: load %s: %w", path, err)
	}
	n := 0
	for _, ix := range s.colls {
		n += ix.len()
	}
	s.log.Info("embedded store opened", "path", path, "collections", len(s.colls), "points", n, "search", s.mode(), "load", time.Since(start))
	return s, nil
}

func (s *Store) mode() string {
	if s.exact {
		return rag.SearchExact
	}
	return rag.SearchQuantized
}

// loadProgressEvery is how many points of a large collection load between
// two progress lines in the log.
const loadProgressEvery = 200_000

// prefetchMin is the file size from which Open reads the file once before
// loading it.
const prefetchMin = 64 << 20

// prefetch reads the file at path sequentially so that the load, which
// walks the B-tree in key order through bbolt's mmap, finds its pages in
// the page cache. On a cold cache that walk is random reads: a 2 GB store
// measured 56 s to open cold against 5 s warm, while reading it in order
// takes 9 s cold and 0.5 s warm (posix_fadvise WILLNEED measured no
// better than nothing).
func prefetch(path string) {
	f, err := os.Open(path)
	if err != nil {
		return // bbolt.Open reports it
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() < prefetchMin {
		return
	}
	// A plain read loop: io.Copy to io.Discard reads 8 KiB at a time.
	buf := make([]byte, 4<<20)
	for {
		if _, err := f.Read(buf); err != nil {
			return // io.EOF, or a failure that only costs time
		}
	}
}

func (s *Store) load() error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		cb, err := tx.CreateBucketIfNotExists(bucketCollections)
		if err != nil {
			return err
		}
		return cb.ForEach(func(name, v []byte) error {
			var spec rag.CollectionSpec
			if err := json.Unmarshal(v, &spec); err != nil {
				return fmt.Errorf("collection %q: %w", name, err)
			}
			ix := newIndex(spec, !s.exact)
			pb := tx.Bucket([]byte(pointsPrefix + spec.Name))
			if pb == nil {
				return fmt.Errorf("collection %q: points bucket missing", spec.Name)
			}
			n := pb.Stats().KeyN
			ix.grow(n)
			ix.loading = true
			vec := make([]float32, 0, ix.dim)
			start, loaded := time.Now(), 0
			err := pb.ForEach(func(k, v []byte) error {
				var meta []byte
				var err error
				vec, meta, _, err = decodeRecord(v, ix.dim, vec[:0])
				if err != nil {
					return fmt.Errorf("collection %q key %q: %w", spec.Name, k, err)
				}
				ix.put(string(k), vec, meta)
				if loaded++; loaded%loadProgressEvery == 0 {
					s.log.Info("embedded store loading", "collection", spec.Name, "points", loaded, "of", n, "elapsed", time.Since(start))
				}
				return nil
			})
			if err != nil {
				return err
			}
			ix.loading = false
			if ix.stride > 0 {
				ix.retrain(s.workers)
			}
			s.colls[spec.Name] = ix
			return nil
		})
	})
}

// Close releases the file. Later calls return rag.ErrUnavailable.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.colls = nil // release the vectors
	s.mu.Unlock()
	return s.db.Close()
}

var errClosed = fmt.Errorf("%w: embedded store closed", rag.ErrUnavailable)

func (s *Store) get(name string) (*index, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	ix, ok := s.colls[name]
	if !ok {
		return nil, fmt.Errorf("collection %q: %w", name, rag.ErrCollectionNotFound)
	}
	return ix, nil
}

// Ping reports rag.ErrUnavailable once the store is closed.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errClosed
	}
	return nil
}

type encoded struct {
	key  []byte
	vec  []float32
	meta []byte
	val  []byte
}
