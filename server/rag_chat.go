package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/aurax/aurax/rag"
	"github.com/gofiber/fiber/v2"
	"github.com/ollama/ollama/api"
)

// Retrieval-augmented chat: the `rag` extension field of
// /v1/chat/completions and /api/chat, and the model aliases that turn it on
// by default (rag.aliases). The handlers call augment before admit; it
// retrieves, puts the augmenter's system message into the request, and
// returns the citations the response carries.

// HeaderRAG tells the client how retrieval went: "used", or "skipped" when
// the store failed and rag.on_error is skip.
const HeaderRAG = "X-Aurax-RAG"

// ragOptions is the `rag` extension: {collection, top_k, filter, min_score}.
// On an alias, the fields set here override the alias's defaults.
type ragOptions struct {
	Collection string     `json:"collection"`
	TopK       int        `json:"top_k"`
	Filter     rag.Filter `json:"filter"`
	MinScore   *float64   `json:"min_score"`
}

// augmented is the outcome of a retrieval-augmented request; nil when the
// request did not ask for retrieval or retrieval was skipped.
type augmented struct {
	citations []rag.Citation
}

// cites returns the citations to send (nil: none, omitted).
func (a *augmented) cites() []rag.Citation {
	if a == nil {
		return nil
	}
	return a.citations
}

// ragExtension decodes the `rag` field of a chat body; nil when absent.
func ragExtension(body []byte) (*ragOptions, error) {
	if !bytes.Contains(body, []byte(`"rag"`)) {
		return nil, nil
	}
	var ext struct {
		RAG json.RawMessage `json:"rag"`
	}
	if err := json.Unmarshal(body, &ext); err != nil {
		return nil, nil // the handler's own decode already accepted the body
	}
	raw := bytes.TrimSpace(ext.RAG)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var o ragOptions
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, badField("rag", `want {"collection", "top_k", "filter", "min_score"}: %v`, err)
	}
	return &o, nil
}

// augment runs retrieval for a chat request that asks for it (a `rag`
// field, or a model that is a rag alias): req.Model becomes the alias's
// chat model, the augmenter's system message goes in after the request's
// own system messages, and the citations are returned. Bad `rag` input is
// a 4xx; a store or embedding failure is a 503 under rag.on_error=fail, and
// under skip the request goes on without context (header X-Aurax-RAG:
// skipped, a warning, aurax_rag_skipped_total{reason}).
func (s *Server) augment(c *fiber.Ctx, req *api.ChatRequest) (*augmented, error) {
	opts, err := ragExtension(c.Body())
	if err != nil {
		return nil, err
	}
	var alias ragAlias
	aliased := false
	if s.rag != nil {
		alias, aliased = s.rag.aliases[req.Model]
	}
	if opts == nil && !aliased {
		return nil, nil
	}
	if s.rag == nil {
		return nil, badField("rag", "retrieval is not enabled on this server")
	}
	if opts == nil {
		opts = &ragOptions{}
	}
	if aliased {
		req.Model = alias.model
		if opts.Collection == "" {
			opts.Collection = alias.collection
		}
	}
	if opts.Collection == "" {
		return nil, badField("rag.collection", "is required")
	}
	if rag.ValidateCollectionName(opts.Collection) != nil {
		return nil, badField("rag.collection", "want 1-128 of [A-Za-z0-9_.-], starting with a letter or digit")
	}
	if err := checkRetrieval("rag.", opts.TopK, opts.Filter, opts.MinScore); err != nil {
		return nil, err
	}
	query := lastUserText(req.Messages)
	if query == "" {
		return nil, badField("messages", "retrieval needs a user message with text")
	}

	timeout := s.rag.cfg.Timeout
	if timeout <= 0 {
		timeout = s.cfg.Ollama.RequestTimeout
	}
	ctx, cancel := context.WithTimeout(s.reqCtx, timeout)
	defer cancel()
	hits, err := s.retrieve(ctx, opts, query)
	if err != nil {
		if rag.IsInputError(err) {
			he := ragError(err)
			if he.Param != "" {
				he.Param = "rag." + he.Param
			}
			return nil, he
		}
		reason := rag.SkipReason(err)
		if s.rag.cfg.OnError == rag.OnErrorFail {
			return nil, &Error{Status: fiber.StatusServiceUnavailable, Code: "retrieval_failed", RetryAfter: time.Second, Err: err,
				Message: "retrieval from collection " + opts.Collection + " failed (" + reason + "); retry later"}
		}
		s.rag.Metrics.Skip(reason)
		s.log.Warn("rag skipped: answering without context", "collection", opts.Collection, "reason", reason, "err", err, "request_id", requestID(c))
		c.Set(HeaderRAG, "skipped")
		return nil, nil
	}
	aug, err := s.rag.augmenter.Augment(query, hits)
	if err != nil {
		return nil, &Error{Status: fiber.StatusInternalServerError, Message: "the rag template failed", Err: err}
	}
	if aug.System != "" {
		req.Messages = insertSystem(req.Messages, aug.System)
	}
	c.Set(HeaderRAG, "used")
	return &augmented{citations: aug.Citations}, nil
}

// retrieve embeds the query with the collection's model and searches.
func (s *Server) retrieve(ctx context.Context, o *ragOptions, query string) ([]rag.Hit, error) {
	info, err := s.rag.collection(ctx, o.Collection)
	if err != nil {
		return nil, err
	}
	return s.rag.retriever.Retrieve(ctx, rag.Request{
		Collection: o.Collection, Model: s.rag.modelFor(info), Query: query,
		TopK: o.TopK, MinScore: o.MinScore, Filter: o.Filter,
	})
}

// lastUserText is the question: the last user message's text.
func lastUserText(msgs []api.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return strings.TrimSpace(msgs[i].Content)
		}
	}
	return ""
}

// insertSystem puts the retrieval system message after the leading system
// messages, so that the client's own instructions stay first.
func insertSystem(msgs []api.Message, system string) []api.Message {
	i := 0
	for i < len(msgs) && msgs[i].Role == "system" {
		i++
	}
	out := make([]api.Message, 0, len(msgs)+1)
	out = append(out, msgs[:i]...)
	out = append(out, api.Message{Role: "system", Content: system})
	return append(out, msgs[i:]...)
}

// citedChatResponse is an /api/chat response with citations.
type citedChatResponse struct {
	*api.ChatResponse
	Citations []rag.Citation `json:"citations,omitzero"`
}

// ollamaChatBody is the non-streamed /api/chat body: resp, with citations
// when retrieval was used.
func (a *augmented) ollamaChatBody(resp *api.ChatResponse) any {
	if a == nil {
		return resp
	}
	return citedChatResponse{ChatResponse: resp, Citations: a.citations}
}

// ollamaStream is ndjson(fix) whose first chunk carries the citations.
func (a *augmented) ollamaStream(fix func(*api.ChatResponse)) streamer[api.ChatResponse] {
	st := ndjson(fix)
	if a == nil {
		return st
	}
	cited := false
	st.chunk = func(w *bufio.Writer, v *api.ChatResponse) error {
		fix(v)
		if !cited {
			cited = true
			return json.NewEncoder(w).Encode(citedChatResponse{ChatResponse: v, Citations: a.citations})
		}
		return json.NewEncoder(w).Encode(v)
	}
	return st
}
