package server

import (
	"errors"
	"fmt"

	"github.com/aurax/aurax/rag"
	"github.com/gofiber/fiber/v2"
)

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
		if conflict, has := conflictWith(info, req, dist); conflict != "" {
			return &Error{Status: fiber.StatusConflict, Code: "collection_exists", Param: conflict,
				Message: fmt.Sprintf("collection %q exists with %s %v", info.Name, conflict, has)}
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

// conflictWith names the first requested setting that differs from the
// existing collection's, with the value the collection has ("" when
// compatible).
func conflictWith(info rag.CollectionInfo, req ragCollectionRequest, d rag.Distance) (string, any) {
	switch {
	case req.Dimension != 0 && req.Dimension != info.Dimension:
		return "dimension", info.Dimension
	case d != info.Distance:
		return "distance", info.Distance
	case req.EmbedModel != "" && info.EmbedModel != "" && req.EmbedModel != info.EmbedModel:
		return "embed_model", info.EmbedModel
	}
	return "", nil
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
