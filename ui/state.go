package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/pool"
	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/scaling"
)

// ErrNoRAG is what Source.Collections returns when retrieval is off.
var ErrNoRAG = errors.New("retrieval is off")

// Source is what the status page reads from the server it runs in. Every
// method is called on each refresh of each open page: they must be cheap,
// and those taking a ctx must return when it ends.
type Source interface {
	Gauges
	// Health is the body of GET /health, whatever its status code.
	Health(ctx context.Context) ([]byte, error)
	// Collections lists the RAG collections; ErrNoRAG when retrieval is off.
	Collections(ctx context.Context) ([]rag.CollectionInfo, error)
}

// State is the body of GET /ui/api/state: everything the page shows but
// the charts.
type State struct {
	Time     time.Time `json:"time"`
	Replica  string    `json:"replica"` // the host that answered, as several may be behind nginx
	Status   string    `json:"status"`  // ok, degraded, down, unknown (health unreadable)
	Reasons  []string  `json:"reasons"` // why, when not ok
	Version  string    `json:"version"`
	UptimeS  int64     `json:"uptime_s"`
	Draining bool      `json:"draining"`
	// Engines are the engine pool's, as /health lists them: a single
	// Ollama is a pool of one.
	Engines []Engine          `json:"engines"`
	Models  ModelsCheck       `json:"models"`
	Queue   Queue             `json:"queue"`
	Traffic Traffic           `json:"traffic"`
	Scaling *Scaling          `json:"scaling"` // null: no controller
	RAG     RAG               `json:"rag"`
	GPU     metrics.GPUStatus `json:"gpu"`
	History HistoryInfo       `json:"history"`
}

// Engine is one inference engine as /health lists it, decoded from that
// JSON into the pool's own type, so that the page shows exactly what
// /health says. State is the pool's: unknown (static, not probed yet),
// starting (joining: pulling, warming), ready, down (its probe failed),
// cooldown (a request failed), draining.
type Engine = pool.EngineStatus

// ModelsCheck is /health's checks.models.
type ModelsCheck struct {
	Default          string `json:"default"`
	DefaultPresent   bool   `json:"default_present"`
	Embedding        string `json:"embedding"`
	EmbeddingPresent bool   `json:"embedding_present"`
}

// Queue is the admission queue now and over the last minute.
type Queue struct {
	Waiting    int     `json:"waiting"`
	InFlight   int     `json:"in_flight"`
	Slots      int     `json:"slots"`
	MaxWaiting int     `json:"max_waiting"`
	WaitP95MS  float64 `json:"wait_p95_ms"` // last minute
	Rejected1m int     `json:"rejected_1m"` // 429s in the last minute
}

// Scaling is the controller as the page shows it.
type Scaling struct {
	Policy    string            `json:"policy"`
	Mode      string            `json:"mode"`
	Provider  string            `json:"provider"`
	DryRun    string            `json:"dry_run,omitempty"` // why nothing is applied
	Leader    string            `json:"leader"`
	IsLeader  bool              `json:"is_leader"`
	Current   int               `json:"current"`
	Desired   int               `json:"desired"`
	Min       int               `json:"min"`
	Max       int               `json:"max"`
	Paused    bool              `json:"paused"`
	Manual    *scaling.Manual   `json:"manual,omitempty"`
	Cooldowns scaling.Cooldowns `json:"cooldowns"`
	// Admin says whether the admin endpoints are open (an admin key is
	// configured); the key itself never leaves the server.
	Admin     bool       `json:"admin"`
	Decisions []Decision `json:"decisions"` // the notable ones of the history's span, oldest first
}

// RAG is the vector store and its collections.
type RAG struct {
	Enabled     bool                 `json:"enabled"`
	OK          bool                 `json:"ok"`
	Store       string               `json:"store,omitempty"`
	Error       string               `json:"error,omitempty"`
	Collections []rag.CollectionInfo `json:"collections"`
}

// HistoryInfo tells the page how to draw the charts.
type HistoryInfo struct {
	IntervalS float64 `json:"interval_s"`
	SpanS     float64 `json:"span_s"`
}

