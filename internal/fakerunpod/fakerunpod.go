// Package fakerunpod is a local fake of RunPod's REST API v2 for the
// scaling provider's tests: GET and PATCH /v2/serverless/{id}, GET
// /v2/serverless/{id}/workers, and the queue API's GET /v2/{id}/health. It
// rejects what the real API rejects (a missing or wrong Bearer key, a wrong
// method, unknown fields, wrong types, impossible bounds), records every
// request, and injects 429 and 5xx answers on demand. Replay (replay.go)
// plays RunPod's queue and scaler on a clock so /health reports a trace.
package fakerunpod

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Endpoint is the settings state of the fake's one endpoint.
type Endpoint struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Workers Workers `json:"workers"`
	Scaling Scaling `json:"scaling"`
}

// Workers are the worker bounds.
type Workers struct {
	Min         int `json:"min"`
	Max         int `json:"max"`
	IdleTimeout int `json:"idleTimeout"`
}

// Scaling is RunPod's scaler setting: queueDelay is seconds as a JSON
// number (fractional allowed), requestCount an integer.
type Scaling struct {
	Type         string  `json:"type"`
	QueueDelay   float64 `json:"queueDelay,omitempty"`
	RequestCount int     `json:"requestCount,omitempty"`
}

// Jobs are /health's job counters.
type Jobs struct {
	Completed  int64 `json:"completed"`
	Failed     int64 `json:"failed"`
	InProgress int64 `json:"inProgress"`
	InQueue    int64 `json:"inQueue"`
	Retried    int64 `json:"retried"`
}

// Health is a /health answer.
type Health struct {
	Jobs    Jobs             `json:"jobs"`
	Workers map[string]int64 `json:"workers"`
}

// Request is one request the fake received, as it saw it.
type Request struct {
	Time   time.Time
	Method string
	Path   string
	Auth   string
	Body   string
	Status int
}

// Failure is an answer to inject instead of serving.
type Failure struct {
	Method  string // "" any method
	Status  int
	Header  http.Header
	Body    string
	Applied bool // a PATCH is applied before the failure is returned (a timeout after the change)
}

// API is the fake. It is an http.Handler; serve it with httptest.NewServer
// or call it in memory (Transport).
type API struct {
	Key   string
	Quota int // largest workers.max the account allows
	Now   func() time.Time

	mu       sync.Mutex
	ep       Endpoint
	health   func() Health
	onChange func(Endpoint)
	fails    []Failure
	reqs     []Request
}

// New returns a fake holding ep, accepting key.
func New(key string, ep Endpoint) *API {
	return &API{Key: key, Quota: 100, Now: time.Now, ep: ep,
		health: func() Health { return Health{Workers: map[string]int64{"idle": int64(ep.Workers.Min)}} }}
}

// SetHealth makes /health answer f().
func (a *API) SetHealth(f func() Health) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.health = f
}

// OnChange calls f with the new settings after every applied PATCH.
func (a *API) OnChange(f func(Endpoint)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onChange = f
}

// Fail queues failures for the next matching requests, in order.
func (a *API) Fail(f ...Failure) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fails = append(a.fails, f...)
}

// Endpoint returns the current settings.
func (a *API) Endpoint() Endpoint {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ep
}

// SetEndpoint replaces the settings (as a change made in RunPod's console).
func (a *API) SetEndpoint(ep Endpoint) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ep = ep
}

// Requests returns every request received, in order.
func (a *API) Requests() []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Request(nil), a.reqs...)
}

// Count returns how many requests had method (any: "").
func (a *API) Count(method string) int {
	n := 0
	for _, r := range a.Requests() {
		if method == "" || r.Method == method {
			n++
		}
	}
	return n
}

// Transport returns a RoundTripper that serves requests in memory (for
// testing/synctest, where loopback I/O does not count as blocked).
func (a *API) Transport() http.RoundTripper { return inMemory{a} }

type inMemory struct{ h http.Handler }

