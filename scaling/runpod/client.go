package runpod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aurax/aurax/internal/ctxtime"
	"github.com/aurax/aurax/internal/retry"
)

// maxBody bounds every answer read from RunPod.
const maxBody = 1 << 20

// APIError is a non-2xx answer from RunPod. Message is RunPod's own text,
// cut short; it never holds the API key.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
	wait         time.Duration // a 429's Retry-After or rate-limit reset
}

func (e *APIError) Error() string {
	return fmt.Sprintf("runpod %s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// Temporary reports whether retrying later may succeed (429 and 5xx).
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// client sends authenticated JSON requests, one try each: it classifies
// its errors for the caller's retry loop (the controller's) and retries
// nothing itself.
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
// body of a 2xx. Its errors are classified (see classify).
func (c *client) do(ctx context.Context, method, base, path string, body []byte) ([]byte, error) {
	b, err := c.once(ctx, method, base+path, path, body)
	return b, classify(err)
}

// classify marks what another try would repeat as terminal (a 4xx other
// than 429) and a 429 with the wait its headers ask for; 5xx and transport
// errors stay plain: retryable. (Callers mark an answer that does not
// decode terminal.)
func classify(err error) error {
	var ae *APIError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae) && !ae.Temporary():
		return retry.Terminal(err)
	case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
		return retry.After(err, ae.wait)
	}
	return err
}

// once makes one request. A 429's *APIError carries the wait it asked for.
func (c *client) once(ctx context.Context, method, u, path string, body []byte) ([]byte, error) {
	c.mu.Lock()
	hold := time.Until(c.notBefore)
	c.mu.Unlock()
	if hold > 0 {
		if err := c.sleep(ctx, min(hold, c.cfg.Timeout)); err != nil {
			return nil, fmt.Errorf("runpod %s %s: waiting for the rate limit: %w", method, path, err)
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
		return nil, fmt.Errorf("runpod %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error carries the URL, never the headers: the key stays out.
		return nil, fmt.Errorf("runpod %s %s: %w", method, path, scrub(err, c.key))
	}
	defer resp.Body.Close()
	if strings.TrimSpace(resp.Header.Get("X-RateLimit-Remaining")) == "0" {
		if d := retry.HeaderWait(resp.Header, time.Now()); d > 0 {
			c.mu.Lock()
			c.notBefore = time.Now().Add(d)
			c.mu.Unlock()
		}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("runpod %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return b, nil
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	msg = strings.ReplaceAll(msg, c.key, "<redacted>")
	ae := &APIError{Method: method, Path: path, Status: resp.StatusCode, Message: msg}
	if resp.StatusCode == http.StatusTooManyRequests {
		ae.wait = retry.HeaderWait(resp.Header, time.Now())
	}
	return nil, ae
}

// scrub replaces the key in an error's text, should a transport echo it.
func scrub(err error, key string) error {
	if key != "" && strings.Contains(err.Error(), key) {
		return errors.New(strings.ReplaceAll(err.Error(), key, "<redacted>"))
	}
	return err
}
