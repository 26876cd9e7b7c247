package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/aurax/aurax/internal/jsonx"
	"github.com/gofiber/fiber/v2"
	"github.com/ollama/ollama/api"
)

// The Ollama-compatible API: requests are Ollama's own types, passed
// through after the model name is resolved; responses name the model the
// client asked for. stream defaults to true, as in Ollama.

func streamDefault(p *bool) bool { return p == nil || *p }

func (s *Server) ollamaChat(c *fiber.Ctx) error {
	var req api.ChatRequest
	if err := decodeChat(c, &req); err != nil {
		return err
	}
	if req.Think != nil && !req.Think.IsValid() {
		return badField("think", "must be true, false, \"high\", \"medium\" or \"low\"")
	}
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "user", "assistant", "tool":
		default:
			return badField("messages["+strconv.Itoa(i)+"].role", "%q is not system, user, assistant or tool", m.Role)
		}
	}
	model := req.Model
	if model == "" {
		return badField("model", "is required")
	}
	rg, err := s.augment(c, &req)
	if err != nil {
		return err
	}
	stream := streamDefault(req.Stream)
	req.Stream = &stream
	return chatExchange(model, &req).serve(s, c, answer[api.ChatResponse]{
		whole: func(r *api.ChatResponse) any {
			r.Model = model
			return rg.ollamaChatBody(r)
		},
		stream: func() streamer[api.ChatResponse] {
			return rg.ollamaStream(func(r *api.ChatResponse) { r.Model = model })
		},
	})
}

func (s *Server) ollamaGenerate(c *fiber.Ctx) error {
	var req api.GenerateRequest
	if err := decodeHot(c, &req); err != nil {
		return err
	}
	if req.Think != nil && !req.Think.IsValid() {
		return badField("think", "must be true, false, \"high\", \"medium\" or \"low\"")
	}
	model := req.Model
	if model == "" {
		return badField("model", "is required")
	}
	stream := streamDefault(req.Stream)
	req.Stream = &stream
	return generateExchange(model, "generate", &req).serve(s, c, answer[api.GenerateResponse]{
		whole: func(r *api.GenerateResponse) any {
			r.Model = model
			return r
		},
		stream: func() streamer[api.GenerateResponse] {
			return ndjson(func(r *api.GenerateResponse) { r.Model = model })
		},
	})
}

// ndjson streams Ollama chunks as NDJSON, each passed through fix first; a
// failure mid-stream ends with a final {"error": "..."} line.
func ndjson[T any](fix func(*T)) streamer[T] {
	return streamer[T]{
		contentType: "application/x-ndjson",
		chunk: func(w *bufio.Writer, v *T) error {
			fix(v)
			return jsonx.Encode(w, v)
		},
		fail: func(w *bufio.Writer, he *Error) {
			_ = json.NewEncoder(w).Encode(struct {
				Error string `json:"error"`
			}{he.Message})
		},
	}
}

func (s *Server) ollamaEmbed(c *fiber.Ctx) error {
	var req api.EmbedRequest
	if err := decodeHot(c, &req); err != nil {
		return err
	}
	if err := checkEmbedInput(req.Input); err != nil {
		return err
	}
	if req.Model == "" {
		return badField("model", "is required")
	}
	model := req.Model
	k, err := s.admit(c, model, "embedding", 0)
	if err != nil {
		return err
	}
	resp, err := k.embed(&req)
	if err != nil {
		return k.fail(err)
	}
	resp.Model = model
	k.done(fiber.StatusOK)
	return c.JSON(resp)
}

// checkEmbedInput accepts what Ollama's /api/embed accepts: a string or an
// array of strings.
func checkEmbedInput(in any) error {
	switch v := in.(type) {
	case string:
		return nil
	case []any:
		for i, x := range v {
			if _, ok := x.(string); !ok {
				return badField("input["+strconv.Itoa(i)+"]", "must be a string")
			}
		}
		return nil
	case nil:
		return badField("input", "is required")
	}
	return badField("input", "must be a string or an array of strings")
}

// ollamaEmbeddings is Ollama's older single-prompt embedding endpoint; an
// empty prompt only loads the model (Ollama v0.17.4 EmbeddingsHandler).
func (s *Server) ollamaEmbeddings(c *fiber.Ctx) error {
	var req api.EmbeddingRequest
	if err := decodeHot(c, &req); err != nil {
		return err
	}
	if req.Model == "" {
		return badField("model", "is required")
	}
	k, err := s.admit(c, req.Model, "embedding", 0)
	if err != nil {
		return err
	}
	resp, err := k.embed(&api.EmbedRequest{Model: req.Model, Input: req.Prompt, Options: req.Options, KeepAlive: req.KeepAlive})
	if err != nil {
		return k.fail(err)
	}
	if req.Prompt == "" {
		// As Ollama: an empty prompt loads the model and answers no vector.
		k.done(fiber.StatusOK)
		return c.JSON(api.EmbeddingResponse{Embedding: []float64{}})
	}
	if len(resp.Embeddings) != 1 {
		return k.fail(errors.New("embed returned no vector"))
	}
	out := make([]float64, len(resp.Embeddings[0]))
	for i, f := range resp.Embeddings[0] {
		out[i] = float64(f)
	}
	k.done(fiber.StatusOK)
	return c.JSON(api.EmbeddingResponse{Embedding: out})
}

func (s *Server) ollamaTags(c *fiber.Ctx) error {
	list, err := s.models.Models(c.UserContext())
	if err != nil {
		return fromUpstream(err)
	}
	out := api.ListResponse{Models: []api.ListModelResponse{}}
	for _, m := range list {
		out.Models = append(out.Models, api.ListModelResponse{Name: m.Name, Model: m.Name, ModifiedAt: m.ModifiedAt, Size: m.Size, Digest: m.Digest, Details: m.Details})
	}
	return c.JSON(out)
}

// ollamaPS lists the models loaded on every engine, each entry with the
// engine it is loaded on (a field Ollama's clients ignore).
func (s *Server) ollamaPS(c *fiber.Ctx) error {
	ms, err := s.pool.RunningByEngine(c.UserContext())
	if err != nil {
		return fromUpstream(err)
	}
	return c.JSON(fiber.Map{"models": ms})
}

// ollamaShow describes a model (Open WebUI asks for it); aliases resolve.
func (s *Server) ollamaShow(c *fiber.Ctx) error {
	var req struct {
		api.ShowRequest
		Name string `json:"name"` // older clients send it; Ollama still reads it (api.ShowRequest.Name is deprecated)
	}
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if req.Model == "" {
		req.Model = req.Name
	}
	if req.Model == "" {
		return badField("model", "is required")
	}
	resp, err := s.models.Show(c.UserContext(), &req.ShowRequest)
	if err != nil {
		return fromUpstream(err)
	}
	return c.JSON(resp)
}

func (s *Server) ollamaVersion(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
	defer cancel()
	v, err := s.models.Backend().Version(ctx)
	if err != nil {
		return fromUpstream(err)
	}
	return c.JSON(fiber.Map{"version": v})
}

// ollamaRoot answers GET|HEAD / as Ollama does, so clients that probe it
// find a server.
func (s *Server) ollamaRoot(c *fiber.Ctx) error {
	return c.SendString("Ollama is running")
}
