package models

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aurax/aurax/internal/jsonx"
	"github.com/ollama/ollama/api"
)

// Ollama is a Backend over an Ollama server's native API. Streaming calls
// (chat, generate) read NDJSON here with pooled buffers instead of through
// api.Client, whose stream allocates an 8 MiB scanner buffer per call, and
// go over the upstream client (upstream.go) when the URL is plain http; the
// other calls go through api.Client on an http.Client.
type Ollama struct {
	base   string
	http   *http.Client
	client *api.Client
	up     *upstream // chat and generate over plain http; nil: through http (https)
	prefix string    // the base URL's path, before /api/...
}

var _ Backend = (*Ollama)(nil)

// OllamaOptions are the timeouts of the connection to Ollama.
type OllamaOptions struct {
	ConnectTimeout time.Duration // TCP connect
	HeaderTimeout  time.Duration // request sent → response headers (model load included)
	MaxIdleConns   int           // kept-alive connections (default 256)
}

// NewOllama returns a Backend for the Ollama at baseURL (http://host:port).
func NewOllama(baseURL string, opts OllamaOptions) (*Ollama, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("ollama url %q: not a base URL", baseURL)
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.MaxIdleConns <= 0 {
		opts.MaxIdleConns = 256
	}
	tr := &http.Transport{
		Proxy:                 nil, // Ollama is local to the replica; never route it through a proxy
		DialContext:           (&net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          opts.MaxIdleConns,
		MaxIdleConnsPerHost:   opts.MaxIdleConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: opts.HeaderTimeout,
		DisableCompression:    true,
	}
	hc := &http.Client{Transport: tr}
	o := &Ollama{base: u.String(), http: hc, client: api.NewClient(u, hc)}
	if u.Scheme == "http" {
		o.up, o.prefix = newUpstream(u.Host, opts), u.Path
	}
	return o, nil
}

// send POSTs body to path: over the upstream client, or through the
// http.Client for https. done(true) says the body was read to its end.
func (o *Ollama) send(ctx context.Context, path string, body []byte) (*http.Response, func(reusable bool), error) {
	if o.up != nil {
		return o.up.post(ctx, o.prefix+path, body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := o.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	return resp, func(bool) { resp.Body.Close() }, nil
}

var (
	bufPool    = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}
)

// maxLine bounds one NDJSON object from Ollama.
const maxLine = 32 << 20

// stream POSTs body to path and calls fn with each NDJSON line.
func (o *Ollama) stream(ctx context.Context, path string, body any, fn func([]byte) error) error {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := jsonx.Encode(buf, body); err != nil {
		return fmt.Errorf("encode %s request: %w", path, err)
	}
	resp, done, err := o.send(ctx, path, buf.Bytes())
	if err != nil {
		return classify(ctx, err)
	}
	reusable := false // read to the end: the connection can take the next request
	defer func() { done(reusable) }()
	if resp.StatusCode >= 400 {
		return statusError(resp)
	}
	var answer io.Reader = resp.Body
	if h := idleFrom(ctx); h != nil && o.up == nil { // over net/http: the hook needs a reader of its own
		answer = newIdleBody(resp.Body, h)
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(answer)
	defer func() { br.Reset(nil); readerPool.Put(br) }()
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(line) > maxLine {
				return &UpstreamError{Message: "response line too long"}
			}
			long = append(long, line...)
			continue
		}
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			if bytes.HasPrefix(line, []byte(`{"error"`)) {
				var e struct{ Error string }
				if json.Unmarshal(line, &e) == nil && e.Error != "" {
					return &UpstreamError{Message: e.Error}
				}
			}
			if ferr := fn(line); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			if cerr := ctx.Err(); cerr != nil { // net/http can end a cancelled answer's body with a clean EOF
				return cerr
			}
			reusable = true
			return nil
		}
		if err != nil {
			return classify(ctx, err)
		}
	}
}

