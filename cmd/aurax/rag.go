package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/rag/embedded"
	"github.com/aurax/aurax/rag/qdrant"
	"github.com/aurax/aurax/server"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Wiring shared by serve, ingest and search: the vector store, the
// embedder, and the HTTP client of --server mode.

// ragStore is an opened store; the caller closes it.
type ragStore interface {
	server.RAGStore
	Close() error
}

// openRAGStore opens the configured store: the embedded one at rag.path
// (one process at a time), or a Qdrant client (connects lazily).
func openRAGStore(cfg rag.Config, logger *slog.Logger) (ragStore, error) {
	switch cfg.Store {
	case rag.StoreQdrant:
		st, err := qdrant.New(cfg.Qdrant, qdrant.Options{Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("rag store: %w", err)
		}
		return st, nil
	case rag.StoreEmbedded:
		st, err := embedded.Open(cfg.Path, embedded.Options{Logger: logger, Search: cfg.Search})
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("rag store %s is in use by another process (a running aurax serve?): stop it, or pass --server URL to go through its API", cfg.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("rag store (rag.path=%s): %w", cfg.Path, err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("rag.store: %q is not embedded or qdrant", cfg.Store)
}

// ragEmbedModel is the model that embeds documents and queries of
// collections that do not name theirs.
func ragEmbedModel(cfg config.Config) string {
	if cfg.RAG.EmbedModel != "" {
		return cfg.RAG.EmbedModel
	}
	return cfg.Models.Embedding
}

// ragEmbedder is the model service's embed call behind the cache.
func ragEmbedder(svc *models.Service, cfg rag.Config, m *rag.Metrics) *rag.CachedEmbedder {
	return rag.NewCachedEmbedder(rag.EmbedderFunc(svc.EmbedTexts), rag.CacheOptions{
		BatchSize:   cfg.Embed.BatchSize,
		Concurrency: cfg.Embed.Concurrency,
		Size:        cfg.Embed.CacheSize,
		Metrics:     m,
	})
}

// withRAGAliases adds the rag aliases (name → its chat model) to the model
// aliases, so /v1/models and /api/tags list them; model aliases win.
func withRAGAliases(aliases, ragAliases map[string]string) map[string]string {
	out := maps.Clone(aliases)
	if out == nil {
		out = map[string]string{}
	}
	for name, target := range ragAliases {
		if model, _, err := rag.ParseAlias(target); err == nil {
			if _, ok := out[name]; !ok {
				out[name] = model
			}
		}
	}
	return out
}

// collectionInfo finds a collection in the local store; ok is false when it
// does not exist.
func collectionInfo(ctx context.Context, st ragStore, name string) (info rag.CollectionInfo, ok bool, err error) {
	list, err := st.ListCollections(ctx)
	if err != nil {
		return info, false, err
	}
	for _, ci := range list {
		if ci.Name == name {
			return ci, true, nil
		}
	}
	return info, false, nil
}

// apiClient talks to a running AURAX (--server mode).
type apiClient struct {
	base string
	key  string
	hc   *http.Client
}

func newAPIClient(base, key string) *apiClient {
	return &apiClient{base: strings.TrimRight(base, "/"), key: key, hc: &http.Client{Timeout: 10 * time.Minute}}
}

// apiError is an error answer of the AURAX API.
type apiError struct {
	Status  int
	Message string
	Param   string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

// clientError reports whether the server refused the request's content
// (400, 413, 422) rather than the caller or itself.
func clientError(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusRequestEntityTooLarge || ae.Status == http.StatusUnprocessableEntity)
}

// do sends in as JSON (nil: no body) and decodes a 2xx answer into out.
func (a *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Param   *string `json:"param"`
			} `json:"error"`
		}
		ae := &apiError{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			ae.Message = e.Error.Message
			if e.Error.Param != nil {
				ae.Param = *e.Error.Param
			}
		}
		return ae
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}
