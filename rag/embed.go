package rag

import (
	"container/list"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// Embedder turns texts into vectors with model: the model service's embed
// call (models.Service.EmbedTexts fits through EmbedderFunc).
//
// Embed returns exactly one vector per text, in order, or an error; on
// cancellation it returns ctx's error (wrapped). Callers must not modify
// the returned vectors (they may be shared with a cache).
type Embedder interface {
	Embed(ctx context.Context, model string, texts []string) ([][]float32, error)
}

// EmbedderFunc adapts a function to Embedder.
type EmbedderFunc func(ctx context.Context, model string, texts []string) ([][]float32, error)

// Embed calls f.
func (f EmbedderFunc) Embed(ctx context.Context, model string, texts []string) ([][]float32, error) {
	return f(ctx, model, texts)
}

// CacheOptions configures NewCachedEmbedder.
type CacheOptions struct {
	// BatchSize is the most texts per upstream call; 0 means 32.
	BatchSize int
	// Concurrency is the most upstream calls in flight per Embed; 0 means 2.
	Concurrency int
	// Size is the most vectors cached (least recently used go first);
	// 0 means 10,000; negative disables the cache.
	Size int
	// Metrics counts hits and misses; nil counts only in Stats.
	Metrics *Metrics
}

// CachedEmbedder wraps an Embedder with an LRU cache keyed by model and the
// SHA-256 of the text, splits misses into batches and embeds them with
// bounded concurrency. Duplicate texts within one call are embedded once.
// It is safe for concurrent use.
type CachedEmbedder struct {
	next Embedder
	opts CacheOptions

	mu    sync.Mutex
	lru   *list.List // of *cacheEntry, most recent first
	items map[cacheKey]*list.Element

	hits, misses atomic.Int64
}

type cacheKey [sha256.Size]byte

type cacheEntry struct {
	key cacheKey
	vec []float32
}

var _ Embedder = (*CachedEmbedder)(nil)

// NewCachedEmbedder wraps next.
func NewCachedEmbedder(next Embedder, opts CacheOptions) *CachedEmbedder {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 32
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 2
	}
	if opts.Size == 0 {
		opts.Size = 10_000
	}
	return &CachedEmbedder{next: next, opts: opts, lru: list.New(), items: map[cacheKey]*list.Element{}}
}

func keyOf(model, text string) cacheKey {
	h := sha256.New()
	h.Write([]byte(model))
	h.Write([]byte{0})
	h.Write([]byte(text))
	var k cacheKey
	h.Sum(k[:0])
	return k
}

// CacheStats are cumulative counts since construction.
type CacheStats struct {
	Hits, Misses int64
	Entries      int
}

// Stats returns the cache counters.
func (c *CachedEmbedder) Stats() CacheStats {
	c.mu.Lock()
	n := len(c.items)
	c.mu.Unlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Entries: n}
}

// Embed implements Embedder.
func (c *CachedEmbedder) Embed(ctx context.Context, model string, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	keys := make([]cacheKey, len(texts))
	// Unique missing texts, and where each goes.
	var missing []string
	var missingKeys []cacheKey
	where := map[cacheKey][]int{}
	hits := 0
	c.mu.Lock()
	for i, t := range texts {
		k := keyOf(model, t)
		keys[i] = k
		if e, ok := c.items[k]; ok {
			c.lru.MoveToFront(e)
			out[i] = e.Value.(*cacheEntry).vec
			hits++
			continue
		}
		if _, dup := where[k]; !dup {
			missing = append(missing, t)
			missingKeys = append(missingKeys, k)
		}
		where[k] = append(where[k], i)
	}
	c.mu.Unlock()
	c.hits.Add(int64(hits))
	c.misses.Add(int64(len(texts) - hits))
	c.opts.Metrics.cache(hits, len(texts)-hits)
	if len(missing) == 0 {
		return out, nil
	}

	vecs := make([][]float32, len(missing))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Concurrency)
	for lo := 0; lo < len(missing); lo += c.opts.BatchSize {
		hi := min(lo+c.opts.BatchSize, len(missing))
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			got, err := c.next.Embed(gctx, model, missing[lo:hi])
			if err != nil {
				return err
			}
			if len(got) != hi-lo {
				return fmt.Errorf("embed %q: got %d vectors for %d texts", model, len(got), hi-lo)
			}
			copy(vecs[lo:hi], got)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("embed with %q: %w", model, err)
	}
	c.mu.Lock()
	for j, k := range missingKeys {
		for _, i := range where[k] {
			out[i] = vecs[j]
		}
		if c.opts.Size > 0 {
			c.add(k, vecs[j])
		}
	}
	c.mu.Unlock()
	return out, nil
}

// add inserts under mu, evicting the least recently used.
func (c *CachedEmbedder) add(k cacheKey, v []float32) {
	if e, ok := c.items[k]; ok {
		c.lru.MoveToFront(e)
		return
	}
	c.items[k] = c.lru.PushFront(&cacheEntry{key: k, vec: v})
	for c.lru.Len() > c.opts.Size {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}
