package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"iter"
	"net"
	"sync"
	"time"

	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/gofiber/fiber/v2"
	"github.com/ollama/ollama/api"
)

// call is one model request from admission to its last byte: it owns the
// inference slot, the upstream context and the connection watcher, and
// reports the request's metrics when done.
type call struct {
	s     *Server
	model string // as the client named it: the model_type label
	start time.Time

	ctx       context.Context
	cancel    context.CancelFunc
	release   func()
	lease     *pool.Lease // the slot: which engine serves the call
	stopWatch func()
	once      sync.Once

	queueWait   time.Duration
	upstream    time.Duration
	ttft        time.Duration
	promptTok   int
	completeTok int

	note accessNote // its access log line's model, engine and bytes
}

// admit waits for an inference slot on an engine that has the model. The
// returned error is an *Error ready for the client (429 queue full or
// waited too long, 503 draining or no engine, 499 the client left while
// waiting).
//
// key (0: none) names the conversation or prompt prefix the request
// continues (pool.ChatKey, pool.GenerateKey), so that it goes back to the
// engine that has that prefix in its cache while that engine has a slot.
func (s *Server) admit(c *fiber.Ctx, model, endpoint string, key uint64) (*call, error) {
	k, err := s.admitFor(s.reqCtx, c.Context().Conn(), model, endpoint, key)
	if k != nil {
		s.noteFor(c, &k.note)
	}
	return k, err
}

// admitFor is admit for a call whose context is parent's (one choice of
// several), watching conn.
func (s *Server) admitFor(parent context.Context, conn net.Conn, model, endpoint string, key uint64) (*call, error) {
	k := &call{s: s, model: model, start: time.Now()}
	k.note.model = model
	k.ctx, k.cancel = context.WithTimeout(parent, s.cfg.Ollama.RequestTimeout)
	k.stopWatch = s.watch.watch(conn, k.cancel)
	s.metrics.Arrived(model)
	lease, waited, err := s.pool.AcquireKey(k.ctx, s.models.Resolve(model, endpoint == "embedding"), key)
	if err == nil || waited > 0 {
		s.metrics.ObserveQueueWait(waited)
	}
	if err != nil {
		var he *Error
		switch {
		case errors.Is(err, pool.ErrQueueFull):
			s.metrics.Rejected(metrics.ReasonQueueFull)
			he = &Error{Status: fiber.StatusTooManyRequests, Code: "queue_full", RetryAfter: s.pool.RetryAfter(), Err: err,
				Message: "too many requests are waiting for an inference slot; retry later"}
		case errors.Is(err, pool.ErrWaitTimeout):
			s.metrics.Rejected(metrics.ReasonWaitTimeout)
			he = &Error{Status: fiber.StatusTooManyRequests, Code: "queue_timeout", RetryAfter: s.pool.RetryAfter(), Err: err,
				Message: "no inference slot became free within " + s.cfg.Queue.MaxWait.String() + "; retry later"}
		case errors.Is(err, pool.ErrDraining):
			s.metrics.Rejected(metrics.ReasonDraining)
			he = &Error{Status: fiber.StatusServiceUnavailable, RetryAfter: time.Second, Err: err,
				Message: "this replica is shutting down; retry on another"}
		default:
			he = fromUpstream(err)
		}
		k.release = func() {}
		k.done(he.Status)
		return nil, he
	}
	k.lease, k.queueWait = lease, waited
	k.release = lease.Release
	k.ctx = pool.WithLease(k.ctx, lease)
	return k, nil
}

// done releases everything and records the request; safe to call twice.
func (k *call) done(status int) {
	k.once.Do(func() {
		k.stopWatch()
		if k.lease != nil {
			k.note.engine = k.lease.EngineName() // before the release forgets it
		}
		k.release()
		k.cancel()
		d := time.Since(k.start)
		k.s.metrics.ObserveModel(metrics.ModelResult{
			ModelType:        k.model,
			HTTPStatus:       status,
			Canceled:         status == metrics.StatusClientClosed,
			Duration:         d,
			TTFT:             k.ttft,
			Upstream:         k.upstream,
			PromptTokens:     k.promptTok,
			CompletionTokens: k.completeTok,
		})
		if k.upstream > 0 {
			if over := d - k.queueWait - k.upstream; over > 0 {
				k.s.metrics.ObserveOverhead(over)
			}
		}
		k.s.logStreamed(&k.note, status)
	})
}

