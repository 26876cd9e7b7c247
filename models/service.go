package models

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
)

// Backend runs models. Implementations honour ctx: on cancel they stop the
// upstream call and return ctx.Err(). Streaming calls invoke fn once per
// chunk, the last with Done set; an error returned by fn stops the stream and
// is returned as is. Failures are ErrUnavailable, ErrTimeout,
// *ModelNotFoundError or *UpstreamError.
type Backend interface {
	Chat(ctx context.Context, req *api.ChatRequest, fn func(*api.ChatResponse) error) error
	Generate(ctx context.Context, req *api.GenerateRequest, fn func(*api.GenerateResponse) error) error
	Embed(ctx context.Context, req *api.EmbedRequest) (*api.EmbedResponse, error)
	List(ctx context.Context) (*api.ListResponse, error)
	Running(ctx context.Context) (*api.ProcessResponse, error)
	Show(ctx context.Context, req *api.ShowRequest) (*api.ShowResponse, error)
	Version(ctx context.Context) (string, error)
}

// Config names the default models and the aliases.
type Config struct {
	DefaultChat  string
	DefaultEmbed string
	Aliases      map[string]string // alias → backend model name
}

// Service resolves model names (aliases, defaults) and runs requests on the
// Backend. It is safe for concurrent use.
type Service struct {
	backend Backend
	cfg     Config
}

// NewService returns a Service over b.
func NewService(b Backend, cfg Config) *Service {
	if cfg.Aliases == nil {
		cfg.Aliases = map[string]string{}
	}
	return &Service{backend: b, cfg: cfg}
}

// Backend returns the backend the service runs on.
func (s *Service) Backend() Backend { return s.backend }

// DefaultChat is the chat model used when a request names none.
func (s *Service) DefaultChat() string { return s.cfg.DefaultChat }

// DefaultEmbed is the embedding model used when a request names none.
func (s *Service) DefaultEmbed() string { return s.cfg.DefaultEmbed }

// Resolve maps a requested name to the backend's model: an alias to its
// target, an empty name to the default chat (or embedding) model.
func (s *Service) Resolve(name string, embedding bool) string {
	if name == "" {
		if embedding && s.cfg.DefaultEmbed != "" {
			return s.cfg.DefaultEmbed
		}
		return s.cfg.DefaultChat
	}
	if target, ok := s.cfg.Aliases[name]; ok {
		return target
	}
	return name
}

// Chat runs req on the resolved model; req.Model is rewritten.
func (s *Service) Chat(ctx context.Context, req *api.ChatRequest, fn func(*api.ChatResponse) error) error {
	req.Model = s.Resolve(req.Model, false)
	return named(s.backend.Chat(ctx, req, fn), req.Model)
}

// Generate runs req on the resolved model; req.Model is rewritten.
func (s *Service) Generate(ctx context.Context, req *api.GenerateRequest, fn func(*api.GenerateResponse) error) error {
	req.Model = s.Resolve(req.Model, false)
	return named(s.backend.Generate(ctx, req, fn), req.Model)
}

// Embed runs req on the resolved embedding model; req.Model is rewritten.
func (s *Service) Embed(ctx context.Context, req *api.EmbedRequest) (*api.EmbedResponse, error) {
	req.Model = s.Resolve(req.Model, true)
	resp, err := s.backend.Embed(ctx, req)
	return resp, named(err, req.Model)
}

// named fills in the model of a *ModelNotFoundError that lacks it.
func named(err error, model string) error {
	if err == nil { // errors.As's target escapes: allocate it only for an error
		return nil
	}
	var nf *ModelNotFoundError
	if errors.As(err, &nf) && nf.Model == "" {
		nf.Model = model
	}
	return err
}

// Show describes the resolved model (Ollama's /api/show); req.Model is
// rewritten.
func (s *Service) Show(ctx context.Context, req *api.ShowRequest) (*api.ShowResponse, error) {
	req.Model = s.Resolve(req.Model, false)
	resp, err := s.backend.Show(ctx, req)
	return resp, named(err, req.Model)
}

// EmbedTexts embeds texts with model (resolved), one vector per text.
func (s *Service) EmbedTexts(ctx context.Context, model string, texts []string) ([][]float32, error) {
	resp, err := s.Embed(ctx, &api.EmbedRequest{Model: model, Input: texts})
	if err != nil {
		return nil, err
	}
	if len(resp.Embeddings) != len(texts) {
		return nil, &UpstreamError{Message: fmt.Sprintf("embed returned %d vectors for %d inputs", len(resp.Embeddings), len(texts))}
	}
	return resp.Embeddings, nil
}

// Model is one model the service can run: a backend model or an alias.
type Model struct {
	Name       string    // the name clients use
	Target     string    // the backend model (== Name unless an alias)
	ModifiedAt time.Time // zero when unknown
	Size       int64
	Digest     string
	Details    api.ModelDetails
}

// Models lists the backend's models plus every alias whose target exists,
// sorted by name.
func (s *Service) Models(ctx context.Context) ([]Model, error) {
	list, err := s.backend.List(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]api.ListModelResponse{}
	var out []Model
	for _, m := range list.Models {
		byName[m.Name] = m
		byName[strings.TrimSuffix(m.Name, ":latest")] = m
		out = append(out, Model{Name: m.Name, Target: m.Name, ModifiedAt: m.ModifiedAt, Size: m.Size, Digest: m.Digest, Details: m.Details})
	}
	for alias, target := range s.cfg.Aliases {
		if _, clash := byName[alias]; clash {
			continue
		}
		if m, ok := byName[target]; ok {
			out = append(out, Model{Name: alias, Target: m.Name, ModifiedAt: m.ModifiedAt, Size: m.Size, Digest: m.Digest, Details: m.Details})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Find returns the model clients call name, or *ModelNotFoundError.
func (s *Service) Find(ctx context.Context, name string) (Model, error) {
	all, err := s.Models(ctx)
	if err != nil {
		return Model{}, err
	}
	if m, ok := lookup(all, name); ok {
		return m, nil
	}
	return Model{}, &ModelNotFoundError{Model: name}
}

// Has reports, for each name, whether the backend has the model it
// resolves to, from one listing of the backend's models.
func (s *Service) Has(ctx context.Context, names ...string) ([]bool, error) {
	all, err := s.Models(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(names))
	for i, n := range names {
		_, out[i] = lookup(all, s.Resolve(n, false))
	}
	return out, nil
}

// lookup finds name in all, with or without the ":latest" tag.
func lookup(all []Model, name string) (Model, bool) {
	for _, m := range all {
		if m.Name == name || strings.TrimSuffix(m.Name, ":latest") == name {
			return m, true
		}
	}
	return Model{}, false
}
