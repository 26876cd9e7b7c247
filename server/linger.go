package server

import (
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
)

// A client that writes its whole request before it reads (Python's urllib
// and httpx, many SDKs) gets a connection reset instead of the answer when
// the server closes a socket that still has unread bytes: the kernel sends
// RST, which discards the 413 it was about to read, and the OpenAI SDKs
// then retry the same large upload. So, as nginx's lingering close does, a
// connection answered 413 first half-closes (the client reads the answer
// and then EOF) and reads and discards what the client still sends, for
// at most server.linger and lingerMaxBytes, before it closes.

// lingerMaxBytes bounds what one lingering close reads and throws away.
const lingerMaxBytes = 256 << 20

// lingerListener hands out connections that can linger on close.
type lingerListener struct {
	net.Listener
	linger time.Duration
}

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: c, linger: l.linger}, nil
}

// lingerConn is one client connection: a net.Conn that still exposes the
// socket (syscall.Conn, for the watcher) and lingers on Close once armed.
type lingerConn struct {
	net.Conn
	linger time.Duration
	armed  atomic.Bool
}

var (
	_ syscall.Conn = (*lingerConn)(nil)

	errNotSocket = errors.New("not a socket")
	lingerBufs   = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
)

// SyscallConn is the socket's, so that the connection watcher can peek at it.
func (c *lingerConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNotSocket
}

// arm makes the next Close linger.
func (c *lingerConn) arm() { c.armed.Store(true) }

// Close lingers when armed: it half-closes, then reads and discards until
// the client closes its end, linger passes or lingerMaxBytes were read.
func (c *lingerConn) Close() error {
	if c.armed.CompareAndSwap(true, false) && c.linger > 0 {
		c.drain()
	}
	return c.Conn.Close()
}

func (c *lingerConn) drain() {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if c.Conn.SetReadDeadline(time.Now().Add(c.linger)) != nil {
		return
	}
	bp := lingerBufs.Get().(*[]byte)
	defer lingerBufs.Put(bp)
	for n := 0; n < lingerMaxBytes; {
		m, err := c.Conn.Read(*bp)
		n += m
		if err != nil {
			return
		}
	}
}

// readBody reads the request body before any handler runs, at most
// server.body_limit bytes. The app streams request bodies
// (StreamRequestBody) so that an upload to /api/blobs can pass through to
// the engines without being held in memory: every other route gets its
// body read here, as before, and a body over the limit is answered 413 at
// once (the declared length is enough) on a connection that lingers.
func (s *Server) readBody(c *fiber.Ctx) error {
	req := c.Request()
	if !req.IsBodyStream() {
		return c.Next()
	}
	if streamsBody(c) {
		err := c.Next()
		if c.Locals(bodyDone{}) == nil {
			// Not read to its end (refused, or not needed): the rest of it
			// must not be taken for the next request.
			lingerOnClose(c)
		}
		return err
	}
	limit := s.cfg.Server.BodyLimit
	switch n := req.Header.ContentLength(); {
	case n > limit:
		return s.tooLarge(c)
	case n == -1: // chunked: read one byte past the limit to tell
		body, err := io.ReadAll(io.LimitReader(c.Context().RequestBodyStream(), int64(limit)+1))
		if err != nil {
			return newError(fiber.StatusBadRequest, "request body: %v", err)
		}
		if len(body) > limit {
			return s.tooLarge(c)
		}
		req.SetBodyRaw(body)
	default:
		req.Body() // reads the stream into the request's body
	}
	return c.Next()
}

// streamsBody reports whether the route reads its request body itself.
func streamsBody(c *fiber.Ctx) bool {
	return c.Method() == fiber.MethodPost && strings.HasPrefix(c.Path(), "/api/blobs/")
}

// tooLarge is the 413, on a connection that closes after lingering.
func (s *Server) tooLarge(c *fiber.Ctx) error {
	lingerOnClose(c)
	return &Error{Status: fiber.StatusRequestEntityTooLarge, Code: "request_too_large",
		Message: "request body too large: the limit is " + strconv.Itoa(s.cfg.Server.BodyLimit) + " bytes (server.body_limit)"}
}

// lingerOnClose closes c's connection after this response, lingering so
// that its client, still writing a body nobody reads, gets the answer.
func lingerOnClose(c *fiber.Ctx) {
	c.Context().SetConnectionClose()
	if lc, ok := c.Context().Conn().(*lingerConn); ok {
		lc.arm()
	}
}