// fail ends the call with err's status and returns the *Error for Fiber.
func (k *call) fail(err error) error {
	he := fromUpstream(err)
	k.done(he.Status)
	return he
}

// timed runs one non-streamed upstream call, counting its time.
func (k *call) timed(fn func(ctx context.Context) error) error {
	t := time.Now()
	err := fn(k.ctx)
	k.upstream += time.Since(t)
	return err
}

// embed runs one embedding request upstream, counting its time and its
// prompt tokens.
func (k *call) embed(req *api.EmbedRequest) (*api.EmbedResponse, error) {
	var resp *api.EmbedResponse
	err := k.timed(func(ctx context.Context) error {
		var err error
		resp, err = k.s.models.Embed(ctx, req)
		return err
	})
	if err == nil {
		k.promptTok = resp.PromptEvalCount
	}
	return resp, err
}

// item is one piece of a stream from the upstream call: a chunk, its
// final error, or a wait (the engine silent for server.keep_alive).
type item[T any] struct {
	v    T
	err  error
	idle bool
}

// errStopped ends an upstream call whose stream was stopped (the client
// left, or its write failed).
var errStopped = errors.New("stream stopped")

// chunks is a streaming upstream call pulled chunk by chunk: next runs the
// call in the caller's goroutine (a coroutine, iter.Pull) until it has the
// next piece, so that a chunk goes from the engine's socket to the
// client's with no goroutine between them (a producer goroutine and a
// channel cost two goroutine wake-ups a chunk). The call's reads wait with
// the idle hook (models.WithIdle), which yields an idle item each
// keepAlive of silence (0: none). stop ends the call.
type chunks[T any] struct {
	next func() (item[T], bool)
	stop func()
}

func pull[T any](k *call, keepAlive time.Duration, run func(ctx context.Context, emit func(T) error) error) chunks[T] {
	next, stop := iter.Pull(func(yield func(item[T]) bool) {
		growStack()
		t := time.Now()
		first := true
		ctx := models.WithIdle(k.ctx, keepAlive, func() error {
			if !yield(item[T]{idle: true}) {
				return errStopped
			}
			return nil
		})
		err := run(ctx, func(v T) error {
			if first {
				k.ttft, first = time.Since(k.start), false
			}
			if !yield(item[T]{v: v}) {
				return errStopped
			}
			return nil
		})
		k.upstream = time.Since(t)
		if err != nil && !errors.Is(err, errStopped) {
			yield(item[T]{err: err})
		}
	})
	return chunks[T]{next: next, stop: stop}
}

// growStack gives a stream's coroutine, at its start, the stack its call
// needs, in one step. A new goroutine starts with a small stack, and the
// call's JSON encoder (goccy/go-json's VM has a frame of several KB) grew
// it by doubling, copying the stack at each step, on every stream: 3 % of
// BenchmarkOpenAIChatStreamHop's CPU. This frame, while the stack is
// still shallow, grows it once, to 16 KB (what the runtime's per-P stack
// cache still serves).
//
//go:noinline
func growStack() byte {
	var b [8 << 10]byte // on the stack: last does not keep it
	return last(b[:])
}

//go:noinline
func last(b []byte) byte { return b[len(b)-1] }

// end cancels the upstream call and ends it.
func (ch chunks[T]) end(k *call) {
	k.cancel()
	ch.stop()
}

