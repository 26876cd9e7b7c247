package server

import (
	"bufio"
	"context"
	"maps"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/aurax/aurax/metrics"
	"github.com/gofiber/fiber/v2"
	"github.com/ollama/ollama/api"
)

// OpenAI's n > 1: several choices for one chat request. Each choice is its
// own model call: its own admission slot, engine, metrics and, when the
// request has a seed, seed + index (the same seed would give the same
// answer n times). The choices run at once and never wait for each other's
// slots (no request holds slots while it waits for more), so requests
// with n > 1 cannot deadlock the queue. Usage: the prompt counted once, as
// OpenAI does, the completion tokens summed.

// fanItem is one chunk of choice i, or its end (done, with err when it
// failed).
type fanItem struct {
	i    int
	r    api.ChatResponse
	done bool
	err  error
}

// chatFan runs the n choices of one request.
type chatFan struct {
	s      *Server
	n      int
	ctx    context.Context // cancelled to stop every choice
	stop   context.CancelFunc
	out    chan fanItem // closed once every choice has ended
	calls  []*call      // the choice's call once admitted; guarded by mu
	mu     sync.Mutex
	note   accessNote
	stream bool
}

// choiceRequest is req for choice i: its own copy (the model service
// rewrites the model name), seed + i when a seed is set.
func choiceRequest(req *api.ChatRequest, i int, stream bool) *api.ChatRequest {
	r := *req
	r.Stream = &stream
	if seed, ok := req.Options["seed"].(int); ok {
		r.Options = maps.Clone(req.Options)
		r.Options["seed"] = seed + i
	}
	return &r
}

func (s *Server) startFan(c *fiber.Ctx, req *api.ChatRequest, model string, n int, stream bool) *chatFan {
	f := &chatFan{s: s, n: n, out: make(chan fanItem, 16*n), calls: make([]*call, n), stream: stream}
	f.ctx, f.stop = context.WithCancel(s.reqCtx)
	f.note.model = model
	conn := c.Context().Conn()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f.run(i, conn, model, choiceRequest(req, i, stream)) })
	}
	go func() { wg.Wait(); close(f.out) }()
	return f
}

// run is choice i from admission to its end.
func (f *chatFan) run(i int, conn net.Conn, model string, req *api.ChatRequest) {
	k, err := f.s.admitFor(f.ctx, conn, model, "chat", 0)
	if err != nil {
		f.send(fanItem{i: i, done: true, err: err})
		return
	}
	f.mu.Lock()
	f.calls[i] = k
	f.mu.Unlock()
	t := time.Now()
	err = f.s.models.Chat(k.ctx, req, func(r *api.ChatResponse) error {
		if k.ttft == 0 {
			k.ttft = time.Since(k.start)
		}
		if r.Done {
			k.promptTok, k.completeTok = r.PromptEvalCount, r.EvalCount
		}
		if !f.send(fanItem{i: i, r: *r}) {
			return k.ctx.Err()
		}
		return nil
	})
	k.upstream = time.Since(t)
	status := fiber.StatusOK
	if err != nil {
		he := fromUpstream(err)
		status, err = he.Status, he
	}
	k.done(status)
	f.send(fanItem{i: i, done: true, err: err})
}

// send hands it to the consumer; false when the fan was stopped.
func (f *chatFan) send(it fanItem) bool {
	select {
	case f.out <- it:
		return true
	case <-f.ctx.Done():
		return false
	}
}

// drain stops every choice and waits for them to end.
func (f *chatFan) drain() {
	f.stop()
	for range f.out {
	}
}

// engines is the engines that served the choices, for the access log.
func (f *chatFan) engines() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for _, k := range f.calls {
		if k != nil && k.note.engine != "" {
			names = append(names, k.note.engine)
		}
	}
	return strings.Join(names, ",")
}

// failure picks the error to answer with: the first that is not the
// cancellation of a choice stopped because another failed.
func failure(errs []error) error {
	var firstErr error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if firstErr == nil {
			firstErr = err
		}
		if fromUpstream(err).Status != metrics.StatusClientClosed {
			return err
		}
	}
	return firstErr
}

// openAIChatN answers a chat request with n > 1 choices.
func (s *Server) openAIChatN(c *fiber.Ctx, req *oaChatRequest, oreq *api.ChatRequest, rg *augmented, model string, n int) error {
	id, created := "chatcmpl-"+requestID(c), time.Now().Unix()
	oneCall := req.ParallelToolCalls != nil && !*req.ParallelToolCalls
	f := s.startFan(c, oreq, model, n, req.Stream)
	if !req.Stream {
		out := oaCompletion{ID: id, Object: "chat.completion", Created: created, Model: model, SystemFingerprint: "fp_aurax",
			Choices: make([]oaChoice, n), Citations: rg.cites(), Usage: &oaUsage{}}
		return s.fanWhole(c, f, &out, oneCall)
	}
	// Stream: wait for the first chunk of any choice, so that a failure
	// before any output keeps its own status.
	head, ended, err := f.head(n)
	if err != nil || ended == n {
		f.drain()
		s.noteFor(c, &f.note)
		if err != nil {
			return fromUpstream(err)
		}
		return newError(fiber.StatusBadGateway, "the model backend ended every choice without output")
	}
	st := &fanStream{s: s, f: f, n: n, ended: ended, model: model,
		base:  oaCompletion{ID: id, Object: "chat.completion.chunk", Created: created, Model: model, SystemFingerprint: "fp_aurax"},
		sse:   make([]*chatSSE, n),
		usage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage}
	for i := range st.sse {
		st.sse[i] = &chatSSE{base: st.base, index: i, oneCall: oneCall}
	}
	st.sse[0].citations = rg.cites()
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	s.noteFor(c, &f.note)
	s.noteStream(c, &f.note)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) { st.write(w, head) })
	return nil
}

