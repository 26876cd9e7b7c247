package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// The access log: one structured line per request, message "request",
// with method, route (the route template, or the path when no route
// matched), status, duration, model (as the client named it), engine (the
// pool engine that served it), request_id and bytes (the response body).
// It never has a key, a header or a body. A streamed answer is logged when
// its stream ends, with the status it ended with (499: the client left).

// accessNote is what a model request adds to its access log line; it lives
// in the request's call (no allocation) and is found through Locals.
type accessNote struct {
	model, engine string
	bytes         int64 // body bytes of a streamed answer
	// streamed: the stream writer logs the line when the stream ends, with
	// what follows (the request's context is gone by then).
	streamed           bool
	method, route, rid string
	start              time.Time
}

type accessKey struct{}

// accessMark tells errorHandler that the access log middleware runs for
// this request (it logs itself the errors fasthttp raises before routing).
type accessMark struct{}

// accessLog is the middleware that logs a request once its answer is
// rendered (it sits outside the error renderer), unless a stream will.
func (s *Server) accessLog(c *fiber.Ctx) error {
	c.Locals(accessMark{}, true)
	err := c.Next()
	var model, engine string
	if n, ok := c.Locals(accessKey{}).(*accessNote); ok {
		if n.streamed {
			return err
		}
		model, engine = n.model, n.engine
	}
	s.logAccess(c.Method(), routeOf(c), c.Response().StatusCode(), time.Since(c.Context().Time()),
		model, engine, requestID(c), int64(len(c.Response().Body())))
	return err
}

// noteFor attaches n to c's access log line (a no-op with the log off).
func (s *Server) noteFor(c *fiber.Ctx, n *accessNote) {
	if s.access != nil {
		c.Locals(accessKey{}, n)
	}
}

// noteStream hands the line to the stream writer: what it needs of c is
// copied now.
func (s *Server) noteStream(c *fiber.Ctx, n *accessNote) {
	if s.access == nil {
		return
	}
	n.streamed = true
	n.method, n.route, n.rid = c.Route().Method, c.Route().Path, strings.Clone(requestID(c))
	n.start = c.Context().Time()
}

// logStreamed logs a streamed request's line when its stream ended.
func (s *Server) logStreamed(n *accessNote, status int) {
	if n.streamed {
		s.logAccess(n.method, n.route, status, time.Since(n.start), n.model, n.engine, n.rid, n.bytes)
	}
}

func (s *Server) logAccess(method, route string, status int, d time.Duration, model, engine, rid string, bytes int64) {
	if s.access == nil {
		return
	}
	s.access.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("method", method), slog.String("route", route), slog.Int("status", status),
		slog.Duration("duration", d), slog.String("model", model), slog.String("engine", engine),
		slog.String("request_id", rid), slog.Int64("bytes", bytes))
}

// routeOf is the matched route template; the path itself (capped) when no
// handler route matched (a 404, a 401 from a group's auth, a 413): the
// last route run is then a middleware's, whose path is a prefix.
func routeOf(c *fiber.Ctx) string {
	r, p := c.Route(), c.Path()
	if r.Path == p || strings.ContainsAny(r.Path, ":*+") {
		return r.Path
	}
	if len(p) > 128 {
		p = p[:128]
	}
	return p
}