// first waits for the first chunk so that an error before any output (an
// unknown model, say) still gets its own HTTP status; waits before it send
// nothing (no header has gone yet).
func first[T any](k *call, ch chunks[T]) (T, error) {
	for {
		it, ok := ch.next()
		switch {
		case !ok:
			ch.end(k)
			return it.v, errors.New("upstream stream ended without output")
		case it.err != nil:
			ch.end(k)
			return it.v, it.err
		case !it.idle:
			return it.v, nil
		}
	}
}

// streamer writes one wire format's stream: chunks, keep-alives, the error
// event, the end; each piece is sent by the caller.
type streamer[T any] struct {
	contentType string
	chunk       func(w *bufio.Writer, v *T) error // v is the stream's until the next chunk: it may be changed
	keepAlive   func(w *bufio.Writer)             // nil: none
	fail        func(w *bufio.Writer, he *Error)
	end         func(w *bufio.Writer) // after the last chunk, nil: nothing
}

// commit sends the headers and streams head and the rest of ch to the
// client as the response body, which then owns the call.
func commit[T any](c *fiber.Ctx, k *call, ch chunks[T], head T, st streamer[T]) error {
	c.Set(fiber.HeaderContentType, st.contentType)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no") // nginx: pass the stream through unbuffered
	k.s.noteStream(c, &k.note)
	b := &streamBody[T]{k: k, ch: ch, st: st, head: &head, status: fiber.StatusOK}
	b.w = bufio.NewWriterSize(&b.buf, 512)
	c.Context().SetBodyStream(b, -1)
	return nil
}

// streamBody is a stream's response body. fasthttp's connection goroutine
// reads it, and each Read that finds nothing buffered pulls the next piece
// of the upstream call (a chunk, or a keep-alive after a silence) and
// encodes it. fasthttp closes it once the response is written, or could
// not be (the client left): CloseWithError ends the call.
type streamBody[T any] struct {
	k      *call
	ch     chunks[T]
	st     streamer[T]
	buf    bytes.Buffer
	w      *bufio.Writer // into buf, for the streamer's encoders
	head   *T            // the first chunk, nil once encoded
	cur    T             // the chunk being encoded: the encoders take it by pointer, so a chunk is not copied to the heap
	ended  bool          // buf holds the last bytes: EOF after them
	status int
}

func (b *streamBody[T]) Read(p []byte) (int, error) {
	for b.buf.Len() == 0 {
		if b.ended {
			return 0, io.EOF
		}
		b.next()
		_ = b.w.Flush() // into buf: cannot fail
	}
	n, _ := b.buf.Read(p)
	b.k.note.bytes += int64(n)
	return n, nil
}

// next encodes the next piece of the stream: the head, a chunk, a
// keep-alive, the end or the error event.
func (b *streamBody[T]) next() {
	if b.head != nil {
		v := b.head
		b.head = nil
		b.chunk(v)
		return
	}
	it, ok := b.ch.next()
	switch {
	case !ok:
		if b.st.end != nil {
			b.st.end(b.w)
		}
		b.ended = true
	case it.err != nil:
		he := fromUpstream(it.err)
		if b.status = he.Status; b.status != metrics.StatusClientClosed {
			b.k.s.log.Warn("stream failed", "model", b.k.model, "err", it.err)
			b.st.fail(b.w, he)
		}
		b.ended = true
	case it.idle:
		if b.st.keepAlive != nil {
			b.st.keepAlive(b.w)
		}
	default:
		b.cur = it.v
		b.chunk(&b.cur)
	}
}

func (b *streamBody[T]) chunk(v *T) {
	if b.st.chunk(b.w, v) != nil {
		b.status, b.ended = metrics.StatusClientClosed, true
	}
}

// CloseWithError ends the call: the upstream call cancelled and stopped,
// the slot released, the metrics recorded. A stream closed before its end,
// or after a failed write, lost its client (499).
func (b *streamBody[T]) CloseWithError(err error) error {
	status := b.status
	if err != nil || !b.ended || b.buf.Len() > 0 {
		status = metrics.StatusClientClosed
	}
	b.ch.end(b.k)
	b.k.done(status)
	return nil
}