// health is the part of /health's body the page reads.
type health struct {
	Status   string   `json:"status"`
	Version  string   `json:"version"`
	UptimeS  int64    `json:"uptime_s"`
	Draining bool     `json:"draining"`
	Engines  []Engine `json:"engines"`
	Checks   struct {
		Models ModelsCheck       `json:"models"`
		GPU    metrics.GPUStatus `json:"gpu"`
		RAG    struct {
			Enabled bool   `json:"enabled"`
			OK      bool   `json:"ok"`
			Store   string `json:"store"`
			Error   string `json:"error"`
		} `json:"rag"`
		Queue struct {
			Waiting    int `json:"waiting"`
			MaxWaiting int `json:"max_waiting"`
		} `json:"queue"`
		Pull struct {
			Models []struct {
				Model   string  `json:"model"`
				Status  string  `json:"status"`
				Percent float64 `json:"percent"`
				Error   string  `json:"error"`
				Active  bool    `json:"active"`
			} `json:"models"`
		} `json:"pull"`
	} `json:"checks"`
}

// decodeHealth parses a /health body.
func decodeHealth(body []byte) (*health, error) {
	var h health
	if err := json.Unmarshal(body, &h); err != nil {
		return nil, fmt.Errorf("decode /health: %w", err)
	}
	switch h.Status {
	case "ok", "degraded", "down":
	default:
		return nil, fmt.Errorf("decode /health: status %q is not ok, degraded or down", h.Status)
	}
	return &h, nil
}

// sameModel compares Ollama model names with and without ":latest".
func sameModel(a, b string) bool {
	trim := func(s string) string {
		if len(s) > 7 && s[len(s)-7:] == ":latest" {
			return s[:len(s)-7]
		}
		return s
	}
	return trim(a) == trim(b)
}

// reasons says why h is not ok, from its checks (the engines, the default
// models, pulls, the vector store, the queue).
func (h *health) reasons() []string {
	out := []string{}
	if h.Draining {
		out = append(out, "draining: shutting down, new requests are refused")
	}
	ready := 0
	for _, e := range h.Engines {
		if e.OK {
			ready++
			continue
		}
		out = append(out, "engine "+e.Name+" "+e.State+": "+engineWhy(e))
	}
	if ready == 0 {
		out = append(out, "no engine is ready")
	}
	m := h.Checks.Models
	pulling := map[string]string{}
	for _, p := range h.Checks.Pull.Models {
		switch {
		case p.Active:
			pulling[p.Model] = "pulling: " + p.Status + " " + strconv.FormatFloat(p.Percent, 'f', 0, 64) + "%"
		case p.Error != "":
			pulling[p.Model] = "pull failed: " + p.Error
		}
	}
	missing := func(kind, name string) {
		r := kind + " model " + strconv.Quote(name) + " not present"
		if p := pullOf(pulling, name); p != "" {
			r += " (" + p + ")"
		}
		out = append(out, r)
	}
	// With no engine ready no model is present: "no engine is ready" says it.
	if m.Default != "" && !m.DefaultPresent && ready > 0 {
		missing("default", m.Default)
	}
	if m.Embedding != "" && !m.EmbeddingPresent && ready > 0 {
		missing("embedding", m.Embedding)
	}
	if r := h.Checks.RAG; r.Enabled && !r.OK {
		out = append(out, "vector store "+r.Store+" unavailable: "+r.Error)
	}
	if q := h.Checks.Queue; q.Waiting > 0 && q.Waiting >= q.MaxWaiting {
		out = append(out, "admission queue full: "+strconv.Itoa(q.Waiting)+" waiting")
	}
	if len(out) == 0 && h.Status != "ok" {
		out = append(out, "/health reports "+h.Status)
	}
	return out
}

// engineWhy says why e is not serving: the pool's reason, else its last
// error, else what its state means.
func engineWhy(e Engine) string {
	switch {
	case e.Reason != "":
		return e.Reason
	case e.LastError != "":
		return e.LastError
	}
	switch e.State {
	case "unknown":
		return "not probed yet"
	case "starting":
		return "joining the pool"
	case "draining":
		return "gets no new requests"
	case "cooldown":
		return "a request failed"
	}
	return "no reason given"
}

func pullOf(pulling map[string]string, name string) string {
	for m, p := range pulling {
		if sameModel(m, name) {
			return p
		}
	}
	return ""
}
