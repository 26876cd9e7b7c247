package server

import (
	"fmt"
	"math"
	"net/url"
	"strings"

	"github.com/aurax/aurax/rag"
	"github.com/gofiber/fiber/v2"
)

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
