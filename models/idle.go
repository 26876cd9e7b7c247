package models

import (
	"context"
	"errors"
	"io"
	"net"
	"time"
)

// A streamed answer's idle hook: the server sends keep-alives on a stream
// whose engine is silent, and the chunks reach it in its own goroutine
// (pulled, no goroutine between the engine's socket and the client's), so
// the wait for the next chunk itself calls back when it has waited long.

type idleKey struct{}

type idleHook struct {
	every time.Duration
	fn    func() error
}

// WithIdle returns a context under which a streamed call (Chat, Generate)
// calls idle each time the engine has sent nothing for every while its
// answer is read, and goes on waiting; an error from idle ends the call
// with that error. every <= 0 leaves ctx as it is.
func WithIdle(ctx context.Context, every time.Duration, idle func() error) context.Context {
	if every <= 0 || idle == nil {
		return ctx
	}
	return context.WithValue(ctx, idleKey{}, &idleHook{every: every, fn: idle})
}

func idleFrom(ctx context.Context) *idleHook {
	h, _ := ctx.Value(idleKey{}).(*idleHook)
	return h
}

// idleError is the idle hook's error, returned by the call as it is (not
// an engine failure).
type idleError struct{ err error }

func (e *idleError) Error() string { return e.err.Error() }
func (e *idleError) Unwrap() error { return e.err }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// idleRead is a Read of the upstream connection under a hook: a read
// deadline every h.every, the hook called at each, until data, an error or
// ctx's end. ctx is checked after the deadline is set: a cancellation sets
// a deadline in the past (roundTrip), and must not be overwritten unseen.
func idleRead(ctx context.Context, c net.Conn, h *idleHook, p []byte) (int, error) {
	for {
		_ = c.SetReadDeadline(time.Now().Add(h.every))
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := c.Read(p)
		if n > 0 || !isTimeout(err) || ctx.Err() != nil {
			return n, err
		}
		if err := h.fn(); err != nil {
			return 0, &idleError{err}
		}
	}
}

// idleBody gives the hook to a body read through net/http (an https
// engine), where the connection's deadlines are not ours: the body is read
// in a goroutine of its own, a buffer at a time, waited for every h.every.
type idleBody struct {
	io.ReadCloser
	h       *idleHook
	buf     []byte
	rest    []byte // read, not yet returned
	err     error  // the read's error, once rest is returned
	res     chan idleResult
	pending bool
}

type idleResult struct {
	n   int
	err error
}

func newIdleBody(body io.ReadCloser, h *idleHook) *idleBody {
	return &idleBody{ReadCloser: body, h: h, buf: make([]byte, 16<<10), res: make(chan idleResult, 1)}
}

func (b *idleBody) Read(p []byte) (int, error) {
	if len(b.rest) == 0 && b.err == nil {
		if err := b.wait(); err != nil {
			return 0, err
		}
	}
	if len(b.rest) > 0 {
		n := copy(p, b.rest)
		b.rest = b.rest[n:]
		return n, nil
	}
	err := b.err
	b.err = nil
	return 0, err
}

// wait reads the next buffer into rest (and err), calling the hook while
// nothing comes.
func (b *idleBody) wait() error {
	if !b.pending {
		b.pending = true
		go func() { // ends with the body's Close at the latest
			n, err := b.ReadCloser.Read(b.buf)
			b.res <- idleResult{n, err}
		}()
	}
	t := time.NewTimer(b.h.every)
	defer t.Stop()
	for {
		select {
		case r := <-b.res:
			b.pending = false
			b.rest, b.err = b.buf[:r.n], r.err
			return nil
		case <-t.C:
			if err := b.h.fn(); err != nil {
				return &idleError{err}
			}
			t.Reset(b.h.every)
		}
	}
}
