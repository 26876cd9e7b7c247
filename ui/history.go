package ui

import (
	"context"
	"sync"
	"time"

	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/scaling"
)

// Defaults and bounds of the history.
const (
	DefaultInterval = 2 * time.Second
	DefaultSpan     = 15 * time.Minute
	// MaxModels is how many model names get series of their own; requests
	// for any other model are counted under OtherModels.
	MaxModels = 8
	// OtherModels names the series of the models beyond MaxModels (the
	// parentheses keep it apart from any real model name).
	OtherModels = "(other)"
	// maxNameLen: a longer model name is counted under OtherModels.
	maxNameLen = 128
	// maxDecisions bounds the scaling timeline.
	maxDecisions = 64
	// summaryWindow is what the queue figures and the model table cover.
	summaryWindow = time.Minute
)

// Gauges are what History reads at each interval besides what its tap
// recorded. Both methods are called from Run's goroutine and from the
// page's handlers: they must be cheap and must not block.
type Gauges interface {
	// Queue is the admission queue now.
	Queue() metrics.QueueStats
	// Scaling is the controller's state; ok is false when there is none.
	Scaling() (st scaling.Status, ok bool)
}

// HistoryOptions configures NewHistory; the zero value takes the defaults.
type HistoryOptions struct {
	Interval time.Duration    // between samples; default DefaultInterval
	Span     time.Duration    // kept; default DefaultSpan
	Now      func() time.Time // default time.Now
}

// History is the status page's memory: the last Span of traffic, queue and
// replicas, one Point per Interval, in a ring of fixed size, and the
// notable scaling decisions of that span. It is a metrics.Tap: the request
// path records into the current interval under a short lock, without
// allocating (except the first time a model name is seen); Run closes an
// interval every Interval. It is safe for concurrent use.
type History struct {
	g        Gauges
	interval time.Duration
	span     time.Duration
	now      func() time.Time

	// mu guards what the tap writes: the current interval, the model
	// names and the running totals. Lock order: rmu before mu.
	mu     sync.Mutex
	cur    *accum
	names  map[string]int
	slots  [MaxModels]slotName
	totals [MaxModels + 1]totals // index MaxModels: OtherModels
	all    totals

	// rmu guards what Run writes and the handlers read.
	rmu       sync.RWMutex
	accs      []accum // ring: cur and the completed intervals of the last summaryWindow
	pos       int     // index of cur in accs
	points    []Point // ring of the span
	head, n   int     // oldest point, count
	last      time.Time
	seq       int64               // samples taken
	active    [MaxModels]int64    // seq of each named slot's last interval with requests
	decisions []Decision          // oldest first
	lastSeen  time.Time           // newest decision record ingested
	snapNames [MaxModels]slotName // the names as of the last sample
}

type slotName struct {
	name string
	used bool
}

// accum is one interval as the tap fills it.
type accum struct {
	models [MaxModels + 1]modelAcc
	wait   hist
}

type modelAcc struct {
	n, errs, rejected uint32
	lat, ttft         hist
}

// totals are running counts since start (or since a model's slot was
// taken). The engines' own counts and service times are the pool's.
type totals struct {
	requests, errors uint64 // finished model requests; errors: 5xx or 429
}

var _ metrics.Tap = (*History)(nil)

