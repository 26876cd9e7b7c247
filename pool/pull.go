package pool

import (
	"context"
	"strconv"
	"time"

	"github.com/ollama/ollama/api"
)

// Puller is the part of an engine's client that downloads a model
// (Ollama's /api/pull): fn gets each progress message; it returns when the
// model is there or with an error, promptly when ctx ends.
type Puller interface {
	Pull(ctx context.Context, model string, fn func(api.ProgressResponse) error) error
}

// Pull retry delays after a failed pull: the first, doubled up to the last.
const (
	pullRetryMin = 10 * time.Second
	pullRetryMax = 5 * time.Minute
	pullLogEvery = 5 * time.Second
)

// PullState is one model's pull on one engine, as /health reports it.
type PullState struct {
	Model     string     `json:"model"`
	Status    string     `json:"status"` // Ollama's last status line, "done", "failed" or "canceled"
	Completed int64      `json:"completed_bytes"`
	Total     int64      `json:"total_bytes"`
	Percent   float64    `json:"percent"`
	Started   time.Time  `json:"started"`
	Finished  *time.Time `json:"finished,omitempty"`
	Error     string     `json:"error,omitempty"`
	NextTry   *time.Time `json:"next_try,omitempty"`
	Active    bool       `json:"active"`

	failures   int
	lastLogged time.Time
}

// pull pulls each model of missing on e, one after the other, skipping one
// whose last attempt failed recently, and reports whether all succeeded.
// The engine's state and reason show the progress meanwhile.
func (p *Pool) pull(ctx context.Context, e *Engine, missing []string) bool {
	puller, ok := e.backend.(Puller)
	if !ok {
		return false
	}
	all := true
	for _, model := range missing {
		p.mu.Lock()
		// Engines often share one models volume: one pull of a model at a
		// time, the others list their models again when it is done.
		if by, busy := p.pulling[model]; busy && by != e {
			if e.state == StateStarting {
				e.reason = "waiting for " + by.name + "'s pull of " + model
			}
			e.tagsAt = time.Time{}
			p.mu.Unlock()
			all = false
			continue
		}
		if e.pulls == nil {
			e.pulls = map[string]*PullState{}
		}
		st := e.pulls[model]
		if st != nil && st.NextTry != nil && p.now().Before(*st.NextTry) {
			p.mu.Unlock()
			all = false
			continue
		}
		if st == nil {
			st = &PullState{Model: model}
			e.pulls[model] = st
		}
		st.Status, st.Error, st.NextTry, st.Finished = "starting", "", nil, nil
		st.Started, st.Active, st.Completed, st.Total, st.Percent = p.now(), true, 0, 0, 0
		if e.state == StateStarting {
			e.reason = "pulling " + model
		}
		p.pulling[model] = e
		p.mu.Unlock()
		p.log.Info("pulling missing model", "engine", e.name, "model", model)
		err := puller.Pull(ctx, model, func(r api.ProgressResponse) error {
			p.pullProgress(e, st, r)
			return nil
		})
		if !p.pullDone(ctx, e, st, err) {
			all = false
		}
	}
	return all
}

func (p *Pool) pullProgress(e *Engine, st *PullState, r api.ProgressResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := r.Status != st.Status
	st.Status = r.Status
	if r.Total > 0 {
		st.Completed, st.Total = r.Completed, r.Total
		st.Percent = float64(int(1000*float64(r.Completed)/float64(r.Total))) / 10
	}
	if e.state == StateStarting {
		e.reason = "pulling " + st.Model + ": " + st.Status
		if st.Total > 0 {
			e.reason += " " + percent(st.Percent)
		}
	}
	if now := p.now(); changed || now.Sub(st.lastLogged) >= pullLogEvery {
		st.lastLogged = now
		p.log.Info("pull progress", "engine", e.name, "model", st.Model, "status", r.Status,
			"completed_bytes", st.Completed, "total_bytes", st.Total, "percent", st.Percent)
	}
}

func (p *Pool) pullDone(ctx context.Context, e *Engine, st *PullState, err error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pulling, st.Model)
	now := p.now()
	st.Active, st.Finished = false, &now
	if err == nil {
		st.Status, st.failures, st.Percent = "done", 0, 100
		p.log.Info("model pulled", "engine", e.name, "model", st.Model, "took", now.Sub(st.Started).Round(time.Millisecond))
		return true
	}
	if ctx.Err() != nil {
		st.Status = "canceled"
		return false
	}
	st.failures++
	wait := min(pullRetryMin<<min(st.failures-1, 5), pullRetryMax)
	next := now.Add(wait)
	st.Status, st.Error, st.NextTry = "failed", err.Error(), &next
	if e.state == StateStarting {
		e.reason = "pull of " + st.Model + " failed: " + err.Error()
	}
	p.log.Warn("pull failed", "engine", e.name, "model", st.Model, "err", err, "retry_in", wait)
	return false
}

// percent formats a percentage with one decimal.
func percent(f float64) string {
	i := int(f * 10)
	return strconv.Itoa(i/10) + "." + strconv.Itoa(i%10) + "%"
}
