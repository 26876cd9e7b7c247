package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ollama/ollama/api"
)

// Puller is the part of the backend that downloads a model (Ollama's
// /api/pull). Pull calls fn with each progress message, returns when the
// model is there or with an error; it stops promptly when ctx ends.
type Puller interface {
	Pull(ctx context.Context, model string, fn func(api.ProgressResponse) error) error
}

// Pull retry delays after a failed pull: the first, doubled up to the last.
const (
	pullRetryMin = 10 * time.Second
	pullRetryMax = 5 * time.Minute
	pullLogEvery = 5 * time.Second
)

// PullState is one model's pull, as /health reports it.
type PullState struct {
	Model      string     `json:"model"`
	Status     string     `json:"status"` // Ollama's last status line, "done", or "failed"
	Completed  int64      `json:"completed_bytes"`
	Total      int64      `json:"total_bytes"`
	Percent    float64    `json:"percent"`
	Started    time.Time  `json:"started"`
	Finished   *time.Time `json:"finished,omitempty"`
	Error      string     `json:"error,omitempty"`
	NextTry    *time.Time `json:"next_try,omitempty"`
	Active     bool       `json:"active"`
	failures   int
	lastLogged time.Time
}

// pulls is the model pull on first start (ollama.pull_missing): Health.Run
// calls ensure after each probe that found Ollama without a configured model,
// and the pull runs there, in the health loop, so readiness stays held until
// the next probe finds the model.
type pulls struct {
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	state map[string]*PullState
}

func newPulls(log *slog.Logger) *pulls {
	return &pulls{log: log, now: time.Now, state: map[string]*PullState{}}
}

// ensure pulls each model in missing, one after the other, unless its last
// attempt failed recently. It returns when they are pulled, have failed, or
// ctx ends.
func (p *pulls) ensure(ctx context.Context, backend any, missing []string) {
	puller, ok := backend.(Puller)
	if !ok {
		return
	}
	for _, model := range missing {
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		st := p.state[model]
		if st != nil && st.NextTry != nil && p.now().Before(*st.NextTry) {
			p.mu.Unlock()
			continue
		}
		if st == nil {
			st = &PullState{Model: model}
			p.state[model] = st
		}
		st.Status, st.Error, st.NextTry, st.Finished = "starting", "", nil, nil
		st.Started, st.Active, st.Completed, st.Total, st.Percent = p.now(), true, 0, 0, 0
		p.mu.Unlock()
		p.log.Info("pulling missing model", "model", model)
		err := puller.Pull(ctx, model, func(r api.ProgressResponse) error {
			p.progress(model, r)
			return nil
		})
		p.finish(ctx, model, err)
	}
}

func (p *pulls) progress(model string, r api.ProgressResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state[model]
	changed := r.Status != st.Status
	st.Status = r.Status
	if r.Total > 0 {
		st.Completed, st.Total = r.Completed, r.Total
		st.Percent = float64(int(1000*float64(r.Completed)/float64(r.Total))) / 10
	}
	if now := p.now(); changed || now.Sub(st.lastLogged) >= pullLogEvery {
		st.lastLogged = now
		p.log.Info("pull progress", "model", model, "status", r.Status, "completed_bytes", st.Completed,
			"total_bytes", st.Total, "percent", st.Percent)
	}
}

func (p *pulls) finish(ctx context.Context, model string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state[model]
	now := p.now()
	st.Active, st.Finished = false, &now
	if err == nil {
		st.Status, st.failures, st.Percent = "done", 0, 100
		p.log.Info("model pulled", "model", model, "took", now.Sub(st.Started).Round(time.Millisecond))
		return
	}
	if ctx.Err() != nil { // shutting down: not a failure
		st.Status = "canceled"
		return
	}
	st.failures++
	wait := pullRetryMin << min(st.failures-1, 5)
	wait = min(wait, pullRetryMax)
	next := now.Add(wait)
	st.Status, st.Error, st.NextTry = "failed", err.Error(), &next
	p.log.Warn("pull failed", "model", model, "err", err, "retry_in", wait)
}

// snapshot returns the pulls in the order they were first needed, for /health.
func (p *pulls) snapshot() []PullState {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PullState, 0, len(p.state))
	for _, st := range p.state {
		out = append(out, *st)
	}
	for i := 1; i < len(out); i++ { // tiny: insertion sort by start
		for j := i; j > 0 && out[j].Started.Before(out[j-1].Started); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// reason says why readiness waits on a pull of model, or "" when none runs
// or failed.
func (p *pulls) reason(model string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state[model]
	switch {
	case st == nil:
		return ""
	case st.Active && st.Total > 0:
		return "pulling " + model + ": " + st.Status + " " + ftoa(st.Percent) + "%"
	case st.Active:
		return "pulling " + model + ": " + st.Status
	case st.Error != "":
		return "pull of " + model + " failed: " + st.Error
	}
	return ""
}

func ftoa(f float64) string {
	return itoa(int(f)) + "." + itoa(int(f*10)%10)
}

// PullMissing turns the model pull on first start on or off (config
// ollama.pull_missing). Call it before Run.
func (h *Health) PullMissing(on bool) {
	if on {
		h.pulls = newPulls(h.log)
	} else {
		h.pulls = nil
	}
}

// pullMissing pulls the configured models the last probe did not find.
func (h *Health) pullMissing(ctx context.Context) {
	if h.pulls == nil {
		return
	}
	p := h.snapshot()
	if !p.OllamaOK {
		return
	}
	var missing []string
	if !p.DefaultModel {
		missing = append(missing, h.models.Resolve(h.models.DefaultChat(), false))
	}
	if e := h.models.DefaultEmbed(); e != "" && !p.EmbedModel {
		missing = append(missing, h.models.Resolve(e, true))
	}
	if len(missing) > 0 {
		h.pulls.ensure(ctx, h.models.Backend(), missing)
	}
}

// pullReport is /health's "pull" check: enabled, and each pull's state.
func (h *Health) pullReport() map[string]any {
	if h.pulls == nil {
		return map[string]any{"enabled": false}
	}
	return map[string]any{"enabled": true, "models": h.pulls.snapshot()}
}

// pullReason is readiness's reason while model is being pulled or its pull
// failed; "" otherwise.
func (h *Health) pullReason(model string) string {
	if h.pulls == nil {
		return ""
	}
	return h.pulls.reason(model)
}
