package server

import (
	"bufio"
	"context"

	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/gofiber/fiber/v2"
	"github.com/ollama/ollama/api"
)

// The lifecycle of one inference request, written once for the four
// endpoints that generate (OpenAI's chat and completions, Ollama's chat and
// generate): admit, the upstream call, then the whole answer or the stream
// (pulled, the first chunk awaited so that a failure before any output keeps
// its own status, commit). Each endpoint's adapter gives an exchange, its
// request, and an answer, how its wire format renders what comes back.
// OpenAI's n > 1 runs one call per choice (openai_choices.go).

// exchange is one endpoint's upstream request, from the endpoint's adapter
// to serve.
type exchange[Q, R any] struct {
	model    string // as the client named it: the model_type label
	endpoint string // "chat", "completion", "generate"
	key      uint64 // the conversation or prompt prefix for admit (pool.ChatKey, pool.GenerateKey); 0: none
	stream   bool
	req      Q

	// call is the models.Service method that runs req, calling fn with each
	// chunk (once, with the whole answer, when not streamed).
	call func(m *models.Service, ctx context.Context, req Q, fn func(*R) error) error
	// usage is a chunk's prompt and completion tokens, counted on the last
	// (done).
	usage func(*R) (prompt, completion int, done bool)
}

// answer is an endpoint's rendering of an exchange's answer. It is apart
// from the exchange so that the escape of the request (to the backend) is
// not the escape of these closures too: one allocation fewer for each.
type answer[R any] struct {
	// whole is the body of the answer not streamed, sent as JSON.
	whole func(*R) any
	// stream writes the stream; asked for once its first chunk came.
	stream func() streamer[R]
}

// chatExchange is an exchange for Ollama's chat call; req.Stream is set
// (the adapter has applied its endpoint's default).
func chatExchange(model string, req *api.ChatRequest) exchange[*api.ChatRequest, api.ChatResponse] {
	return exchange[*api.ChatRequest, api.ChatResponse]{
		model: model, endpoint: "chat", key: pool.ChatKey(req), stream: *req.Stream, req: req,
		call:  (*models.Service).Chat,
		usage: func(r *api.ChatResponse) (int, int, bool) { return r.PromptEvalCount, r.EvalCount, r.Done },
	}
}

// generateExchange is an exchange for Ollama's generate call under
// endpoint; req.Stream is set, as for chatExchange.
func generateExchange(model, endpoint string, req *api.GenerateRequest) exchange[*api.GenerateRequest, api.GenerateResponse] {
	return exchange[*api.GenerateRequest, api.GenerateResponse]{
		model: model, endpoint: endpoint, key: pool.GenerateKey(req), stream: *req.Stream, req: req,
		call:  (*models.Service).Generate,
		usage: func(r *api.GenerateResponse) (int, int, bool) { return r.PromptEvalCount, r.EvalCount, r.Done },
	}
}

// serve runs x from admission to its last byte, the answer rendered by a;
// the error it returns is an *Error for the client.
func (x exchange[Q, R]) serve(s *Server, c *fiber.Ctx, a answer[R]) error {
	k, err := s.admit(c, x.model, x.endpoint, x.key)
	if err != nil {
		return err
	}
	if !x.stream {
		return x.serveWhole(c, k, a.whole)
	}
	call, req := x.call, x.req
	// Waits are yielded to every stream; those without keep-alives
	// (NDJSON) skip them.
	ch := pull(k, k.s.cfg.Server.KeepAlive, func(ctx context.Context, emit func(R) error) error {
		return call(k.s.models, ctx, req, func(r *R) error { return emit(*r) })
	})
	head, err := first(k, ch)
	if err != nil {
		return k.fail(err)
	}
	st := a.stream()
	chunk, usage := st.chunk, x.usage
	st.chunk = func(w *bufio.Writer, r *R) error {
		if prompt, completion, done := usage(r); done {
			k.promptTok, k.completeTok = prompt, completion
		}
		return chunk(w, r)
	}
	return commit(c, k, ch, head, st)
}

// serveWhole answers x not streamed: one upstream call, one JSON body
// (whole's).
func (x exchange[Q, R]) serveWhole(c *fiber.Ctx, k *call, whole func(*R) any) error {
	var resp R
	err := k.timed(func(ctx context.Context) error {
		return x.call(k.s.models, ctx, x.req, func(r *R) error { resp = *r; return nil })
	})
	if err != nil {
		return k.fail(err)
	}
	k.promptTok, k.completeTok, _ = x.usage(&resp)
	body := whole(&resp)
	k.done(fiber.StatusOK)
	return c.JSON(body)
}
