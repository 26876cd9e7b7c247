package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/aurax/aurax/metrics"
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
	// Loaded names the models the one Ollama has in memory. It is read
	// only while /health has no checks.engines (before the engine pool).
	Loaded(ctx context.Context) ([]string, error)
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
	// EnginesFrom says where Engines came from: "engines" (/health's
	// checks.engines, the pool) or "ollama" (one engine made from
	// checks.ollama).
	EnginesFrom string            `json:"engines_from"`
	Engines     []Engine          `json:"engines"`
	Models      ModelsCheck       `json:"models"`
	Queue       Queue             `json:"queue"`
	Traffic     Traffic           `json:"traffic"`
	Scaling     *Scaling          `json:"scaling"` // null: no controller
	RAG         RAG               `json:"rag"`
	GPU         metrics.GPUStatus `json:"gpu"`
	History     HistoryInfo       `json:"history"`
}

// Engine is one inference engine, in the shape of /health's
// checks.engines entries.
type Engine struct {
	Name          string             `json:"name"`
	URL           string             `json:"url"`
	Source        string             `json:"source"` // static, dns, docker
	State         string             `json:"state"`  // ready, starting, down, cooldown, draining
	OK            bool               `json:"ok"`
	Reason        string             `json:"reason"`
	Version       string             `json:"version"`
	Models        []string           `json:"models"`
	Loaded        []string           `json:"loaded"`
	InFlight      int                `json:"in_flight"`
	Slots         int                `json:"slots"`
	ServiceEWMAMS map[string]float64 `json:"service_ewma_ms"`
	TTFTEWMAMS    map[string]float64 `json:"ttft_ewma_ms"`
	Requests      uint64             `json:"requests"`
	Errors        uint64             `json:"errors"`
	LastError     string             `json:"last_error"`
	CheckedAt     time.Time          `json:"checked_at"`
}

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

// health is the part of /health's body the page reads. Engines is a
// pointer so that an empty list (a pool with no engine) is told apart from
// a body without the field (before the pool).
type health struct {
	Status   string    `json:"status"`
	Version  string    `json:"version"`
	UptimeS  int64     `json:"uptime_s"`
	Draining bool      `json:"draining"`
	Engines  *[]Engine `json:"engines"`
	Checks   struct {
		Ollama *ollamaCheck      `json:"ollama"`
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

type ollamaCheck struct {
	OK        bool      `json:"ok"`
	URL       string    `json:"url"`
	Version   string    `json:"version"`
	Error     string    `json:"error"`
	CheckedAt time.Time `json:"checked_at"`
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

// engines returns the engines of h: checks.engines as they are, or one
// engine made from checks.ollama, the queue and what the history counted.
// loaded is Source.Loaded's answer (nil: unknown).
func (h *health) engines(q metrics.QueueStats, up upstreamStats, loaded []string) ([]Engine, string) {
	if h.Engines != nil {
		es := *h.Engines
		if es == nil {
			es = []Engine{}
		}
		return es, "engines"
	}
	o := h.Checks.Ollama
	if o == nil {
		return []Engine{}, "ollama"
	}
	e := Engine{Name: hostOf(o.URL), URL: o.URL, Source: "static", State: "ready", OK: o.OK, Version: o.Version,
		Loaded: loaded, InFlight: q.InFlight, Slots: q.Slots, ServiceEWMAMS: up.serviceMS, TTFTEWMAMS: up.ttftMS,
		Requests: up.requests, Errors: up.errors, LastError: o.Error, CheckedAt: o.CheckedAt}
	m := h.Checks.Models
	if m.DefaultPresent {
		e.Models = append(e.Models, m.Default)
	}
	if m.EmbeddingPresent && m.Embedding != m.Default {
		e.Models = append(e.Models, m.Embedding)
	}
	for _, l := range loaded {
		if !slices.ContainsFunc(e.Models, func(n string) bool { return sameModel(n, l) }) {
			e.Models = append(e.Models, l)
		}
	}
	switch {
	case !o.OK:
		e.State, e.Reason = "down", "unreachable: "+o.Error
	case !m.DefaultPresent && m.Default != "":
		e.Reason = "default model " + strconv.Quote(m.Default) + " not present"
	}
	if e.Models == nil {
		e.Models = []string{}
	}
	if e.Loaded == nil {
		e.Loaded = []string{}
	}
	return []Engine{e}, "ollama"
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

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

// reasons says why h is not ok, from its checks (the engines, the one
// Ollama, the default models, pulls, the vector store, the queue).
func (h *health) reasons(engines []Engine) []string {
	out := []string{}
	if h.Draining {
		out = append(out, "draining: shutting down, new requests are refused")
	}
	ready := 0
	for _, e := range engines {
		if e.OK && (e.State == "ready" || e.State == "") {
			ready++
			continue
		}
		why := e.Reason
		if why == "" {
			why = e.LastError
		}
		r := "engine " + e.Name + " " + e.State
		if why != "" {
			r += ": " + why
		}
		if !(h.Engines == nil && e.OK) { // the one Ollama's missing model is said below
			out = append(out, r)
		}
	}
	if h.Engines != nil && ready == 0 {
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
	if m.Default != "" && !m.DefaultPresent && (h.Checks.Ollama == nil || h.Checks.Ollama.OK || h.Engines != nil) {
		missing("default", m.Default)
	}
	if m.Embedding != "" && !m.EmbeddingPresent && (h.Checks.Ollama == nil || h.Checks.Ollama.OK || h.Engines != nil) {
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

func pullOf(pulling map[string]string, name string) string {
	for m, p := range pulling {
		if sameModel(m, name) {
			return p
		}
	}
	return ""
}
