package runpod

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Job is one job taken from the queue.
type Job struct {
	ID    string          `json:"id"`
	Input json.RawMessage `json:"input"`
}

// maxJob bounds a job's size.
const maxJob = 32 << 20

// DecodeJob decodes a job-take answer. A job without an id cannot be
// answered and is an error; a job without input is returned as is (its
// error is reported by running it).
func DecodeJob(b []byte) (Job, error) {
	var j Job
	if len(b) > maxJob {
		return j, fmt.Errorf("job: %d bytes, more than %d", len(b), maxJob)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&j); err != nil {
		return Job{}, fmt.Errorf("job: %w", err)
	}
	if dec.More() {
		return Job{}, errors.New("job: trailing data")
	}
	if j.ID == "" {
		return Job{}, errors.New("job: no id")
	}
	return j, nil
}

// Wire formats of a routed request.
const (
	FormatOpenAI = "openai"
	FormatOllama = "ollama"
)

// Request is a job input resolved to one call of AURAX's API.
type Request struct {
	Format string // FormatOpenAI or FormatOllama
	Method string
	Path   string
	Body   []byte // nil for GET
	Stream bool
}

// routes are the API calls a job may make, by format.
var routes = map[string]map[string]string{
	FormatOpenAI: {
		"/v1/chat/completions": http.MethodPost,
		"/v1/completions":      http.MethodPost,
		"/v1/embeddings":       http.MethodPost,
		"/v1/models":           http.MethodGet,
	},
	FormatOllama: {
		"/api/chat":       http.MethodPost,
		"/api/generate":   http.MethodPost,
		"/api/embed":      http.MethodPost,
		"/api/embeddings": http.MethodPost,
		"/api/tags":       http.MethodGet,
		"/api/ps":         http.MethodGet,
		"/api/version":    http.MethodGet,
	},
}

// InputError is a job input that cannot be run; its text is the job's error.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

func inputErr(format string, args ...any) error { return &InputError{fmt.Sprintf(format, args...)} }

// ParseInput resolves a job's input to the API call it asks for. Errors are
// *InputError.
func ParseInput(raw json.RawMessage) (Request, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return Request{}, inputErr("job has no input")
	}
	var in struct {
		OpenAIRoute *string         `json:"openai_route"`
		OpenAIInput json.RawMessage `json:"openai_input"`
		OllamaRoute *string         `json:"ollama_route"`
		OllamaInput json.RawMessage `json:"ollama_input"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return Request{}, inputErr("input is not an object with openai_route or ollama_route: %v", err)
	}
	var r Request
	var body json.RawMessage
	switch {
	case in.OpenAIRoute != nil && in.OllamaRoute != nil:
		return r, inputErr("input has both openai_route and ollama_route")
	case in.OpenAIRoute != nil:
		r.Format, r.Path, body = FormatOpenAI, *in.OpenAIRoute, in.OpenAIInput
	case in.OllamaRoute != nil:
		r.Format, r.Path, body = FormatOllama, *in.OllamaRoute, in.OllamaInput
	default:
		return r, inputErr("input needs openai_route (with openai_input) or ollama_route (with ollama_input)")
	}
	method, ok := routes[r.Format][r.Path]
	if !ok {
		return r, inputErr("unknown %s route %q", r.Format+"_route", r.Path)
	}
	r.Method = method
	body = bytes.TrimSpace(body)
	if method == http.MethodGet {
		return r, nil
	}
	if len(body) == 0 || bytes.Equal(body, []byte("null")) {
		return r, inputErr("%s_input is required for %s", r.Format, r.Path)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return r, inputErr("%s_input must be a JSON object", r.Format)
	}
	r.Body = body
	var stream *bool
	if s, ok := fields["stream"]; ok && !bytes.Equal(s, []byte("null")) {
		var b bool
		if err := json.Unmarshal(s, &b); err != nil {
			return r, inputErr("%s_input.stream must be a boolean", r.Format)
		}
		stream = &b
	}
	switch {
	case r.Format == FormatOpenAI:
		r.Stream = stream != nil && *stream
	case r.Path == "/api/chat" || r.Path == "/api/generate":
		r.Stream = stream == nil || *stream // Ollama streams unless told not to
	}
	return r, nil
}
