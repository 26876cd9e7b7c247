package ui

import "time"

// Traffic is the model traffic of the page's counters and model table:
// totals since start, and rates and quantiles over the last minute.
type Traffic struct {
	Requests uint64         `json:"requests"` // finished model requests since start
	Errors   uint64         `json:"errors"`   // of those, 5xx or 429
	WindowS  float64        `json:"window_s"` // what the rates and quantiles cover
	All      ModelSummary   `json:"all"`
	Models   []ModelSummary `json:"models"` // the models with a series, then OtherModels
}

// ModelSummary is one model's (or all models') row of the model table.
type ModelSummary struct {
	Name      string  `json:"name"`
	Requests  uint64  `json:"requests"` // since start, or since the model got its series
	Errors    uint64  `json:"errors"`
	RPS       float64 `json:"rps"`
	ErrorRate float64 `json:"error_rate"` // share, 0..1
	P50MS     float64 `json:"p50_ms"`
	P95MS     float64 `json:"p95_ms"`
	TTFTP50MS float64 `json:"ttft_p50_ms"`
	TTFTP95MS float64 `json:"ttft_p95_ms"`
}

// minuteQueue is the queue's last minute.
type minuteQueue struct {
	waitP95MS float64
	rejected  int // 429s
}

// summary merges the completed intervals of the last minute.
func (h *History) summary() (Traffic, minuteQueue) {
	h.rmu.RLock()
	defer h.rmu.RUnlock()
	k := int(min(h.seq, int64(len(h.accs)-1)))
	var win accum
	for j := 1; j <= k; j++ {
		a := &h.accs[(h.pos-j+len(h.accs))%len(h.accs)]
		for i := range a.models {
			m, w := &a.models[i], &win.models[i]
			w.n += m.n
			w.errs += m.errs
			w.rejected += m.rejected
			w.lat.merge(&m.lat)
			w.ttft.merge(&m.ttft)
		}
		win.wait.merge(&a.wait)
	}
	window := time.Duration(max(k, 1)) * h.interval

	h.mu.Lock()
	names, tot, all := h.slots, h.totals, h.all
	h.mu.Unlock()

	tr := Traffic{Requests: all.requests, Errors: all.errors, WindowS: window.Seconds(), Models: []ModelSummary{}}
	var allWin modelAcc
	mq := minuteQueue{waitP95MS: win.wait.quantile(0.95)}
	for i := range win.models {
		w, t := &win.models[i], tot[i]
		allWin.n += w.n
		allWin.errs += w.errs
		allWin.lat.merge(&w.lat)
		allWin.ttft.merge(&w.ttft)
		mq.rejected += int(w.rejected)
		named := i < MaxModels && names[i].used
		if !named && (i < MaxModels || t.requests == 0 && w.n == 0) {
			continue
		}
		tr.Models = append(tr.Models, w.summary(slotLabel(names, i), t, window))
	}
	tr.All = allWin.summary("", all, window)
	return tr, mq
}

func (a *modelAcc) summary(name string, t totals, window time.Duration) ModelSummary {
	s := ModelSummary{
		Name:      name,
		Requests:  t.requests,
		Errors:    t.errors,
		RPS:       round3(float64(a.n) / window.Seconds()),
		P50MS:     a.lat.quantile(0.5),
		P95MS:     a.lat.quantile(0.95),
		TTFTP50MS: a.ttft.quantile(0.5),
		TTFTP95MS: a.ttft.quantile(0.95),
	}
	if a.n > 0 {
		s.ErrorRate = round3(float64(a.errs) / float64(a.n))
	}
	return s
}
