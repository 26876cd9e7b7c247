package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/aurax/aurax/rag"
	"github.com/gofiber/fiber/v2"
)

// Error is the one error type at the HTTP edge: a status and a message that
// is safe to show the client. Err, the internal cause, is logged, never sent.
type Error struct {
	Status     int
	Message    string
	Type       string // OpenAI error type; derived from Status when empty
	Code       string // OpenAI error code, optional
	Param      string // the offending request field, optional
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

func newError(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// badField is a 400 naming the request field at fault.
func badField(field, format string, args ...any) *Error {
	return &Error{Status: fiber.StatusBadRequest, Param: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// fromUpstream maps a models error (or ctx error) to the HTTP edge.
func fromUpstream(err error) *Error {
	var he *Error
	var nf *models.ModelNotFoundError
	var ue *models.UpstreamError
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &nf):
		return &Error{Status: fiber.StatusNotFound, Code: "model_not_found", Param: "model", Message: nf.Error(), Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Status: metrics.StatusClientClosed, Message: "client closed request", Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, models.ErrTimeout):
		return &Error{Status: fiber.StatusGatewayTimeout, Message: "the model backend did not answer in time", Err: err}
	case errors.Is(err, pool.ErrNoEngine):
		return &Error{Status: fiber.StatusServiceUnavailable, Message: "no model engine is available (none ready in the pool)", RetryAfter: 5 * time.Second, Err: err}
	case errors.Is(err, models.ErrUnavailable):
		return &Error{Status: fiber.StatusServiceUnavailable, Message: "the model backend is unreachable", RetryAfter: 5 * time.Second, Err: err}
	case errors.As(err, &ue):
		if ue.Status == fiber.StatusBadRequest {
			return &Error{Status: fiber.StatusBadRequest, Message: ue.Message, Err: err}
		}
		if ue.Status == fiber.StatusServiceUnavailable { // Ollama's own queue is full
			return &Error{Status: fiber.StatusServiceUnavailable, Message: "the model backend is busy: " + ue.Message, RetryAfter: time.Second, Err: err}
		}
		return &Error{Status: fiber.StatusBadGateway, Message: "the model backend failed: " + ue.Message, Err: err}
	}
	return &Error{Status: fiber.StatusInternalServerError, Message: "internal error", Err: err}
}

// wireFormat says how errors look on a path.
type wireFormat int

const (
	wireOpenAI wireFormat = iota
	wireOllama
)

func formatFor(path string) wireFormat {
	if strings.HasPrefix(path, "/api/") || path == "/api" || path == "/" {
		return wireOllama
	}
	return wireOpenAI
}

func openAIType(status int) string {
	switch {
	case status == fiber.StatusUnauthorized:
		return "authentication_error"
	case status == fiber.StatusForbidden:
		return "permission_error"
	case status == fiber.StatusNotFound:
		return "not_found_error"
	case status == fiber.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// openAIError is the body of an OpenAI error, also the top-level "error" of an
// SSE error event.
type openAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *Error) openAI() openAIError {
	o := openAIError{Message: e.Message, Type: e.Type}
	if o.Type == "" {
		o.Type = openAIType(e.Status)
	}
	if e.Param != "" {
		o.Param = &e.Param
	}
	if e.Code != "" {
		o.Code = &e.Code
	}
	return o
}

// errorHandler is Fiber's ErrorHandler: every error leaves through here.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	var he *Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &he):
	case errors.As(err, &fe):
		he = &Error{Status: fe.Code, Message: fiberMessage(fe)}
	default:
		he = fromUpstream(err)
	}
	if he.Status >= 500 {
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "status", he.Status, "err", err, "request_id", requestID(c))
	} else if he.Err != nil {
		s.log.Debug("request rejected", "method", c.Method(), "path", c.Path(), "status", he.Status, "err", err, "request_id", requestID(c))
	}
	if he.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(he.RetryAfter.Seconds()))))
		c.Set("Retry-After-Ms", strconv.FormatInt(he.RetryAfter.Milliseconds(), 10))
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Status(he.Status)
	var body []byte
	if formatFor(c.Path()) == wireOllama {
		body, _ = json.Marshal(struct {
			Error string `json:"error"`
		}{he.Message})
	} else {
		body, _ = json.Marshal(struct {
			Error openAIError `json:"error"`
		}{he.openAI()})
	}
	if s.access != nil && c.Locals(accessMark{}) == nil {
		// fasthttp's own errors (a header too large, a read timeout) skip
		// the middleware chain: log them here.
		s.logAccess(c.Method(), routeOf(c), he.Status, time.Since(c.Context().Time()), "", "", requestID(c), int64(len(body)))
	}
	return c.Send(body)
}

func fiberMessage(fe *fiber.Error) string {
	switch fe.Code {
	case fiber.StatusRequestEntityTooLarge:
		return "request body too large"
	case fiber.StatusNotFound:
		return "no such route"
	case fiber.StatusMethodNotAllowed:
		return "method not allowed"
	}
	return fe.Message
}

// ragError maps rag errors to the HTTP edge: unknown collection 404,
// dimension mismatch, invalid filter and invalid argument 400, store
// unavailable 503; model and context errors as fromUpstream does.
func ragError(err error) *Error {
	var he *Error
	if errors.As(err, &he) {
		return he
	}
	msg := strings.TrimPrefix(err.Error(), rag.ErrInvalidArgument.Error()+": ")
	switch {
	case errors.Is(err, rag.ErrCollectionNotFound):
		return &Error{Status: fiber.StatusNotFound, Code: "collection_not_found", Param: "collection", Message: msg, Err: err}
	case errors.Is(err, rag.ErrDimensionMismatch):
		return &Error{Status: fiber.StatusBadRequest, Code: "dimension_mismatch", Message: msg, Err: err}
	case errors.Is(err, rag.ErrInvalidFilter):
		return &Error{Status: fiber.StatusBadRequest, Code: "invalid_filter", Param: "filter", Message: msg, Err: err}
	case errors.Is(err, rag.ErrInvalidArgument):
		return &Error{Status: fiber.StatusBadRequest, Message: msg, Err: err}
	case errors.Is(err, rag.ErrUnavailable):
		return &Error{Status: fiber.StatusServiceUnavailable, Code: "vector_store_unavailable", RetryAfter: 5 * time.Second, Err: err,
			Message: "the vector store is unavailable; retry later"}
	}
	return fromUpstream(err)
}
