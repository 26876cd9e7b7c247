package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aurax/aurax/rag"
	"github.com/gofiber/fiber/v2"
)

// The retrieval API: collections, documents and search under /v1/rag, and
// the vector store's health. The chat extension is in rag_chat.go.

// RAGStore is the vector store as the server uses it: search and writes
// (rag.Store) and the collection routes (rag.Collections). rag/embedded
// and rag/qdrant implement it. Whoever opened it closes it, after Run
// returns.
type RAGStore interface {
	rag.Store
	rag.Collections
}

// RAG holds the retrieval dependencies. A nil Options.RAG turns retrieval
// off: no /v1/rag routes, and a chat request with `rag` is a 400.
type RAG struct {
	Store RAGStore
	// Embedder embeds documents and queries: in production the model
	// service's EmbedTexts behind rag.NewCachedEmbedder.
	Embedder rag.Embedder
	// Metrics records retrievals, ingested chunks and skips; nil records
	// nothing.
	Metrics *rag.Metrics
}

// ragService is the server's retrieval state, built once from RAG and the
// rag config.
type ragService struct {
	RAG
	cfg        rag.Config
	embedModel string // for collections that do not name theirs
	retriever  *rag.Retriever
	augmenter  *rag.Augmenter
	aliases    map[string]ragAlias

	mu    sync.Mutex
	infos map[string]cachedInfo
}

// ragAlias is a model name that answers with retrieval by default.
type ragAlias struct{ model, collection string }

type cachedInfo struct {
	info rag.CollectionInfo
	at   time.Time
}

// infoTTL bounds how long a collection's settings (dimension, distance,
// embedding model) are reused without asking the store: a collection that
// another replica drops and re-creates differently is seen within it.
const infoTTL = 30 * time.Second

// initRAG builds the retrieval state; New calls it before routes.
func (s *Server) initRAG(r *RAG) {
	if r == nil || r.Store == nil || r.Embedder == nil {
		return
	}
	cfg := s.cfg.RAG
	aug, err := rag.NewAugmenter(cfg.Template)
	if err != nil { // config.Validate rejects it first; keep serving
		s.log.Error("rag template invalid: using the built-in one", "err", err)
		aug, _ = rag.NewAugmenter("")
	}
	rs := &ragService{
		RAG:        *r,
		cfg:        cfg,
		embedModel: cfg.EmbedModel,
		retriever:  rag.NewRetriever(r.Store, r.Embedder, rag.RetrieverOptions{TopK: cfg.TopK, MinScore: cfg.MinScore, Metrics: r.Metrics}),
		augmenter:  aug,
		aliases:    map[string]ragAlias{},
		infos:      map[string]cachedInfo{},
	}
	if rs.embedModel == "" {
		rs.embedModel = s.models.DefaultEmbed()
	}
	for name, target := range cfg.Aliases {
		model, coll, err := rag.ParseAlias(target)
		if err != nil {
			s.log.Error("rag alias ignored", "alias", name, "err", err)
			continue
		}
		rs.aliases[name] = ragAlias{model: model, collection: coll}
	}
	s.rag = rs
	s.health.ragPing = r.Store.Ping
}

// ragRoutes registers /v1/rag when retrieval is on. Reads need an API key
// when keys are configured; writes need the admin key (adminWrite).
func (s *Server) ragRoutes(v1 fiber.Router) {
	if s.rag == nil {
		return
	}
	w := s.auth.adminWrite
	v1.Get("/rag/collections", s.ragListCollections)
	v1.Post("/rag/collections", w, s.ragCreateCollection)
	v1.Delete("/rag/collections/:name", w, s.ragDeleteCollection)
	v1.Post("/rag/collections/:name/documents", w, s.ragUpsertDocuments)
	v1.Delete("/rag/collections/:name/documents/+", w, s.ragDeleteDocument)
	v1.Post("/rag/search", s.ragSearch)
}

// ragCtx bounds one RAG request; it ends early when the drain timeout cuts
// requests still running.
func (s *Server) ragCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.reqCtx, s.cfg.Ollama.RequestTimeout)
}

// collection returns name's settings, from a short-lived cache or the
// store; ErrCollectionNotFound when it does not exist (never cached).
func (r *ragService) collection(ctx context.Context, name string) (rag.CollectionInfo, error) {
	if err := rag.ValidateCollectionName(name); err != nil {
		return rag.CollectionInfo{}, err
	}
	r.mu.Lock()
	ci, ok := r.infos[name]
	r.mu.Unlock()
	if ok && time.Since(ci.at) < infoTTL {
		return ci.info, nil
	}
	list, err := r.Store.ListCollections(ctx)
	if err != nil {
		return rag.CollectionInfo{}, err
	}
	now := time.Now()
	infos := make(map[string]cachedInfo, len(list))
	for _, info := range list {
		infos[info.Name] = cachedInfo{info: info, at: now}
	}
	r.mu.Lock()
	r.infos = infos
	r.mu.Unlock()
	if ci, ok := infos[name]; ok {
		return ci.info, nil
	}
	return rag.CollectionInfo{}, fmt.Errorf("collection %q: %w", name, rag.ErrCollectionNotFound)
}

// forget drops name from the cache after this replica changed it.
func (r *ragService) forget(name string) {
	r.mu.Lock()
	delete(r.infos, name)
	r.mu.Unlock()
}

// modelFor is the embedding model of a collection's vectors.
func (r *ragService) modelFor(info rag.CollectionInfo) string {
	if info.EmbedModel != "" {
		return info.EmbedModel
	}
	return r.embedModel
}