// Chat implements Backend.
func (o *Ollama) Chat(ctx context.Context, req *api.ChatRequest, fn func(*api.ChatResponse) error) error {
	var r api.ChatResponse
	return o.stream(ctx, "/api/chat", req, func(line []byte) error {
		r = api.ChatResponse{}
		if err := jsonx.UnmarshalChatResponse(line, &r); err != nil {
			return &UpstreamError{Message: "undecodable chat chunk: " + err.Error()}
		}
		return fn(&r)
	})
}

// Generate implements Backend.
func (o *Ollama) Generate(ctx context.Context, req *api.GenerateRequest, fn func(*api.GenerateResponse) error) error {
	var r api.GenerateResponse
	return o.stream(ctx, "/api/generate", req, func(line []byte) error {
		r = api.GenerateResponse{}
		if err := jsonx.Unmarshal(line, &r); err != nil {
			return &UpstreamError{Message: "undecodable generate chunk: " + err.Error()}
		}
		return fn(&r)
	})
}

// Embed implements Backend.
func (o *Ollama) Embed(ctx context.Context, req *api.EmbedRequest) (*api.EmbedResponse, error) {
	resp, err := o.client.Embed(ctx, req)
	return resp, mapClientError(ctx, err, req.Model)
}

// List implements Backend.
func (o *Ollama) List(ctx context.Context) (*api.ListResponse, error) {
	resp, err := o.client.List(ctx)
	return resp, mapClientError(ctx, err, "")
}

// Running implements Backend.
func (o *Ollama) Running(ctx context.Context) (*api.ProcessResponse, error) {
	resp, err := o.client.ListRunning(ctx)
	return resp, mapClientError(ctx, err, "")
}

// Show implements Backend.
func (o *Ollama) Show(ctx context.Context, req *api.ShowRequest) (*api.ShowResponse, error) {
	resp, err := o.client.Show(ctx, req)
	return resp, mapClientError(ctx, err, req.Model)
}

// Version implements Backend.
func (o *Ollama) Version(ctx context.Context) (string, error) {
	v, err := o.client.Version(ctx)
	return v, mapClientError(ctx, err, "")
}

// Pull implements Puller: it asks Ollama to download model, reporting progress.
func (o *Ollama) Pull(ctx context.Context, model string, fn func(api.ProgressResponse) error) error {
	return mapClientError(ctx, o.client.Pull(ctx, &api.PullRequest{Model: model}, fn), model)
}

func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct{ Error string }
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if resp.StatusCode == http.StatusNotFound && strings.Contains(msg, "not found") {
		return &ModelNotFoundError{Model: modelFromMessage(msg)}
	}
	return &UpstreamError{Status: resp.StatusCode, Message: msg}
}

// modelFromMessage extracts x from Ollama's `model "x" not found, ...` or
// `model 'x' not found`.
func modelFromMessage(msg string) string {
	for _, q := range []string{`"`, `'`} {
		if _, rest, ok := strings.Cut(msg, q); ok {
			if m, _, ok := strings.Cut(rest, q); ok {
				return m
			}
		}
	}
	return ""
}

func mapClientError(ctx context.Context, err error, model string) error {
	if err == nil {
		return nil
	}
	var se api.StatusError
	if errors.As(err, &se) {
		if se.StatusCode == http.StatusNotFound && strings.Contains(se.ErrorMessage, "not found") {
			if m := modelFromMessage(se.ErrorMessage); m != "" {
				model = m
			}
			return &ModelNotFoundError{Model: model}
		}
		msg := se.ErrorMessage
		if msg == "" {
			msg = se.Status
		}
		return &UpstreamError{Status: se.StatusCode, Message: msg}
	}
	return classify(ctx, err)
}

// classify turns transport errors into the sentinels; ctx's own
// cancellation is returned as ctx.Err() so callers can tell it apart.
func classify(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var ie *idleError
	if errors.As(err, &ie) {
		return ie.err
	}
	// A dial that failed, by refusal or by timeout, never reached the
	// engine: unavailable (and so safe to retry elsewhere), not a timeout.
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if isTimeout(err) {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &UpstreamError{Message: "connection closed mid-response"}
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) {
		return &UpstreamError{Message: "undecodable answer: " + err.Error()}
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}
