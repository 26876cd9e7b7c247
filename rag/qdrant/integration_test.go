package qdrant

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aurax/aurax/rag"
)

// TestIntegration runs against a real Qdrant when QDRANT_URL is set
// (e.g. grpc://localhost:6334; https://host:6334 for TLS; QDRANT_API_KEY).
func TestIntegration(t *testing.T) {
	raw := os.Getenv("QDRANT_URL")
	if raw == "" {
		t.Skip("QDRANT_URL not set: skipping the real-Qdrant integration test")
	}
	u, err := url.Parse(raw)
	require.NoError(t, err)
	cfg := rag.DefaultQdrantConfig()
	cfg.Host = u.Hostname()
	if p := u.Port(); p != "" {
		cfg.Port, _ = strconv.Atoi(p)
	}
	cfg.TLS = u.Scheme == "https"
	cfg.APIKey = os.Getenv("QDRANT_API_KEY")
	cfg.ShardNumber, cfg.ReplicationFactor = 1, 1 // a single node
	s, err := New(cfg, Options{})
	require.NoError(t, err)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, s.Ping(ctx))

	name := fmt.Sprintf("aurax_test_%d", time.Now().UnixNano())
	_, err = s.EnsureCollection(ctx, rag.CollectionSpec{Name: name, Dimension: 3})
	require.NoError(t, err)
	defer s.DeleteCollection(context.Background(), name)
	pts := []rag.Point{
		{DocumentID: "a", Chunk: 0, Text: "x", Vector: []float32{1, 0, 0}, Metadata: rag.Metadata{"lang": "en"}},
		{DocumentID: "a", Chunk: 1, Text: "y", Vector: []float32{0, 1, 0}, Metadata: rag.Metadata{"lang": "en"}},
		{DocumentID: "b", Chunk: 0, Text: "z", Vector: []float32{0, 0, 1}, Metadata: rag.Metadata{"lang": "pt"}},
	}
	require.NoError(t, s.Upsert(ctx, name, pts))
	require.NoError(t, s.Upsert(ctx, name, pts))
	n, err := s.Count(ctx, name)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	hits, err := s.Search(ctx, name, rag.Query{Vector: []float32{1, 0, 0}, TopK: 1})
	require.NoError(t, err)
	require.Equal(t, "a", hits[0].DocumentID)
	require.NoError(t, s.DeleteChunks(ctx, name, "a", 1))
	n, err = s.Count(ctx, name)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	_, err = s.Search(ctx, name, rag.Query{Vector: []float32{1, 0}})
	require.ErrorIs(t, err, rag.ErrDimensionMismatch)
	_, err = s.Search(ctx, "aurax_missing_collection", rag.Query{Vector: []float32{1, 0, 0}})
	require.ErrorIs(t, err, rag.ErrCollectionNotFound)
}