func (t inMemory) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	t.h.ServeHTTP(rec, r)
	return &http.Response{StatusCode: rec.status, Status: fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)),
		Header: rec.header, Body: io.NopCloser(&rec.body), Request: r, ProtoMajor: 1, ProtoMinor: 1}, nil
}

type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if !r.wrote {
		r.status, r.wrote = s, true
	}
}
func (r *recorder) Write(b []byte) (int, error) { r.WriteHeader(http.StatusOK); return r.body.Write(b) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	a.mu.Lock()
	rec := Request{Time: a.Now(), Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Body: string(body)}
	status := a.serve(w, r, body)
	rec.Status = status
	a.reqs = append(a.reqs, rec)
	a.mu.Unlock()
}

// serve answers under a.mu and returns the status it sent.
func (a *API) serve(w http.ResponseWriter, r *http.Request, body []byte) int {
	if r.Header.Get("Authorization") != "Bearer "+a.Key || a.Key == "" {
		apiError(w, http.StatusUnauthorized, "unauthorized")
		return http.StatusUnauthorized
	}
	var route string
	switch p := r.URL.Path; {
	case p == "/v2/serverless/"+a.ep.ID:
		route = "endpoint"
	case p == "/v2/serverless/"+a.ep.ID+"/workers":
		route = "workers"
	case p == "/v2/"+a.ep.ID+"/health":
		route = "health"
	case strings.HasPrefix(p, "/v2/serverless/") || strings.HasSuffix(p, "/health"):
		apiError(w, http.StatusNotFound, "endpoint not found")
		return http.StatusNotFound
	default:
		apiError(w, http.StatusNotFound, "not found")
		return http.StatusNotFound
	}
	allowed := map[string]string{"endpoint": "GET PATCH", "workers": "GET", "health": "GET"}[route]
	if !strings.Contains(allowed, r.Method) || r.Method == "" {
		w.Header().Set("Allow", strings.ReplaceAll(allowed, " ", ", "))
		apiError(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
		return http.StatusMethodNotAllowed
	}
	if r.Method == http.MethodGet && len(body) > 0 {
		apiError(w, http.StatusBadRequest, "GET takes no body")
		return http.StatusBadRequest
	}
	var fail *Failure
	for i, f := range a.fails {
		if f.Method == "" || f.Method == r.Method {
			fail = &a.fails[i]
			a.fails = append(a.fails[:i:i], a.fails[i+1:]...)
			break
		}
	}
	if fail != nil && !fail.Applied {
		return a.inject(w, *fail)
	}
	switch route {
	case "endpoint":
		if r.Method == http.MethodPatch {
			status, answer := a.patch(r, body)
			if status == http.StatusOK && fail != nil {
				return a.inject(w, *fail)
			}
			writeJSON(w, status, answer)
			return status
		}
		writeJSON(w, http.StatusOK, a.endpointObject())
	case "workers":
		h := a.health()
		s := map[string]int64{"running": h.Workers["running"], "idle": h.Workers["idle"],
			"initializing": h.Workers["initializing"], "throttled": h.Workers["throttled"], "unhealthy": h.Workers["unhealthy"]}
		var total int64
		for _, v := range s {
			total += v
		}
		s["total"] = total
		writeJSON(w, http.StatusOK, map[string]any{"summary": s, "workers": []any{}})
	case "health":
		writeJSON(w, http.StatusOK, a.health())
	}
	return http.StatusOK
}

func (a *API) inject(w http.ResponseWriter, f Failure) int {
	for k, v := range f.Header {
		w.Header()[k] = v
	}
	if f.Body == "" {
		f.Body = fmt.Sprintf(`{"error":"%s"}`, http.StatusText(f.Status))
	}
	w.WriteHeader(f.Status)
	_, _ = io.WriteString(w, f.Body)
	return f.Status
}

// patchBody is what PATCH accepts: unknown fields are rejected at every
// level, and numbers must be integers except queueDelay (seconds, any
// positive number).
type patchBody struct {
	Name    *string `json:"name"`
	Workers *struct {
		Min         *int `json:"min"`
		Max         *int `json:"max"`
		IdleTimeout *int `json:"idleTimeout"`
	} `json:"workers"`
	Scaling *struct {
		Type         *string  `json:"type"`
		QueueDelay   *float64 `json:"queueDelay"`
		RequestCount *int     `json:"requestCount"`
	} `json:"scaling"`
}

func (a *API) patch(r *http.Request, body []byte) (int, any) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return http.StatusUnsupportedMediaType, errBody("content-type %q: want application/json", ct)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var p patchBody
	if err := dec.Decode(&p); err != nil || dec.More() {
		return http.StatusBadRequest, errBody("invalid body: %v", err)
	}
	ep := a.ep
	if p.Name != nil {
		ep.Name = *p.Name
	}
	if p.Workers != nil {
		if p.Workers.Min != nil {
			ep.Workers.Min = *p.Workers.Min
		}
		if p.Workers.Max != nil {
			ep.Workers.Max = *p.Workers.Max
		}
		if p.Workers.IdleTimeout != nil {
			if *p.Workers.IdleTimeout < 1 || *p.Workers.IdleTimeout > 3600 {
				return http.StatusBadRequest, errBody("workers.idleTimeout %d outside [1, 3600]", *p.Workers.IdleTimeout)
			}
			ep.Workers.IdleTimeout = *p.Workers.IdleTimeout
		}
	}
	if s := p.Scaling; s != nil {
		if s.Type == nil {
			return http.StatusBadRequest, errBody("scaling.type is required")
		}
		switch *s.Type {
		case "QUEUE_DELAY":
			if s.QueueDelay == nil || *s.QueueDelay <= 0 || s.RequestCount != nil {
				return http.StatusBadRequest, errBody("QUEUE_DELAY takes queueDelay > 0 only")
			}
			ep.Scaling = Scaling{Type: *s.Type, QueueDelay: *s.QueueDelay}
		case "REQUEST_COUNT":
			if s.RequestCount == nil || *s.RequestCount < 1 || s.QueueDelay != nil {
				return http.StatusBadRequest, errBody("REQUEST_COUNT takes requestCount >= 1 only")
			}
			ep.Scaling = Scaling{Type: *s.Type, RequestCount: *s.RequestCount}
		default:
			return http.StatusBadRequest, errBody("scaling.type %q is not QUEUE_DELAY or REQUEST_COUNT", *s.Type)
		}
	}
	switch {
	case ep.Workers.Min < 0 || ep.Workers.Max < 0:
		return http.StatusBadRequest, errBody("workers must not be negative")
	case ep.Workers.Min > ep.Workers.Max:
		return http.StatusBadRequest, errBody("workers.min %d above workers.max %d", ep.Workers.Min, ep.Workers.Max)
	case ep.Workers.Max > a.Quota:
		return http.StatusBadRequest, errBody("workers.max %d above the account quota %d", ep.Workers.Max, a.Quota)
	}
	a.ep = ep
	if a.onChange != nil {
		a.onChange(ep)
	}
	return http.StatusOK, ep
}

// readOnly are fields a real endpoint object carries besides the settings
// the provider manages (names as RunPod's endpoint objects publish them);
// a client must ignore them.
var readOnly = map[string]any{
	"computeType": "GPU", "gpuTypeIds": []string{"NVIDIA GeForce RTX 4090"}, "gpuCount": 1,
	"templateId": "tmpl0fake", "version": 3, "executionTimeoutMs": 600000, "flashboot": true,
	"dataCenterIds": []string{"EU-RO-1"}, "env": map[string]string{"AURAX_PROFILE": "prod"},
	"createdAt": "2026-01-02T03:04:05Z",
}

// endpointObject is GET /v2/serverless/{id}'s answer: the endpoint's
// settings and the read-only fields.
func (a *API) endpointObject() map[string]any {
	obj := map[string]any{}
	for k, v := range readOnly {
		obj[k] = v
	}
	obj["id"], obj["name"], obj["workers"], obj["scaling"] = a.ep.ID, a.ep.Name, a.ep.Workers, a.ep.Scaling
	return obj
}

func errBody(format string, args ...any) map[string]string {
	return map[string]string{"error": fmt.Sprintf(format, args...)}
}
