package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// writeCorpus writes a small folder: three good files (four documents),
// one empty file that must be listed as failed, and a hidden one that is
// skipped.
func writeCorpus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"a.txt":        "Otters hold hands while sleeping so they do not drift apart.\n\nA group of otters resting in water is called a raft.",
		"sub/b.md":     "# Lighthouses\n\nThe **Pharos** of Alexandria was one of the seven wonders.",
		"c.jsonl":      `{"id":"faq-1","text":"Refunds are paid within fourteen days.","lang":"en"}` + "\n" + `{"id":"faq-2","text":"Les remboursements prennent quatorze jours.","lang":"fr"}`,
		"empty.txt":    "  \n",
		".hidden/x.md": "never ingested",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}
	return dir
}

// ragEnv points the configuration at the test Ollama and a fresh store.
func ragEnv(t *testing.T) {
	t.Helper()
	u := testenv.Ollama(t)
	for k, v := range map[string]string{
		"AURAX_CONFIG": "", "AURAX_OLLAMA_URL": u,
		"AURAX_MODELS_DEFAULT": testenv.ChatModel, "AURAX_MODELS_EMBEDDING": testenv.EmbedModel,
		"AURAX_RAG_PATH":       filepath.Join(t.TempDir(), "rag.db"),
		"AURAX_RAG_CHUNK_SIZE": "80", "AURAX_RAG_CHUNK_OVERLAP": "10",
		"AURAX_API_KEYS": "", "AURAX_ADMIN_KEY": "",
	} {
		t.Setenv(k, v)
	}
}

// ingest runs `aurax ingest args...` and returns its stdout and error.
func ingest(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := ingestMain(context.Background(), args, &out, &errOut)
	if err == nil || errors.Is(err, errExitSilently) {
		require.Contains(t, errOut.String(), "chunks/s", "a progress line on stderr")
	}
	return out.String(), err
}

// search runs `aurax search --json args...`.
func search(t *testing.T, args ...string) searchResult {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, searchMain(context.Background(), append([]string{"--json"}, args...), &out))
	var res searchResult
	require.NoError(t, json.Unmarshal(out.Bytes(), &res), out.String())
	return res
}

// checkCorpus asserts what both modes must show: every chunk's exact text
// finds that chunk first, and the chunk count.
func checkCorpus(t *testing.T, flags []string, wantChunks int) {
	t.Helper()
	all := search(t, append(flags, "--top-k", "1000", "--min-score", "-1", "anything")...)
	require.Len(t, all.Data, wantChunks)
	for _, h := range all.Data {
		got := search(t, append(flags, "--top-k", "2", h.Text)...)
		require.NotEmpty(t, got.Data)
		require.Equal(t, h.DocumentID, got.Data[0].DocumentID, "search %q", h.Text)
		require.Equal(t, h.Chunk, got.Data[0].Chunk, "search %q", h.Text)
	}
}

func TestIngestSearchLocal(t *testing.T) {
	ragEnv(t)
	dir := writeCorpus(t)
	out, err := ingest(t, "--collection", "notes", dir)
	require.ErrorIs(t, err, errExitSilently, "a failed file makes the exit status 1")
	require.Contains(t, out, "ingested 4 documents")
	require.Contains(t, out, "1 failed:")
	require.Contains(t, out, "empty.txt")
	require.NotContains(t, out, ".hidden")

	all := search(t, "--collection", "notes", "--top-k", "1000", "--min-score", "-1", "x")
	chunks := len(all.Data)
	require.Greater(t, chunks, 4)
	checkCorpus(t, []string{"--collection", "notes"}, chunks)

	_, err = ingest(t, "--collection", "notes", filepath.Join(dir, "a.txt"), filepath.Join(dir, "c.jsonl"))
	require.NoError(t, err)
	checkCorpus(t, []string{"--collection", "notes"}, chunks) // no duplicates

	fr := search(t, "--collection", "notes", "--min-score", "-1", "--filter", `{"lang":"fr"}`, "refunds")
	require.Len(t, fr.Data, 1)
	require.Equal(t, "faq-2", fr.Data[0].DocumentID)

	var text bytes.Buffer
	require.NoError(t, searchMain(context.Background(), []string{"--collection", "notes", "Otters hold hands"}, &text))
	require.Contains(t, text.String(), "1. ")

	err = searchMain(context.Background(), []string{"--collection", "nope", "x"}, &text)
	require.ErrorIs(t, err, rag.ErrCollectionNotFound)
	_, err = ingest(t, dir)
	require.ErrorContains(t, err, "--collection is required")
}

func TestIngestSearchServer(t *testing.T) {
	ragEnv(t)
	cfg, err := config.Load("", os.LookupEnv)
	require.NoError(t, err)
	cfg.Auth = config.Auth{APIKeys: []string{"user-key"}, AdminKey: "admin-key"}
	cfg.RAG.Path = filepath.Join(t.TempDir(), "server.db")
	base := startServer(t, cfg)
	dir := writeCorpus(t)

	_, err = ingest(t, "--collection", "notes", "--server", base, "--key", "user-key", dir)
	require.ErrorContains(t, err, "401", "writes need the admin key")

	out, err := ingest(t, "--collection", "notes", "--server", base, "--key", "admin-key", dir)
	require.ErrorIs(t, err, errExitSilently)
	require.Contains(t, out, "ingested 4 documents")
	require.Contains(t, out, "empty.txt")

	flags := []string{"--collection", "notes", "--server", base, "--key", "user-key"}
	all := search(t, append(flags, "--top-k", "1000", "--min-score", "-1", "x")...)
	chunks := len(all.Data)
	require.Greater(t, chunks, 4)
	checkCorpus(t, flags, chunks)

	_, err = ingest(t, "--collection", "notes", "--server", base, "--key", "admin-key", filepath.Join(dir, "a.txt"))
	require.NoError(t, err)
	checkCorpus(t, flags, chunks) // no duplicates
}

// startServer runs AURAX with cfg on loopback until the test ends.
func startServer(t *testing.T, cfg config.Config) string {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Options{Window: cfg.Metrics.Window}, logger)
	t.Cleanup(func() { m.Close() })
	p, closePool, err := newPool(cfg, logger, reg)
	require.NoError(t, err)
	t.Cleanup(closePool)
	svc := newModelService(cfg, p)
	st, err := openRAGStore(cfg.RAG, logger)
	require.NoError(t, err)
	rm := rag.NewMetrics(reg)
	srv := server.New(server.Options{Config: cfg, Pool: p, Models: svc, Metrics: m, Logger: logger, Version: "test",
		RAG: &server.RAG{Store: st, Embedder: ragEmbedder(svc, cfg.RAG, rm), Metrics: rm}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, st.Close())
	})
	base := "http://" + ln.Addr().String()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		require.True(t, time.Now().Before(deadline), "%s never became ready", base)
		time.Sleep(50 * time.Millisecond)
	}
}

func TestWithRAGAliases(t *testing.T) {
	got := withRAGAliases(map[string]string{"qwen3:coder": "m", "taken": "x"},
		map[string]string{"docs-rag": "aurax-tiny@docs", "taken": "y@z", "bad": "nocollection"})
	require.Equal(t, map[string]string{"qwen3:coder": "m", "taken": "x", "docs-rag": "aurax-tiny"}, got)
	require.True(t, strings.HasPrefix(excerpt("a\n\nb  c", 3), "a b"))
}
