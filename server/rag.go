package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
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

// ragError maps rag errors to the HTTP edge: unknown collection 404,
// dimension mismatch, invalid filter and invalid argument 400, store
// unavailable 503; model and context errors as fromUpstream does.
func ragError(err error) *Error {
	var he *Error
	if errors.As(err, &he) {
		return he
	}
	msg := strings.TrimPrefix(err.Error(), rag.ErrInvalidArgument.Error()+": ")
	switch {
	case errors.Is(err, rag.ErrCollectionNotFound):
		return &Error{Status: fiber.StatusNotFound, Code: "collection_not_found", Param: "collection", Message: msg, Err: err}
	case errors.Is(err, rag.ErrDimensionMismatch):
		return &Error{Status: fiber.StatusBadRequest, Code: "dimension_mismatch", Message: msg, Err: err}
	case errors.Is(err, rag.ErrInvalidFilter):
		return &Error{Status: fiber.StatusBadRequest, Code: "invalid_filter", Param: "filter", Message: msg, Err: err}
	case errors.Is(err, rag.ErrInvalidArgument):
		return &Error{Status: fiber.StatusBadRequest, Message: msg, Err: err}
	case errors.Is(err, rag.ErrUnavailable):
		return &Error{Status: fiber.StatusServiceUnavailable, Code: "vector_store_unavailable", RetryAfter: 5 * time.Second, Err: err,
			Message: "the vector store is unavailable; retry later"}
	}
	return fromUpstream(err)
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

// ragCollectionRequest is the body of POST /v1/rag/collections. Dimension
// 0 means "ask the embedding model" (one probe embedding).
type ragCollectionRequest struct {
	Name       string `json:"name"`
	EmbedModel string `json:"embed_model"`
	Dimension  int    `json:"dimension"`
	Distance   string `json:"distance"`
}

func (req *ragCollectionRequest) validate(defaultDistance string) (rag.Distance, error) {
	if err := rag.ValidateCollectionName(req.Name); err != nil {
		return "", badField("name", "want 1-128 of [A-Za-z0-9_.-], starting with a letter or digit")
	}
	if req.Dimension < 0 || req.Dimension > rag.MaxDimension {
		return "", badField("dimension", "must be between 1 and %d (0: the embedding model's)", rag.MaxDimension)
	}
	if req.Distance == "" {
		req.Distance = defaultDistance
	}
	d, err := rag.ParseDistance(req.Distance)
	if err != nil {
		return "", badField("distance", "%q is not cosine, dot or euclid", req.Distance)
	}
	return d, nil
}

// ragCreateCollection creates a collection (201), or confirms an existing
// one with the same settings (200); different settings are a 409.
func (s *Server) ragCreateCollection(c *fiber.Ctx) error {
	var req ragCollectionRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	dist, err := req.validate(s.rag.cfg.Distance)
	if err != nil {
		return err
	}
	ctx, cancel := s.ragCtx()
	defer cancel()
	if info, err := s.rag.collection(ctx, req.Name); err == nil {
		if conflict := sameCollection(info, req, dist); conflict != "" {
			return &Error{Status: fiber.StatusConflict, Code: "collection_exists", Param: conflict,
				Message: fmt.Sprintf("collection %q exists with %s %v", info.Name, conflict, fieldOf(info, conflict))}
		}
		return c.JSON(info)
	} else if !errors.Is(err, rag.ErrCollectionNotFound) {
		return ragError(err)
	}
	model := req.EmbedModel
	if model == "" {
		model = s.rag.embedModel
	}
	dim := req.Dimension
	if dim == 0 {
		vecs, err := s.rag.Embedder.Embed(ctx, model, []string{"dimension probe"})
		if err != nil {
			return ragError(err)
		}
		if len(vecs) != 1 || len(vecs[0]) == 0 {
			return &Error{Status: fiber.StatusBadGateway, Message: fmt.Sprintf("embedding model %q returned no vector", model)}
		}
		dim = len(vecs[0])
	}
	spec := rag.CollectionSpec{Name: req.Name, Dimension: dim, Distance: dist, EmbedModel: model}
	created, err := s.rag.Store.EnsureCollection(ctx, spec)
	s.rag.forget(req.Name)
	if err != nil {
		return ragError(err)
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(rag.CollectionInfo{CollectionSpec: spec})
}

// sameCollection names the first requested setting that differs from the
// existing collection's ("" when compatible).
func sameCollection(info rag.CollectionInfo, req ragCollectionRequest, d rag.Distance) string {
	switch {
	case req.Dimension != 0 && req.Dimension != info.Dimension:
		return "dimension"
	case d != info.Distance:
		return "distance"
	case req.EmbedModel != "" && info.EmbedModel != "" && req.EmbedModel != info.EmbedModel:
		return "embed_model"
	}
	return ""
}

func fieldOf(info rag.CollectionInfo, field string) any {
	switch field {
	case "dimension":
		return info.Dimension
	case "distance":
		return info.Distance
	}
	return info.EmbedModel
}

func (s *Server) ragListCollections(c *fiber.Ctx) error {
	ctx, cancel := s.ragCtx()
	defer cancel()
	list, err := s.rag.Store.ListCollections(ctx)
	if err != nil {
		return ragError(err)
	}
	if list == nil {
		list = []rag.CollectionInfo{}
	}
	return c.JSON(fiber.Map{"object": "list", "data": list})
}

func (s *Server) ragDeleteCollection(c *fiber.Ctx) error {
	name := c.Params("name")
	if err := rag.ValidateCollectionName(name); err != nil {
		return badField("name", "not a valid collection name")
	}
	ctx, cancel := s.ragCtx()
	defer cancel()
	err := s.rag.Store.DeleteCollection(ctx, name)
	s.rag.forget(name)
	if err != nil {
		return ragError(err)
	}
	return c.JSON(fiber.Map{"name": name, "deleted": true})
}

// ragDocumentsRequest is the body of POST /v1/rag/collections/{name}/documents.
type ragDocumentsRequest struct {
	Documents []rag.Document `json:"documents"`
}

// validate rejects the whole request when any document is bad, naming it:
// nothing is ingested from a request that gets a 4xx.
func (req *ragDocumentsRequest) validate(maxBytes int) error {
	if len(req.Documents) == 0 {
		return badField("documents", "must contain at least one document")
	}
	seen := make(map[string]bool, len(req.Documents))
	for i, d := range req.Documents {
		field := fmt.Sprintf("documents[%d]", i)
		if err := rag.ValidateDocumentID(d.ID); err != nil {
			return badField(field+".id", "must be 1-%d bytes without NUL", rag.MaxDocumentIDLen)
		}
		if seen[d.ID] {
			return badField(field+".id", "%q appears twice in this request", d.ID)
		}
		seen[d.ID] = true
		if strings.TrimSpace(d.Text) == "" {
			return badField(field+".text", "must not be empty")
		}
		if len(d.Text) > maxBytes {
			return &Error{Status: fiber.StatusRequestEntityTooLarge, Param: field + ".text", Code: "document_too_large",
				Message: fmt.Sprintf("%s.text: %d bytes exceeds the limit of %d (rag.max_document_bytes)", field, len(d.Text), maxBytes)}
		}
		if err := d.Metadata.Validate(); err != nil {
			return badField(field+".metadata", "%s", strings.TrimPrefix(err.Error(), rag.ErrInvalidArgument.Error()+": "))
		}
	}
	return nil
}

// ragIngestResponse reports an ingest: documents and chunks written, and
// every document that was not (none after a successful validation, unless
// the chunker found no text).
type ragIngestResponse struct {
	Collection string `json:"collection"`
	rag.IngestResult
}

// ragUpsertDocuments ingests documents into an existing collection with its
// embedding model. Re-sending a document rewrites the same points; a
// shorter new version loses its stale chunks.
func (s *Server) ragUpsertDocuments(c *fiber.Ctx) error {
	name := c.Params("name")
	if err := rag.ValidateCollectionName(name); err != nil {
		return badField("name", "not a valid collection name")
	}
	var req ragDocumentsRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if err := req.validate(s.rag.cfg.MaxDocumentBytes); err != nil {
		return err
	}
	ctx, cancel := s.ragCtx()
	defer cancel()
	info, err := s.rag.collection(ctx, name)
	if err != nil {
		return ragError(err)
	}
	in, err := rag.NewIngester(s.rag.Store, s.rag.Embedder, rag.IngestOptions{
		Chunker:          rag.Chunker{Size: s.rag.cfg.ChunkSize, Overlap: s.rag.cfg.ChunkOverlap},
		Distance:         info.Distance,
		MaxDocumentBytes: s.rag.cfg.MaxDocumentBytes,
		Metrics:          s.rag.Metrics,
		Logger:           s.log,
	})
	if err != nil {
		return ragError(err)
	}
	res, err := in.Ingest(ctx, name, s.rag.modelFor(info), req.Documents)
	if err != nil {
		he := ragError(err)
		if res.Documents > 0 {
			he.Message = fmt.Sprintf("%s (%d of %d documents were ingested before the failure; re-sending them is safe)", he.Message, res.Documents, len(req.Documents))
		}
		return he
	}
	if res.Failed == nil {
		res.Failed = []rag.Failure{}
	}
	return c.JSON(ragIngestResponse{Collection: name, IngestResult: res})
}

func (s *Server) ragDeleteDocument(c *fiber.Ctx) error {
	name := c.Params("name")
	if err := rag.ValidateCollectionName(name); err != nil {
		return badField("name", "not a valid collection name")
	}
	id, err := url.PathUnescape(c.Params("+"))
	if err != nil || rag.ValidateDocumentID(id) != nil {
		return badField("id", "invalid document id in path")
	}
	ctx, cancel := s.ragCtx()
	defer cancel()
	if err := s.rag.Store.DeleteChunks(ctx, name, id, 0); err != nil {
		return ragError(err)
	}
	return c.JSON(fiber.Map{"collection": name, "id": id, "deleted": true})
}

// ragSearchRequest is the body of POST /v1/rag/search.
type ragSearchRequest struct {
	Collection string     `json:"collection"`
	Query      string     `json:"query"`
	TopK       int        `json:"top_k"`
	Filter     rag.Filter `json:"filter"`
	MinScore   *float64   `json:"min_score"`
}

// maxQueryBytes bounds a search query (it is embedded whole).
const maxQueryBytes = 32 << 10

func (req *ragSearchRequest) validate() error {
	if err := rag.ValidateCollectionName(req.Collection); err != nil {
		return badField("collection", "want 1-128 of [A-Za-z0-9_.-], starting with a letter or digit")
	}
	if strings.TrimSpace(req.Query) == "" {
		return badField("query", "must not be empty")
	}
	if len(req.Query) > maxQueryBytes {
		return badField("query", "longer than %d bytes", maxQueryBytes)
	}
	return checkRetrieval("", req.TopK, req.Filter, req.MinScore)
}

// checkRetrieval validates the knobs a search and a chat `rag` share;
// prefix names where they sit in the request ("" or "rag.").
func checkRetrieval(prefix string, topK int, f rag.Filter, minScore *float64) error {
	if topK < 0 || topK > rag.MaxTopK {
		return badField(prefix+"top_k", "must be between 1 and %d (0: the default)", rag.MaxTopK)
	}
	if minScore != nil && (math.IsNaN(*minScore) || math.IsInf(*minScore, 0)) {
		return badField(prefix+"min_score", "must be a finite number")
	}
	if err := f.Validate(); err != nil {
		return &Error{Status: fiber.StatusBadRequest, Code: "invalid_filter", Param: prefix + "filter", Err: err,
			Message: prefix + "filter: " + strings.TrimPrefix(err.Error(), rag.ErrInvalidFilter.Error()+": ") +
				` (want {"key": value} or {"key": [values]} with string, number or boolean values)`}
	}
	return nil
}

// ragSearchResponse lists hits, best first.
type ragSearchResponse struct {
	Object     string    `json:"object"`
	Collection string    `json:"collection"`
	Model      string    `json:"model"`
	Data       []rag.Hit `json:"data"`
}

func (s *Server) ragSearch(c *fiber.Ctx) error {
	var req ragSearchRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	ctx, cancel := s.ragCtx()
	defer cancel()
	info, err := s.rag.collection(ctx, req.Collection)
	if err != nil {
		return ragError(err)
	}
	model := s.rag.modelFor(info)
	hits, err := s.rag.retriever.Retrieve(ctx, rag.Request{
		Collection: req.Collection, Model: model, Query: req.Query,
		TopK: req.TopK, MinScore: req.MinScore, Filter: req.Filter,
	})
	if err != nil {
		return ragError(err)
	}
	if hits == nil {
		hits = []rag.Hit{}
	}
	return c.JSON(ragSearchResponse{Object: "list", Collection: req.Collection, Model: model, Data: hits})
}

// ragProbe is the last vector-store check, taken with the Ollama probe.
type ragProbe struct {
	Enabled   bool
	OK        bool
	Error     string
	LatencyMS float64
}

// ragPingTimeout bounds the store check inside a health probe.
const ragPingTimeout = 2 * time.Second

func (h *Health) probeRAG(ctx context.Context) ragProbe {
	if h.ragPing == nil {
		return ragProbe{}
	}
	ctx, cancel := context.WithTimeout(ctx, ragPingTimeout)
	defer cancel()
	start := time.Now()
	err := h.ragPing(ctx)
	p := ragProbe{Enabled: true, OK: err == nil, LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		p.Error = err.Error()
	}
	return p
}

// ragHealth is the "rag" entry of /health's checks.
func (s *Server) ragHealth(p ragProbe) fiber.Map {
	if s.rag == nil {
		return fiber.Map{"enabled": false}
	}
	m := fiber.Map{"enabled": true, "ok": p.OK, "store": s.rag.cfg.Store, "latency_ms": p.LatencyMS, "on_error": s.rag.cfg.OnError}
	if p.Error != "" {
		m["error"] = p.Error
	}
	return m
}