// NewHistory returns an empty history reading g (g may be nil: no queue,
// no replicas).
func NewHistory(g Gauges, opts HistoryOptions) *History {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Span <= 0 {
		opts.Span = DefaultSpan
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	n := int(opts.Span / opts.Interval)
	m := int((summaryWindow + opts.Interval - 1) / opts.Interval)
	h := &History{
		g:        g,
		interval: opts.Interval,
		span:     time.Duration(n) * opts.Interval,
		now:      opts.Now,
		names:    make(map[string]int, MaxModels),
		accs:     make([]accum, m+1),
		points:   make([]Point, max(n, 1)),
	}
	h.cur = &h.accs[0]
	return h
}

// Interval is the time between points.
func (h *History) Interval() time.Duration { return h.interval }

// Span is how far back the points go.
func (h *History) Span() time.Duration { return h.span }

// ObserveModel implements metrics.Tap.
func (h *History) ObserveModel(r metrics.ModelResult) {
	code := r.HTTPStatus
	failed := !r.Canceled && (code >= 500 || code == 429)
	h.mu.Lock()
	i := h.index(r.ModelType)
	a := &h.cur.models[i]
	a.n++
	if failed {
		a.errs++
	}
	if code == 429 {
		a.rejected++
	}
	a.lat.add(r.Duration)
	if r.TTFT > 0 {
		a.ttft.add(r.TTFT)
	}
	h.totals[i].add(failed)
	h.all.add(failed)
	h.mu.Unlock()
}

// ObserveQueueWait implements metrics.Tap.
func (h *History) ObserveQueueWait(d time.Duration) {
	h.mu.Lock()
	h.cur.wait.add(d)
	h.mu.Unlock()
}

func (t *totals) add(failed bool) {
	t.requests++
	if failed {
		t.errors++
	}
}

// index returns name's slot, taking a free one the first time; MaxModels
// (OtherModels) when none is free. Called with mu held.
func (h *History) index(name string) int {
	if i, ok := h.names[name]; ok {
		return i
	}
	if len(name) > maxNameLen {
		return MaxModels
	}
	for i := range h.slots {
		if !h.slots[i].used {
			h.slots[i] = slotName{name: name, used: true}
			h.names[name] = i
			return i
		}
	}
	return MaxModels
}

// Run closes an interval every Interval until ctx ends, then returns nil.
// It is the only goroutine History needs.
func (h *History) Run(ctx context.Context) error {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			h.Sample()
		}
	}
}

// Sample closes the current interval now: one Point, and the scaling
// decisions taken since the last one. Run calls it; tests call it directly.
func (h *History) Sample() {
	now := h.now()
	var q metrics.QueueStats
	var st scaling.Status
	var haveScaler bool
	if h.g != nil {
		q = h.g.Queue()
		st, haveScaler = h.g.Scaling()
	}

	h.rmu.Lock()
	defer h.rmu.Unlock()
	next := (h.pos + 1) % len(h.accs)
	h.accs[next] = accum{} // the oldest of the last minute; nobody writes it
	h.seq++
	h.mu.Lock()
	done := h.cur
	h.cur, h.pos = &h.accs[next], next
	idle := int64(h.span / h.interval)
	for i := range h.slots {
		if done.models[i].n > 0 {
			h.active[i] = h.seq
		}
		if h.slots[i].used && h.seq-h.active[i] > idle { // a whole span without requests: free it
			delete(h.names, h.slots[i].name)
			h.slots[i], h.totals[i] = slotName{}, totals{}
		}
	}
	names := h.slots
	h.mu.Unlock()
	h.snapNames = names

	elapsed := h.interval
	if !h.last.IsZero() && now.After(h.last) {
		elapsed = now.Sub(h.last)
	}
	h.last = now
	p := Point{T: now.UnixMilli(), Waiting: q.Waiting, InFlight: q.InFlight, Slots: q.Slots}
	if haveScaler {
		p.Replicas = &Replicas{Current: st.Current, Desired: st.Desired}
	}
	var all modelAcc
	for i := range done.models {
		a := &done.models[i]
		if a.n == 0 {
			continue
		}
		p.Models = append(p.Models, a.point(slotLabel(names, i), elapsed))
		all.n += a.n
		all.errs += a.errs
		all.rejected += a.rejected
		all.lat.merge(&a.lat)
		all.ttft.merge(&a.ttft)
	}
	p.All = all.point("", elapsed)
	p.Rejected = int(all.rejected)
	p.WaitP95MS = done.wait.quantile(0.95)

	h.points[(h.head+h.n)%len(h.points)] = p
	if h.n < len(h.points) {
		h.n++
	} else {
		h.head = (h.head + 1) % len(h.points)
	}
	if haveScaler {
		h.ingest(st, now)
	}
}

func slotLabel(names [MaxModels]slotName, i int) string {
	if i < MaxModels && names[i].used {
		return names[i].name
	}
	return OtherModels
}

func (a *modelAcc) point(name string, elapsed time.Duration) ModelPoint {
	return ModelPoint{
		Name:      name,
		N:         int(a.n),
		Errors:    int(a.errs),
		RPS:       round3(float64(a.n) / elapsed.Seconds()),
		P50MS:     a.lat.quantile(0.5),
		P95MS:     a.lat.quantile(0.95),
		TTFTP50MS: a.ttft.quantile(0.5),
		TTFTP95MS: a.ttft.quantile(0.95),
	}
}

