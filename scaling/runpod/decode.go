package runpod

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Endpoint is the part of an endpoint's settings the provider manages, as
// GET /v2/serverless/{id} returns them (the same shape PATCH takes; other
// fields of the answer are ignored).
type Endpoint struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Workers Workers `json:"workers"`
	Scaling Scaler  `json:"scaling"`
}

// Workers are an endpoint's worker bounds. IdleTimeout is in seconds.
type Workers struct {
	Min         int `json:"min"`
	Max         int `json:"max"`
	IdleTimeout int `json:"idleTimeout"`
}

// Scaler is RunPod's own scaler: Type QUEUE_DELAY reads QueueDelay, the
// seconds a job may wait before a worker is added (a JSON number, so
// fractional: 2.5); REQUEST_COUNT reads RequestCount, the requests per
// worker (an integer).
type Scaler struct {
	Type         string  `json:"type"`
	QueueDelay   float64 `json:"queueDelay,omitempty"`
	RequestCount int     `json:"requestCount,omitempty"`
}

// Value is the scaler's number for its type.
func (s Scaler) Value() float64 {
	if s.Type == ScalerRequestCount {
		return float64(s.RequestCount)
	}
	return s.QueueDelay
}

// WorkerSummary is GET /v2/serverless/{id}/workers' summary.
type WorkerSummary struct {
	Running      int `json:"running"`
	Idle         int `json:"idle"`
	Initializing int `json:"initializing"`
	Throttled    int `json:"throttled"`
	Unhealthy    int `json:"unhealthy"`
	Total        int `json:"total"`
}

// Health is GET /v2/{id}/health: the job counters and the workers by state.
// Workers is a map because its keys have changed over time.
type Health struct {
	Jobs struct {
		Completed  int64 `json:"completed"`
		Failed     int64 `json:"failed"`
		InProgress int64 `json:"inProgress"`
		InQueue    int64 `json:"inQueue"`
		Retried    int64 `json:"retried"`
	} `json:"jobs"`
	Workers map[string]int64 `json:"workers"`
}

// Serving is the number of workers that can take jobs now: idle plus
// running, or "ready" when the answer counts them under that key instead
// (whichever is larger: they overlap when both are present).
func (h Health) Serving() int {
	return int(max(h.Workers["idle"]+h.Workers["running"], h.Workers["ready"]))
}

func decodeStrict(b []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	if dec.More() {
		return fmt.Errorf("decode %s: trailing data", what)
	}
	return nil
}

// maxQueueDelay bounds a decoded queueDelay: a day, far above any real
// setting, so that a garbage number is an error rather than a scaler that
// never fires.
const maxQueueDelay = 24 * 60 * 60

// DecodeEndpoint decodes an endpoint as GET /v2/serverless/{id} returns
// it: fields other than id, name, workers and scaling are ignored; worker
// bounds and requestCount must be integers, queueDelay any number (seconds).
// Impossible bounds and negative or absurd scaler values are errors.
func DecodeEndpoint(b []byte) (Endpoint, error) {
	var e Endpoint
	if err := decodeStrict(b, &e, "endpoint"); err != nil {
		return e, err
	}
	switch q := e.Scaling.QueueDelay; {
	case e.Workers.Min < 0 || e.Workers.Max < 0 || e.Workers.IdleTimeout < 0:
		return e, fmt.Errorf("decode endpoint: negative worker setting (min %d, max %d, idleTimeout %d)", e.Workers.Min, e.Workers.Max, e.Workers.IdleTimeout)
	case e.Workers.Min > e.Workers.Max:
		return e, fmt.Errorf("decode endpoint: workers.min %d above workers.max %d", e.Workers.Min, e.Workers.Max)
	case q < 0 || q > maxQueueDelay:
		return e, fmt.Errorf("decode endpoint: scaling.queueDelay %g outside [0, %d] seconds", q, maxQueueDelay)
	case e.Scaling.RequestCount < 0:
		return e, fmt.Errorf("decode endpoint: negative scaling.requestCount %d", e.Scaling.RequestCount)
	}
	return e, nil
}

// DecodeWorkers decodes the workers answer's summary.
func DecodeWorkers(b []byte) (WorkerSummary, error) {
	var w struct {
		Summary *WorkerSummary `json:"summary"`
	}
	if err := decodeStrict(b, &w, "workers"); err != nil {
		return WorkerSummary{}, err
	}
	if w.Summary == nil {
		return WorkerSummary{}, errors.New("decode workers: no summary")
	}
	s := *w.Summary
	if s.Running < 0 || s.Idle < 0 || s.Initializing < 0 || s.Throttled < 0 || s.Unhealthy < 0 || s.Total < 0 {
		return s, errors.New("decode workers: negative count")
	}
	return s, nil
}

// DecodeHealth decodes a /health answer. Worker entries that are not
// counts (a future shape) are skipped; negative counts are errors.
func DecodeHealth(b []byte) (Health, error) {
	var raw struct {
		Jobs    json.RawMessage            `json:"jobs"`
		Workers map[string]json.RawMessage `json:"workers"`
	}
	var h Health
	if err := decodeStrict(b, &raw, "health"); err != nil {
		return h, err
	}
	if len(raw.Jobs) == 0 || bytes.Equal(raw.Jobs, []byte("null")) {
		return h, errors.New("decode health: no jobs")
	}
	if err := json.Unmarshal(raw.Jobs, &h.Jobs); err != nil {
		return h, fmt.Errorf("decode health jobs: %w", err)
	}
	j := h.Jobs
	if j.Completed < 0 || j.Failed < 0 || j.InProgress < 0 || j.InQueue < 0 || j.Retried < 0 {
		return h, errors.New("decode health: negative job count")
	}
	h.Workers = make(map[string]int64, len(raw.Workers))
	for k, v := range raw.Workers {
		var n int64
		if json.Unmarshal(v, &n) != nil {
			continue
		}
		if n < 0 || n > 1<<31 {
			return h, fmt.Errorf("decode health: workers.%s = %d", k, n)
		}
		h.Workers[k] = n
	}
	return h, nil
}
