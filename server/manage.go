package server

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/pool"
	"github.com/gofiber/fiber/v2"
	"github.com/ollama/ollama/api"
)

// Ollama's model management over the pool: /api/pull, /api/create and
// /api/push stream NDJSON progress (stream defaults to true; stream false
// answers once, {"status":"success"} or the error with its status);
// /api/delete and /api/copy answer an empty 200. A change applies to every
// engine of the pool that is not draining (see streamOp for the order), a
// failure names the engines it failed on, and the pool's view of every
// engine's models is refreshed before the answer ends, so that routing
// follows at once. Push runs on one engine (every engine has the same
// model; pushing it N times would upload it N times). Model names are the
// engines' own: aliases are not resolved here. The routes need the admin
// key when any key is configured (adminWrite).

func (s *Server) manageRoutes(ol fiber.Router) {
	w := s.auth.adminWrite
	ol.Post("/pull", w, s.ollamaPull)
	ol.Post("/push", w, s.ollamaPush)
	ol.Post("/create", w, s.ollamaCreate)
	ol.Delete("/delete", w, s.ollamaDelete)
	ol.Post("/copy", w, s.ollamaCopy)
	ol.Head("/blobs/:digest", w, s.ollamaBlobHead)
	ol.Post("/blobs/:digest", w, s.ollamaBlobUpload)
}

// manageCtx bounds one management request: no time limit of its own (a
// pull lasts as long as its download), cut by the drain timeout.
func (s *Server) manageCtx() (context.Context, context.CancelFunc) {
	return context.WithCancel(s.reqCtx)
}

// managed is the pool's engines for a change, or 503 when it has none.
func (s *Server) managed() ([]pool.Target, error) {
	es := s.pool.Managed()
	if len(es) == 0 {
		return nil, &Error{Status: fiber.StatusServiceUnavailable, RetryAfter: 5 * time.Second, Message: "no model engine is available (none in the pool)"}
	}
	return es, nil
}

// refresh updates the pool's view of every engine's models after a change.
func (s *Server) refresh() {
	ctx, cancel := context.WithTimeout(s.reqCtx, 10*time.Second)
	defer cancel()
	if err := s.pool.RefreshModels(ctx); err != nil {
		s.log.Warn("model list refresh failed", "err", err)
	}
}

// streamedBody is the request body with "stream": true, the other fields
// as the client sent them (the engines stream their progress to AURAX
// whatever the client asked), and whether the client wants a stream.
func streamedBody(body []byte) ([]byte, bool, error) {
	var m map[string]json.RawMessage
	if err := decodeJSON(body, &m); err != nil {
		return nil, false, err
	}
	if m == nil {
		return nil, false, newError(fiber.StatusBadRequest, "request body: expected a JSON object, got null")
	}
	var stream *bool
	if raw, ok := m["stream"]; ok {
		if err := json.Unmarshal(raw, &stream); err != nil {
			return nil, false, badField("stream", "expected a boolean")
		}
	}
	m["stream"] = json.RawMessage("true")
	out, _ := json.Marshal(m)
	return out, streamDefault(stream), nil
}

