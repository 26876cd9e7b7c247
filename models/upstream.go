package models

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// upstream is the hot path's HTTP/1.1 client to one Ollama: the chat and
// generate calls. It writes the request and reads the answer in the
// caller's goroutine over a pool of kept-alive connections, where
// net/http's Transport hands each request to a writer goroutine and each
// answer back from a reader goroutine (two goroutine switches and about
// 40 allocations a request, measured by BenchmarkOpenAIChatHop). The
// answer's head is parsed in place when it is the usual one, by net/http's
// ReadResponse otherwise (readResponse);
// a cancelled context expires the connection's deadline, which ends a
// blocked read at once, and the connection is then closed, never reused.
type upstream struct {
	host     string // host:port
	dialer   net.Dialer
	header   time.Duration // request sent → response headers (0: none)
	maxIdle  int
	idleTime time.Duration

	mu    sync.Mutex
	idle  []*upConn   // most recently used last
	sweep *time.Timer // closes connections idle for idleTime; nil: none armed
}

type upConn struct {
	net.Conn
	br   *bufio.Reader // over the upConn: reads under an idle hook go through Read
	bw   *bufio.Writer
	used time.Time // when it went idle

	// The answer being read: its idle hook (nil: none) and its context.
	idle *idleHook
	ctx  context.Context
}

// Read reads the connection, under the idle hook of the answer's body.
func (c *upConn) Read(p []byte) (int, error) {
	if c.idle == nil {
		return c.Conn.Read(p)
	}
	return idleRead(c.ctx, c.Conn, c.idle, p)
}

// aLongTimeAgo is a deadline in the past: reads and writes fail at once.
var aLongTimeAgo = time.Unix(1, 0)

func newUpstream(host string, opts OllamaOptions) *upstream {
	return &upstream{host: host, dialer: net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second},
		header: opts.HeaderTimeout, maxIdle: opts.MaxIdleConns, idleTime: 90 * time.Second}
}

// get returns an idle connection (reused: true) or a new one.
func (u *upstream) get(ctx context.Context) (c *upConn, reused bool, err error) {
	u.mu.Lock()
	for len(u.idle) > 0 {
		c = u.idle[len(u.idle)-1]
		u.idle[len(u.idle)-1] = nil
		u.idle = u.idle[:len(u.idle)-1]
		if time.Since(c.used) < u.idleTime {
			u.mu.Unlock()
			return c, true, nil
		}
		c.Close()
	}
	u.mu.Unlock()
	nc, err := u.dialer.DialContext(ctx, "tcp", u.host)
	if err != nil {
		return nil, false, err
	}
	c = &upConn{Conn: nc, bw: bufio.NewWriterSize(nc, 4<<10)}
	c.br = bufio.NewReaderSize(c, 16<<10)
	return c, false, nil
}

// put keeps c for the next request, or closes it when enough are idle.
func (u *upstream) put(c *upConn) {
	c.used = time.Now()
	u.mu.Lock()
	if len(u.idle) < u.maxIdle {
		u.idle = append(u.idle, c)
		c = nil
		if u.sweep == nil {
			u.sweep = time.AfterFunc(u.idleTime, u.closeStale)
		}
	}
	u.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// closeStale closes the connections idle for idleTime, so that an engine
// no longer used (one the pool removed) keeps none open; it runs again
// while some stay idle.
func (u *upstream) closeStale() {
	u.mu.Lock()
	n := 0
	var stale []*upConn
	for _, c := range u.idle { // oldest first
		if time.Since(c.used) < u.idleTime {
			break
		}
		stale = append(stale, c)
		n++
	}
	u.idle = append(u.idle[:0], u.idle[n:]...)
	clear(u.idle[len(u.idle):cap(u.idle)])
	u.sweep = nil
	if len(u.idle) > 0 {
		u.sweep = time.AfterFunc(u.idleTime, u.closeStale)
	}
	u.mu.Unlock()
	for _, c := range stale {
		c.Close()
	}
}

// post sends body to path and returns the answer; the caller reads the
// body and calls done(true) once it has read it to its end (the connection
// is reused), done(false) otherwise (it is closed). A request on a reused
// connection that the engine had closed meanwhile (nothing came back) is
// sent again once on a new one.
func (u *upstream) post(ctx context.Context, path string, body []byte) (*http.Response, func(reusable bool), error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := u.get(ctx)
		if err != nil {
			return nil, nil, err
		}
		resp, done, err := u.roundTrip(ctx, c, path, body)
		if err == nil {
			return resp, done, nil
		}
		if !reused || attempt > 0 || ctx.Err() != nil || !closedIdle(err) {
			return nil, nil, err
		}
	}
}

// closedIdle tells an error from a connection the peer closed before
// answering: EOF or a reset before the status line.
func closedIdle(err error) bool {
	if isTimeout(err) {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		isReset(err)
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (u *upstream) roundTrip(ctx context.Context, c *upConn, path string, body []byte) (*http.Response, func(bool), error) {
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, func(bool), error) {
		stop()
		c.Close()
		return nil, nil, err
	}
	c.bw.WriteString("POST ")
	c.bw.WriteString(path)
	c.bw.WriteString(" HTTP/1.1\r\nHost: ")
	c.bw.WriteString(u.host)
	c.bw.WriteString("\r\nUser-Agent: aurax\r\nContent-Type: application/json\r\nAccept: application/x-ndjson\r\nContent-Length: ")
	var nb [20]byte
	c.bw.Write(strconv.AppendInt(nb[:0], int64(len(body)), 10))
	c.bw.WriteString("\r\n\r\n")
	c.bw.Write(body)
	if err := c.bw.Flush(); err != nil {
		return fail(err)
	}
	if u.header > 0 {
		_ = c.SetReadDeadline(time.Now().Add(u.header))
	}
	resp, err := readResponse(c.br)
	if err != nil {
		return fail(err)
	}
	if u.header > 0 {
		_ = c.SetReadDeadline(time.Time{})
		if ctx.Err() != nil { // cancelled before the deadline was cleared: keep it expired
			_ = c.SetDeadline(aLongTimeAgo)
		}
	}
	if c.idle = idleFrom(ctx); c.idle != nil { // the body's reads: under the hook
		c.ctx = ctx
	}
	return resp, func(reusable bool) {
		if c.idle != nil {
			c.idle, c.ctx = nil, nil
			_ = c.SetReadDeadline(time.Time{})
		}
		if stop() && reusable && !resp.Close {
			u.put(c)
			return
		}
		c.Close()
	}, nil
}