// Points returns the points newer than since (Unix milliseconds), oldest
// first; since 0: all of them.
func (h *History) Points(since int64) []Point {
	h.rmu.RLock()
	defer h.rmu.RUnlock()
	out := make([]Point, 0, h.n)
	for k := range h.n {
		p := h.points[(h.head+k)%len(h.points)]
		if p.T > since {
			out = append(out, p)
		}
	}
	return out
}

// Point is one interval of the history.
type Point struct {
	T         int64        `json:"t"` // end of the interval, Unix milliseconds
	All       ModelPoint   `json:"all"`
	Models    []ModelPoint `json:"models,omitempty"` // the models with requests in the interval
	Waiting   int          `json:"waiting"`          // admission queue at T
	InFlight  int          `json:"in_flight"`
	Slots     int          `json:"slots"`
	WaitP95MS float64      `json:"wait_p95_ms"` // queue wait of the interval's admissions
	Rejected  int          `json:"rejected"`    // 429s in the interval
	Replicas  *Replicas    `json:"replicas,omitempty"`
}

// ModelPoint is one model's (or all models') requests in one interval.
type ModelPoint struct {
	Name      string  `json:"name,omitempty"`
	N         int     `json:"n"`      // finished requests
	Errors    int     `json:"errors"` // 5xx or 429
	RPS       float64 `json:"rps"`
	P50MS     float64 `json:"p50_ms"`
	P95MS     float64 `json:"p95_ms"`
	TTFTP50MS float64 `json:"ttft_p50_ms"`
	TTFTP95MS float64 `json:"ttft_p95_ms"`
}

// Replicas is the controller's count at one moment.
type Replicas struct {
	Current int `json:"current"`
	Desired int `json:"desired"`
}

// Decision is one notable scaling decision on the timeline.
type Decision struct {
	Time      time.Time `json:"time"`
	Current   int       `json:"current"`
	Desired   int       `json:"desired"`
	Direction string    `json:"direction"`
	Reason    string    `json:"reason,omitempty"`
	Rule      string    `json:"rule,omitempty"`
	Note      string    `json:"note,omitempty"`
	Result    string    `json:"result"`
	Error     string    `json:"error,omitempty"`
}

// notable: a decision that changed, or wanted to change, the count (or an
// operator's override). The held "nothing to do" of every tick is not.
func notable(r scaling.Record) bool {
	return r.Result != scaling.ResultHeld || r.Decision.Desired != r.Current || r.Decision.Reason == "manual"
}

func (d *Decision) same(o *Decision) bool {
	return d.Current == o.Current && d.Desired == o.Desired && d.Reason == o.Reason &&
		d.Rule == o.Rule && d.Note == o.Note && d.Result == o.Result && d.Error == o.Error
}

// Ingest adds st's decisions that are new since the last call to the
// timeline: the notable ones, a held decision that repeats the previous
// one folded into it. The handlers call it too, so that a decision shows
// without waiting for the next sample.
func (h *History) Ingest(st scaling.Status) {
	h.rmu.Lock()
	defer h.rmu.Unlock()
	h.ingest(st, h.now())
}

func (h *History) ingest(st scaling.Status, now time.Time) {
	for _, r := range st.Decisions {
		if !r.Time.After(h.lastSeen) {
			continue
		}
		h.lastSeen = r.Time
		if !notable(r) {
			continue
		}
		d := Decision{Time: r.Time, Current: r.Current, Desired: r.Decision.Desired, Direction: string(r.Decision.Direction),
			Reason: r.Decision.Reason, Rule: r.Decision.Rule, Note: r.Decision.Note, Result: r.Result, Error: r.Error}
		if k := len(h.decisions); d.Result == scaling.ResultHeld && k > 0 && d.same(&h.decisions[k-1]) {
			continue
		}
		h.decisions = append(h.decisions, d)
	}
	cut := 0
	for cut < len(h.decisions) && (len(h.decisions)-cut > maxDecisions || now.Sub(h.decisions[cut].Time) > h.span) {
		cut++
	}
	if cut > 0 {
		h.decisions = append([]Decision(nil), h.decisions[cut:]...)
	}
}

// Decisions returns the timeline, oldest first.
func (h *History) Decisions() []Decision {
	h.rmu.RLock()
	defer h.rmu.RUnlock()
	return append([]Decision{}, h.decisions...)
}
