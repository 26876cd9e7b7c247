package runpod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aurax/aurax/internal/ctxtime"
)

// maxBody bounds every answer read from RunPod.
const maxBody = 1 << 20

// APIError is a non-2xx answer from RunPod. Message is RunPod's own text,
// cut short; it never holds the API key.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("runpod %s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// Temporary reports whether retrying later may succeed (429 and 5xx).
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// client sends authenticated JSON requests with bounded retries.
type client struct {
	cfg    Config
	key    string
	http   *http.Client
	logger *slog.Logger
	sleep  func(ctx context.Context, d time.Duration) error

	mu        sync.Mutex
	notBefore time.Time // an answer said the rate limit is spent until then
}

func newClient(cfg Config, hc *http.Client, logger *slog.Logger) (*client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.APIKey == "" {
		return nil, errors.New("runpod.api_key: required (set RUNPOD_API_KEY)")
	}
	if hc == nil {
		hc = &http.Client{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	cfg.QueueURL = strings.TrimRight(cfg.QueueURL, "/")
	return &client{cfg: cfg, key: cfg.APIKey, http: hc, logger: logger, sleep: ctxtime.Sleep}, nil
}

// do sends method to base+path with body (nil: none) and returns the answer
// body of a 2xx, with retry's policy.
func (c *client) do(ctx context.Context, method, base, path string, body []byte) ([]byte, error) {
	var out []byte
	err := c.retry(ctx, method+" "+path, func() (time.Duration, error) {
		b, wait, err := c.once(ctx, method, base+path, path, body)
		out = b
		return wait, err
	})
	return out, err
}

// retry runs try until it succeeds, up to MaxAttempts times: 429, 5xx and
// transport errors are retried after the wait try returns (a 429's
// Retry-After) or an exponential backoff, capped at MaxBackoff; any other
// error (a 4xx *APIError, a decode error) is returned at once.
func (c *client) retry(ctx context.Context, what string, try func() (time.Duration, error)) error {
	backoff := c.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		wait, err := try()
		if err == nil {
			return nil
		}
		var ae *APIError
		var de *decodeError
		retry := ctx.Err() == nil && !errors.As(err, &de) && (!errors.As(err, &ae) || ae.Temporary())
		if !retry || attempt >= c.cfg.MaxAttempts {
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				return fmt.Errorf("runpod %s: %w (last: %v)", what, ctx.Err(), err)
			}
			return err
		}
		if wait <= 0 {
			wait = backoff
			backoff = min(2*backoff, c.cfg.MaxBackoff)
		}
		wait = min(wait, c.cfg.MaxBackoff)
		c.logger.Warn("runpod call failed, retrying", "call", what, "attempt", attempt, "wait", wait, "err", err)
		if serr := c.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("runpod %s: %w (last: %v)", what, serr, err)
		}
	}
}

// decodeError marks an answer that could not be decoded: retrying would
// get the same answer.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// once makes one request. wait is the server's requested delay on a 429.
func (c *client) once(ctx context.Context, method, u, path string, body []byte) (b []byte, wait time.Duration, err error) {
	c.mu.Lock()
	hold := time.Until(c.notBefore)
	c.mu.Unlock()
	if hold > 0 {
		if err := c.sleep(ctx, min(hold, c.cfg.MaxBackoff)); err != nil {
			return nil, 0, fmt.Errorf("runpod %s %s: waiting for the rate limit: %w", method, path, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, 0, fmt.Errorf("runpod %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error carries the URL, never the headers: the key stays out.
		return nil, 0, fmt.Errorf("runpod %s %s: %w", method, path, scrub(err, c.key))
	}
	defer resp.Body.Close()
	if strings.TrimSpace(resp.Header.Get("X-RateLimit-Remaining")) == "0" {
		if d := RetryAfter(resp.Header, time.Now()); d > 0 {
			c.mu.Lock()
			c.notBefore = time.Now().Add(d)
			c.mu.Unlock()
		}
	}
	b, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, 0, fmt.Errorf("runpod %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return b, 0, nil
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	msg = strings.ReplaceAll(msg, c.key, "<redacted>")
	ae := &APIError{Method: method, Path: path, Status: resp.StatusCode, Message: msg}
	if resp.StatusCode == http.StatusTooManyRequests {
		wait = RetryAfter(resp.Header, time.Now())
	}
	return nil, wait, ae
}

// scrub replaces the key in an error's text, should a transport echo it.
func scrub(err error, key string) error {
	if key != "" && strings.Contains(err.Error(), key) {
		return errors.New(strings.ReplaceAll(err.Error(), key, "<redacted>"))
	}
	return err
}

// RetryAfter is the delay a 429's headers ask for: Retry-After (seconds or
// an HTTP date), else X-RateLimit-Reset / RateLimit-Reset (seconds from now,
// or a Unix time when it is larger than a day's seconds), else 0 (unknown).
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < 1e7 {
			return time.Duration(s * float64(time.Second))
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(0, t.Sub(now))
		}
	}
	for _, k := range []string{"X-RateLimit-Reset", "RateLimit-Reset", "X-Ratelimit-Reset-After"} {
		v := strings.TrimSpace(h.Get(k))
		if v == "" {
			continue
		}
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s < 0 || s > 1e12 {
			continue
		}
		if s > 86400 { // a Unix time
			return max(0, time.Unix(int64(s), 0).Sub(now))
		}
		return time.Duration(s * float64(time.Second))
	}
	return 0
}