// modelName is a management body's model ("model", or the older "name").
func modelName(body []byte) (string, error) {
	var req struct {
		Model string `json:"model"`
		Name  string `json:"name"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return "", err
	}
	name := cmp.Or(req.Model, req.Name)
	if name == "" {
		return "", newError(fiber.StatusBadRequest, "invalid model name") // Ollama's words
	}
	return name, nil
}

func (s *Server) ollamaPull(c *fiber.Ctx) error {
	return s.progressOp(c, "/api/pull", false)
}

func (s *Server) ollamaCreate(c *fiber.Ctx) error {
	return s.progressOp(c, "/api/create", false)
}

func (s *Server) ollamaPush(c *fiber.Ctx) error {
	return s.progressOp(c, "/api/push", true)
}

// progressOp runs a pull, create or push (one: on one engine) and answers
// with the merged progress.
func (s *Server) progressOp(c *fiber.Ctx, path string, one bool) error {
	name, err := modelName(c.Body())
	if err != nil {
		return err
	}
	body, stream, err := streamedBody(c.Body())
	if err != nil {
		return err
	}
	engines, err := s.managed()
	if err != nil {
		return err
	}
	if one {
		engines = []pool.Target{s.engineWith(engines, name)}
	}
	op := &progressRun{s: s, path: path, name: name, one: one, engines: engines,
		note: &accessNote{model: name}, merge: newProgressMerge(engines), errs: make([]error, len(engines))}
	s.noteFor(c, op.note)
	ctx, cancel := s.manageCtx()
	op.cancel = cancel
	stop := s.watch.watch(c.Context().Conn(), cancel) // until the stream writer owns the call
	op.events = s.streamOp(ctx, engines, path, body)
	head, started := op.head()
	if !stream || !started {
		for ev := range op.events {
			if ev.end {
				op.errs[ev.i] = ev.err
			}
		}
		stop()
		cancel()
		if he := op.outcome(); he != nil {
			return he
		}
		return c.JSON(api.ProgressResponse{Status: "success"})
	}
	stop() // from here a failed write tells the client left
	c.Set(fiber.HeaderContentType, "application/x-ndjson")
	c.Set("X-Accel-Buffering", "no")
	s.noteStream(c, op.note)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) { op.stream(w, head) })
	return nil
}

// progressRun is one pull, create or push over its engines: their merged
// progress events, and each engine's end.
type progressRun struct {
	s       *Server
	path    string
	name    string
	one     bool
	engines []pool.Target
	note    *accessNote
	cancel  context.CancelFunc
	events  <-chan opEvent
	merge   *progressMerge
	errs    []error
}

// head waits for the first merged line. Until then an engine's failure can
// still be the answer's status (as Ollama answers a bad name 400 before it
// streams); false when every engine ended first.
func (op *progressRun) head() (progressLine, bool) {
	for ev := range op.events {
		if ev.end {
			op.errs[ev.i] = ev.err
			continue
		}
		if p, ok := op.merge.add(ev.i, ev.line); ok {
			return p, true
		}
	}
	return progressLine{}, false
}

// outcome refreshes the pool's view of the engines' models after a change
// on all of them and returns the error for the client, if any.
func (op *progressRun) outcome() *Error {
	if !op.one {
		op.s.refresh()
	}
	return outcome(op.engines, op.errs)
}

// stream writes head and the rest of the merged progress, then success or
// the error as Ollama's last line.
func (op *progressRun) stream(w *bufio.Writer, head progressLine) {
	status := fiber.StatusOK
	flush := func() error {
		op.note.bytes += int64(w.Buffered())
		err := w.Flush()
		if err != nil {
			status = metrics.StatusClientClosed
		}
		return err
	}
	defer func() {
		op.cancel()
		for range op.events {
		}
		op.s.logStreamed(op.note, status)
	}()
	enc := json.NewEncoder(w)
	if enc.Encode(&head) != nil || flush() != nil {
		return
	}
	for ev := range op.events {
		if ev.end {
			op.errs[ev.i] = ev.err
			continue
		}
		if p, ok := op.merge.add(ev.i, ev.line); ok {
			if enc.Encode(&p) != nil || flush() != nil {
				return // the client left: cancel the rest
			}
		}
	}
	if he := op.outcome(); he != nil {
		op.s.log.Warn("model change failed", "path", op.path, "model", op.name, "err", he.Err)
		status = he.Status
		_ = enc.Encode(struct {
			Error string `json:"error"`
		}{he.Message})
	} else {
		_ = enc.Encode(api.ProgressResponse{Status: "success"})
	}
	_ = flush()
}

// engineWith is the first engine that lists model, else the first.
func (s *Server) engineWith(engines []pool.Target, model string) pool.Target {
	want := model
	if !hasTag(want) {
		want += ":latest"
	}
	for _, st := range s.pool.Engines() {
		for _, m := range st.Models {
			if m == want {
				for _, t := range engines {
					if t.URL == st.URL {
						return t
					}
				}
			}
		}
	}
	return engines[0]
}

// hasTag reports whether a model name has a tag (name:tag, the tag after
// the last '/').
func hasTag(name string) bool {
	for i := len(name) - 1; i >= 0 && name[i] != '/'; i-- {
		if name[i] == ':' {
			return true
		}
	}
	return false
}

func (s *Server) ollamaDelete(c *fiber.Ctx) error {
	name, err := modelName(c.Body())
	if err != nil {
		return err
	}
	body, _ := json.Marshal(api.DeleteRequest{Model: name})
	return s.simpleOp(c, http.MethodDelete, "/api/delete", name, body)
}

func (s *Server) ollamaCopy(c *fiber.Ctx) error {
	var req api.CopyRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if req.Source == "" {
		return newError(fiber.StatusBadRequest, "source %q is invalid", req.Source)
	}
	if req.Destination == "" {
		return newError(fiber.StatusBadRequest, "destination %q is invalid", req.Destination)
	}
	body, _ := json.Marshal(req)
	return s.simpleOp(c, http.MethodPost, "/api/copy", req.Source, body)
}

// simpleOp runs a delete or copy on each engine, one after the other (two
// engines sharing a models directory must not remove the same files at
// once). An engine that answers 404 never had the model: fine when another
// did; 404 from every engine is the answer.
func (s *Server) simpleOp(c *fiber.Ctx, method, path, model string, body []byte) error {
	engines, err := s.managed()
	if err != nil {
		return err
	}
	s.noteFor(c, &accessNote{model: model})
	ctx, cancel := s.manageCtx()
	defer cancel()
	stop := s.watch.watch(c.Context().Conn(), cancel)
	errs := make([]error, len(engines))
	missing := 0
	for i, t := range engines {
		resp, err := s.engineDo(ctx, t, method, path, bytes.NewReader(body), int64(len(body)))
		if err == nil {
			resp.Body.Close()
			continue
		}
		var ee *engineError
		if errors.As(err, &ee) && ee.status == fiber.StatusNotFound {
			missing++
		}
		errs[i] = err
	}
	stop()
	if missing < len(engines) {
		// Engines that lack the model count as done.
		for i, err := range errs {
			var ee *engineError
			if errors.As(err, &ee) && ee.status == fiber.StatusNotFound {
				errs[i] = nil
			}
		}
	}
	s.refresh()
	if he := outcome(engines, errs); he != nil {
		if missing == len(engines) {
			he.Message = errs[0].(*engineError).msg // Ollama's own "model 'x' not found"
		}
		return he
	}
	return c.SendStatus(fiber.StatusOK)
}
