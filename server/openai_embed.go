// OpenAI's /v1/embeddings and /v1/models over the pool.

package server

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/ollama/ollama/api"
)

type oaEmbeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     int             `json:"dimensions"`
}

type oaEmbedding struct {
	Object    string `json:"object"`
	Embedding any    `json:"embedding"`
	Index     int    `json:"index"`
}

func (s *Server) openAIEmbeddings(c *fiber.Ctx) error {
	var req oaEmbeddingRequest
	if err := decodeHot(c, &req); err != nil {
		return err
	}
	var input stringList
	if len(req.Input) == 0 {
		return badField("input", "is required")
	}
	if err := json.Unmarshal(req.Input, &input); err != nil {
		return badField("input", "must be a string or an array of strings (token arrays are not supported)")
	}
	if len(input) == 0 {
		return badField("input", "must not be empty")
	}
	for i, t := range input {
		if t == "" {
			return badField(fmt.Sprintf("input[%d]", i), "must not be empty")
		}
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		return badField("encoding_format", "%q is not float or base64", req.EncodingFormat)
	}
	if req.Dimensions < 0 {
		return badField("dimensions", "must be positive")
	}
	model := req.Model
	if model == "" {
		model = s.models.DefaultEmbed()
	}
	k, err := s.admit(c, model, "embedding", 0)
	if err != nil {
		return err
	}
	resp, err := k.embed(&api.EmbedRequest{Model: req.Model, Input: []string(input), Dimensions: req.Dimensions})
	if err != nil {
		return k.fail(err)
	}
	data := make([]oaEmbedding, len(resp.Embeddings))
	for i, v := range resp.Embeddings {
		data[i] = oaEmbedding{Object: "embedding", Index: i, Embedding: v}
		if req.EncodingFormat == "base64" {
			data[i].Embedding = float32Base64(v)
		}
	}
	k.done(fiber.StatusOK)
	return c.JSON(fiber.Map{"object": "list", "data": data, "model": model,
		"usage": fiber.Map{"prompt_tokens": resp.PromptEvalCount, "total_tokens": resp.PromptEvalCount}})
}

// float32Base64 is OpenAI's base64 encoding: little-endian float32s.
func float32Base64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}

type oaModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) openAIModels(c *fiber.Ctx) error {
	list, err := s.models.Models(c.UserContext())
	if err != nil {
		return fromUpstream(err)
	}
	data := make([]oaModel, 0, len(list))
	for _, m := range list {
		data = append(data, oaModel{ID: m.Name, Object: "model", Created: m.ModifiedAt.Unix(), OwnedBy: owner(m.Name)})
	}
	return c.JSON(fiber.Map{"object": "list", "data": data})
}

func (s *Server) openAIModel(c *fiber.Ctx) error {
	name, err := url.PathUnescape(c.Params("+"))
	if err != nil {
		return badField("model", "invalid model id in path")
	}
	m, err := s.models.Find(c.UserContext(), name)
	if err != nil {
		return fromUpstream(err)
	}
	return c.JSON(oaModel{ID: m.Name, Object: "model", Created: m.ModifiedAt.Unix(), OwnedBy: owner(m.Name)})
}

// owner is the namespace of an Ollama model name ("library" when none).
func owner(name string) string {
	if i := strings.LastIndex(name, "/"); i > 0 {
		return name[:i]
	}
	return "library"
}
