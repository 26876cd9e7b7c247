package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/pool"
	"github.com/gofiber/fiber/v2"
)

// The engine side of Ollama's model management (/api/pull, /api/delete,
// /api/copy, /api/create, /api/push, /api/blobs): raw calls to each
// engine's own endpoint, so that what comes back is Ollama's wire format and
// status, and the fan-out over the pool's engines.

// newManageClient is the HTTP client of the management calls: no overall
// timeout (a pull takes as long as the download), no proxy (the engines
// are the replica's own), the pool's connect and header timeouts.
func newManageClient(connect, header time.Duration) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: header,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
		DisableCompression:    true,
	}}
}

// engineError is one engine's failure: its HTTP status (500 for an error
// line mid-stream, as Ollama answers a failed non-streamed pull; 503 when
// it could not be reached) and Ollama's message.
type engineError struct {
	engine string
	status int
	msg    string
}

func (e *engineError) Error() string { return "engine " + e.engine + ": " + e.msg }

// engineDo sends one management request to engine t and returns its
// answer; a status of 400 or more is an *engineError. size is the body's
// length (-1: unknown).
func (s *Server) engineDo(ctx context.Context, t pool.Target, method, path string, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, t.URL+path, body)
	if err != nil {
		return nil, &engineError{engine: t.Name(), status: fiber.StatusInternalServerError, msg: err.Error()}
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	}
	resp, err := s.mgmt.Do(req)
	if err != nil {
		status := fiber.StatusServiceUnavailable
		if ctx.Err() != nil {
			status = metrics.StatusClientClosed
		}
		return nil, &engineError{engine: t.Name(), status: status, msg: "unreachable: " + err.Error()}
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		msg := strings.TrimSpace(string(b))
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return nil, &engineError{engine: t.Name(), status: resp.StatusCode, msg: msg}
	}
	return resp, nil
}

// engineStream posts body to path on engine t and calls fn with each NDJSON
// line of the answer; a line {"error": ...} ends it as an *engineError.
func (s *Server) engineStream(ctx context.Context, t pool.Target, path string, body []byte, fn func(line []byte) error) error {
	resp, err := s.engineDo(ctx, t, http.MethodPost, path, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if bytes.HasPrefix(line, []byte(`{"error"`)) {
			var e struct{ Error string }
			if json.Unmarshal(line, &e) == nil && e.Error != "" {
				return &engineError{engine: t.Name(), status: fiber.StatusInternalServerError, msg: e.Error}
			}
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		status := fiber.StatusBadGateway
		if ctx.Err() != nil {
			status = metrics.StatusClientClosed
		}
		return &engineError{engine: t.Name(), status: status, msg: "answer cut short: " + err.Error()}
	}
	return nil
}

// opEvent is one NDJSON line of engine i, or (end) how engine i ended.
type opEvent struct {
	i    int
	line []byte
	end  bool
	err  error
}

// streamOp posts body to path on every engine, the first alone and then
// the others at once: engines may share one models directory (Compose
// replicas of one service share its volume), and two Ollamas writing the
// same blob at once would corrupt it; after the first, the others find the
// blobs there. It delivers each line and each end on the returned channel,
// which is closed once every engine has ended; the consumer reads it to the
// end (cancel ctx to cut it short).
func (s *Server) streamOp(ctx context.Context, engines []pool.Target, path string, body []byte) <-chan opEvent {
	ch := make(chan opEvent, 64)
	send := func(ev opEvent) bool {
		select {
		case ch <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	one := func(i int) {
		err := s.engineStream(ctx, engines[i], path, body, func(line []byte) error {
			if !send(opEvent{i: i, line: slices.Clone(line)}) {
				return ctx.Err()
			}
			return nil
		})
		send(opEvent{i: i, end: true, err: err})
	}
	go func() {
		defer close(ch)
		one(0)
		var wg sync.WaitGroup
		for i := 1; i < len(engines); i++ {
			wg.Go(func() { one(i) })
		}
		wg.Wait()
	}()
	return ch
}

// outcome is the combined result of one change over the engines: nil when
// every engine did it; else the first failure's status and a message that
// names every engine that failed (only Ollama's own message with a single
// engine, so a pool of one answers as Ollama does) and those that did not.
func outcome(engines []pool.Target, errs []error) *Error {
	var failed []*engineError
	var ok []string
	for i, err := range errs {
		var ee *engineError
		switch {
		case err == nil:
			ok = append(ok, engines[i].Name())
		case errors.As(err, &ee):
			failed = append(failed, ee)
		default:
			failed = append(failed, &engineError{engine: engines[i].Name(), status: fiber.StatusInternalServerError, msg: err.Error()})
		}
	}
	if len(failed) == 0 {
		return nil
	}
	if len(engines) == 1 {
		return &Error{Status: failed[0].status, Message: failed[0].msg, Err: failed[0]}
	}
	parts := make([]string, len(failed))
	for i, f := range failed {
		parts[i] = f.Error()
	}
	msg := strings.Join(parts, "; ")
	if len(ok) > 0 {
		msg += " (done on " + strings.Join(ok, ", ") + ")"
	}
	return &Error{Status: failed[0].status, Message: msg, Err: errors.Join(errs...)}
}

// progressLine is one merged progress line: Ollama's ProgressResponse plus
// the engine whose update it is (a field Ollama's clients ignore).
type progressLine struct {
	Status    string `json:"status"`
	Digest    string `json:"digest,omitempty"`
	Total     int64  `json:"total,omitempty"`
	Completed int64  `json:"completed,omitempty"`
	Engine    string `json:"engine,omitempty"`
}

// progressMerge merges the progress of one pull (or create, or push) on
// every engine into one stream a client can draw: a layer's total is its
// size (the same on every engine: a digest names its content) and its
// completed is the mean over the engines, so one bar per layer goes from 0
// to done once every engine has it. Status lines without a layer are
// passed on once per engine and change; each engine's "success" is held
// back: the stream ends with one success when all succeeded.
type progressMerge struct {
	engines []pool.Target
	layers  map[string][]int64 // digest → completed per engine
	status  []string           // each engine's last status line
}

func newProgressMerge(engines []pool.Target) *progressMerge {
	return &progressMerge{engines: engines, layers: map[string][]int64{}, status: make([]string, len(engines))}
}

// add takes engine i's line and returns the line to send, if any.
func (m *progressMerge) add(i int, raw []byte) (progressLine, bool) {
	var p progressLine
	if json.Unmarshal(raw, &p) != nil || p.Status == "success" {
		return p, false
	}
	p.Engine = m.engines[i].Name()
	if p.Digest == "" || p.Total <= 0 {
		if p.Status == m.status[i] {
			return p, false
		}
		m.status[i] = p.Status
		p.Digest, p.Total, p.Completed = "", 0, 0
		return p, true
	}
	done := m.layers[p.Digest]
	if done == nil {
		done = make([]int64, len(m.engines))
		m.layers[p.Digest] = done
	}
	done[i] = min(p.Completed, p.Total)
	var sum int64
	for _, d := range done {
		sum += d
	}
	p.Completed = sum / int64(len(m.engines))
	return p, true
}
