package server

import (
	"bufio"
	"context"
	"maps"
	"net"
	"strings"
	"sync"
	"time"

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
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		if fromUpstream(err).Status != statusClientClosed {
			return err
		}
	}
	return first
}

// openAIChatN answers a chat request with n > 1 choices.
func (s *Server) openAIChatN(c *fiber.Ctx, req *oaChatRequest, oreq *api.ChatRequest, rg *augmented, model string, n int) error {
	id, created := "chatcmpl-"+requestID(c), time.Now().Unix()
	oneCall := req.ParallelToolCalls != nil && !*req.ParallelToolCalls
	f := s.startFan(c, oreq, model, n, req.Stream)
	if !req.Stream {
		resps := make([]api.ChatResponse, n)
		errs := make([]error, n)
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
		out := oaCompletion{ID: id, Object: "chat.completion", Created: created, Model: model, SystemFingerprint: "fp_aurax",
			Choices: make([]oaChoice, n), Citations: rg.cites(), Usage: &oaUsage{}}
		for i := range resps {
			out.Choices[i] = chatChoice(i, &resps[i], oneCall)
			out.Usage.PromptTokens = max(out.Usage.PromptTokens, resps[i].PromptEvalCount)
			out.Usage.CompletionTokens += resps[i].EvalCount
		}
		out.Usage.TotalTokens = out.Usage.PromptTokens + out.Usage.CompletionTokens
		return c.JSON(out)
	}

	// Stream: wait for the first chunk of any choice, so that a failure
	// before any output keeps its own status.
	var head fanItem
	var errs []error
	ended := 0
	for it := range f.out {
		if !it.done {
			head = it
			break
		}
		ended++
		if it.err != nil {
			errs = append(errs, it.err)
			f.stop()
		}
	}
	if err := failure(errs); err != nil || ended == n {
		f.drain()
		s.noteFor(c, &f.note)
		if err != nil {
			return fromUpstream(err)
		}
		return newError(fiber.StatusBadGateway, "the model backend ended every choice without output")
	}
	base := oaCompletion{ID: id, Object: "chat.completion.chunk", Created: created, Model: model, SystemFingerprint: "fp_aurax"}
	sse := make([]*chatSSE, n)
	for i := range sse {
		sse[i] = &chatSSE{k: &call{}, base: base, index: i, oneCall: oneCall}
	}
	sse[0].citations = rg.cites()
	usage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	s.noteFor(c, &f.note)
	s.noteStream(c, &f.note)
	keepAlive := s.cfg.Server.KeepAlive
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		status := fiber.StatusOK
		flush := func() bool {
			f.note.bytes += int64(w.Buffered())
			if w.Flush() != nil {
				status = statusClientClosed
				return false
			}
			return true
		}
		defer func() {
			f.drain()
			f.note.engine = f.engines()
			s.logStreamed(&f.note, status)
		}()
		// The first citations go with choice 0's first chunk: when another
		// choice speaks first, they wait for it (harmless: they are only
		// metadata).
		if sse[head.i].chunk(w, head.r) != nil || !flush() {
			status = statusClientClosed
			return
		}
		var tick <-chan time.Time
		if keepAlive > 0 {
			t := time.NewTicker(keepAlive)
			defer t.Stop()
			tick = t.C
		}
		for ended < n {
			select {
			case it, ok := <-f.out:
				if !ok {
					ended = n
					continue
				}
				if it.done {
					ended++
					if it.err != nil {
						if he := fromUpstream(it.err); he.Status != statusClientClosed {
							status = he.Status
							s.log.Warn("stream failed", "model", model, "choice", it.i, "err", it.err)
							sseFail(w, he)
							flush()
						}
						return
					}
					continue
				}
				if sse[it.i].chunk(w, it.r) != nil || !flush() {
					status = statusClientClosed
					return
				}
			case <-tick:
				sseKeepAlive(w)
				if !flush() {
					return
				}
			}
		}
		if usage {
			u := &oaUsage{}
			for _, e := range sse {
				u.PromptTokens = max(u.PromptTokens, e.k.promptTok)
				u.CompletionTokens += e.k.completeTok
			}
			u.TotalTokens = u.PromptTokens + u.CompletionTokens
			ev := base
			ev.Choices, ev.Usage = []oaChoice{}, u
			_ = writeSSE(w, &ev)
		}
		sseDone(w)
		flush()
	})
	return nil
}