// fanWhole answers a non-streamed request for several choices: out, with
// every choice and the usage summed (the prompt counted once), or the first
// choice's failure.
func (s *Server) fanWhole(c *fiber.Ctx, f *chatFan, out *oaCompletion, oneCall bool) error {
	resps := make([]api.ChatResponse, len(out.Choices))
	errs := make([]error, len(out.Choices))
	for it := range f.out {
		switch {
		case it.done && it.err != nil:
			errs[it.i] = it.err
			f.stop()
		case !it.done:
			resps[it.i] = it.r
		}
	}
	f.stop()
	f.note.engine = f.engines()
	s.noteFor(c, &f.note)
	if err := failure(errs); err != nil {
		return fromUpstream(err)
	}
	for i := range resps {
		out.Choices[i] = chatChoice(i, &resps[i], oneCall)
		out.Usage.PromptTokens = max(out.Usage.PromptTokens, resps[i].PromptEvalCount)
		out.Usage.CompletionTokens += resps[i].EvalCount
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens + out.Usage.CompletionTokens
	return c.JSON(out)
}

// head waits for the first chunk of any of the n choices: that chunk, how
// many choices ended before it, and the failure among them, if any.
func (f *chatFan) head(n int) (fanItem, int, error) {
	var errs []error
	ended := 0
	for it := range f.out {
		if !it.done {
			return it, ended, failure(errs)
		}
		ended++
		if it.err != nil {
			errs = append(errs, it.err)
			f.stop()
		}
	}
	return fanItem{}, ended, failure(errs)
}

// fanStream writes the streamed choices of one request as they come, each
// in its own chunks, then the summed usage when asked.
type fanStream struct {
	s      *Server
	f      *chatFan
	sse    []*chatSSE
	base   oaCompletion
	model  string
	n      int
	ended  int
	usage  bool
	status int
}

func (st *fanStream) flush(w *bufio.Writer) bool {
	st.f.note.bytes += int64(w.Buffered())
	if w.Flush() != nil {
		st.status = metrics.StatusClientClosed
		return false
	}
	return true
}

func (st *fanStream) write(w *bufio.Writer, head fanItem) {
	st.status = fiber.StatusOK
	defer func() {
		st.f.drain()
		st.f.note.engine = st.f.engines()
		st.s.logStreamed(&st.f.note, st.status)
	}()
	// The first citations go with choice 0's first chunk: when another
	// choice speaks first, they wait for it (harmless: they are only
	// metadata).
	if st.sse[head.i].chunk(w, &head.r) != nil || !st.flush(w) {
		st.status = metrics.StatusClientClosed
		return
	}
	var tick <-chan time.Time
	if ka := st.s.cfg.Server.KeepAlive; ka > 0 {
		t := time.NewTicker(ka)
		defer t.Stop()
		tick = t.C
	}
	for st.ended < st.n {
		select {
		case it, ok := <-st.f.out:
			if !ok {
				st.ended = st.n
			} else if !st.item(w, it) {
				return
			}
		case <-tick:
			sseKeepAlive(w)
			if !st.flush(w) {
				return
			}
		}
	}
	if st.usage {
		u := &oaUsage{}
		for _, e := range st.sse {
			u.PromptTokens = max(u.PromptTokens, e.promptTok)
			u.CompletionTokens += e.completeTok
		}
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
		ev := st.base
		ev.Choices, ev.Usage = []oaChoice{}, u
		_ = writeSSE(w, &ev)
	}
	sseDone(w)
	st.flush(w)
}

// item writes one choice's chunk or end; false when the stream is over (a
// choice failed, or the client left).
func (st *fanStream) item(w *bufio.Writer, it fanItem) bool {
	if !it.done {
		if st.sse[it.i].chunk(w, &it.r) != nil || !st.flush(w) {
			st.status = metrics.StatusClientClosed
			return false
		}
		return true
	}
	st.ended++
	if it.err == nil {
		return true
	}
	if he := fromUpstream(it.err); he.Status != metrics.StatusClientClosed {
		st.status = he.Status
		st.s.log.Warn("stream failed", "model", st.model, "choice", it.i, "err", it.err)
		sseFail(w, he)
		st.flush(w)
	}
	return false
}
