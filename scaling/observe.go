package scaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/aurax/aurax/metrics"
)

// Observer reads the load of the service. Observe returns what it could
// see: an Observation whose Missing counts replicas that did not answer, or
// an error when it saw nothing. It honours ctx and starts no goroutine that
// outlives the call.
type Observer interface {
	Observe(ctx context.Context) (Observation, error)
}

// NewObserver builds the observer of cfg.Mode. local reads this replica's
// snapshot; httpClient serves the peers and prometheus modes (nil: a client
// with cfg.PeerTimeout).
func NewObserver(cfg Config, local func() metrics.Signals, httpClient *http.Client) (Observer, error) {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: cfg.PeerTimeout}
	}
	switch cfg.Mode {
	case ModeLocal:
		if local == nil {
			return nil, errors.New("scaling: local mode needs a signals source")
		}
		return &LocalObserver{Signals: local, rates: newRateTracker()}, nil
	case ModePeers:
		return &PeersObserver{Name: cfg.PeersDNS, Port: cfg.PeersPort, Client: httpClient,
			Timeout: cfg.PeerTimeout, Resolver: netResolver{}, rates: newRateTracker()}, nil
	case ModePrometheus:
		if _, err := url.Parse(cfg.PrometheusURL); err != nil || cfg.PrometheusURL == "" {
			return nil, fmt.Errorf("scaling: prometheus_url %q: %v", cfg.PrometheusURL, err)
		}
		return &PrometheusObserver{URL: cfg.PrometheusURL, Queries: cfg.Queries, Client: httpClient}, nil
	}
	return nil, fmt.Errorf("scaling: unknown mode %q", cfg.Mode)
}

// rateTracker turns each replica's ArrivalsTotal counter into a rate.
type rateTracker struct {
	mu   sync.Mutex
	last map[string]metrics.Signals
}

func newRateTracker() *rateTracker { return &rateTracker{last: map[string]metrics.Signals{}} }

// rate is arrivals per second since key's previous snapshot; NaN on the
// first one or after a counter reset.
func (r *rateTracker) rate(key string, s metrics.Signals) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, ok := r.last[key]
	r.last[key] = s
	dt := s.Time.Sub(prev.Time).Seconds()
	if !ok || dt <= 0 || s.ArrivalsTotal < prev.ArrivalsTotal {
		return math.NaN()
	}
	return float64(s.ArrivalsTotal-prev.ArrivalsTotal) / dt
}

// forget drops keys not in keep.
func (r *rateTracker) forget(keep map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.last {
		if !keep[k] {
			delete(r.last, k)
		}
	}
}

// aggregate sums the replicas' snapshots into one observation.
func aggregate(now time.Time, snaps []metrics.Signals, rates []float64, missing int) Observation {
	o := Unknown(now)
	o.Missing = missing
	if len(snaps) == 0 {
		return o
	}
	o.Time = snaps[0].Time
	var q, inf, done, cpu, mem, gpu, errw, reqs, arr float64
	gpus, arrKnown := 0, true
	for i, s := range snaps {
		if s.Time.Before(o.Time) {
			o.Time = s.Time // the oldest snapshot sets the age
		}
		o.Sources++
		o.Replicas = max(o.Replicas, s.Engines) // every gateway sees the same engines
		o.Starting = max(o.Starting, s.Starting)
		o.Slots += s.Slots // each gateway's share of their slots
		q += float64(s.QueueDepth)
		inf += float64(s.InFlight)
		done += s.RequestRate
		cpu += s.CPUPercent
		mem += s.MemoryPercent
		if s.GPUAvailable {
			gpu += s.GPUPercent
			gpus++
		}
		errw += s.ErrorRate * float64(s.Requests)
		reqs += float64(s.Requests)
		o.P95LatencyS = max0(o.P95LatencyS, s.P95LatencyS) // the worst replica's p95
		if math.IsNaN(rates[i]) {
			arrKnown = false
		}
		arr += rates[i]
	}
	n := float64(len(snaps))
	o.QueueDepth, o.InFlight, o.DoneRate = q, inf, done
	o.CPUPercent, o.MemoryPercent = cpu/n, mem/n
	if gpus > 0 {
		o.GPUPercent = gpu / float64(gpus)
	}
	o.ErrorRate = 0
	if reqs > 0 {
		o.ErrorRate = errw / reqs
	}
	if arrKnown {
		o.ArrivalRate = arr
	}
	return o
}

func max0(a, b float64) float64 {
	if math.IsNaN(a) {
		return b
	}
	return max(a, b)
}

// LocalObserver observes this replica alone.
type LocalObserver struct {
	Signals func() metrics.Signals
	rates   *rateTracker
}

// Observe implements Observer.
func (l *LocalObserver) Observe(ctx context.Context) (Observation, error) {
	if err := ctx.Err(); err != nil {
		return Observation{}, err
	}
	s := l.Signals()
	if l.rates == nil {
		l.rates = newRateTracker()
	}
	return aggregate(s.Time, []metrics.Signals{s}, []float64{l.rates.rate("self", s)}, 0), nil
}

// maxSignalsBody bounds a peer's answer.
const maxSignalsBody = 1 << 20

// DecodeSignals decodes one metrics.Signals JSON document (a peer's
// /v1/scaling/signals answer), rejecting negative or out-of-range values.
func DecodeSignals(r io.Reader) (metrics.Signals, error) {
	var s metrics.Signals
	dec := json.NewDecoder(io.LimitReader(r, maxSignalsBody))
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("decode signals: %w", err)
	}
	switch {
	case s.QueueDepth < 0 || s.InFlight < 0 || s.Slots < 0 || s.Requests < 0:
		return s, errors.New("decode signals: negative count")
	case s.RequestRate < 0 || s.P95LatencyS < 0 || s.WindowS < 0:
		return s, errors.New("decode signals: negative rate or latency")
	case s.ErrorRate < 0 || s.ErrorRate > 1:
		return s, fmt.Errorf("decode signals: error_rate %g outside [0, 1]", s.ErrorRate)
	case s.CPUPercent < 0 || s.MemoryPercent < 0 || s.GPUPercent < 0:
		return s, errors.New("decode signals: negative percentage")
	}
	return s, nil
}

// maxReplicas and maxSlots bound what a query may report: a larger number
// is a wrong query, not a count.
const (
	maxReplicas = 1 << 16
	maxSlots    = 1 << 24
)

// PrometheusObserver runs PromQL against a Prometheus query API.
type PrometheusObserver struct {
	URL     string
	Queries Queries
	Client  *http.Client
}

// Observe implements Observer. Queries run one after another; a query that
// fails or returns nothing leaves its signal unknown; the replica count is
// required.
func (p *PrometheusObserver) Observe(ctx context.Context) (Observation, error) {
	now := time.Now()
	o := Unknown(now)
	q := p.Queries
	reps, err := p.query(ctx, q.Replicas)
	if err != nil {
		return o, fmt.Errorf("prometheus replicas: %w", err)
	}
	if math.IsNaN(reps) {
		return o, errors.New("prometheus replicas: no gateway reports its engines")
	}
	if !(reps >= 0 && reps <= maxReplicas) {
		return o, fmt.Errorf("prometheus replicas: %g is not a replica count", reps)
	}
	o.Replicas, o.Sources = int(reps), 1
	for _, f := range []struct {
		q   string
		dst *float64
	}{{q.QueueDepth, &o.QueueDepth}, {q.InFlight, &o.InFlight}, {q.ArrivalRate, &o.ArrivalRate},
		{q.DoneRate, &o.DoneRate}, {q.P95Latency, &o.P95LatencyS}, {q.ErrorRate, &o.ErrorRate},
		{q.CPUPercent, &o.CPUPercent}, {q.MemPercent, &o.MemoryPercent}, {q.GPUPercent, &o.GPUPercent}} {
		if f.q == "" {
			continue
		}
		v, err := p.query(ctx, f.q)
		if err != nil {
			if ctx.Err() != nil {
				return o, ctx.Err()
			}
			continue
		}
		*f.dst = v
	}
	for _, f := range []struct {
		q   string
		dst *int
		max float64
	}{{q.Slots, &o.Slots, maxSlots}, {q.Starting, &o.Starting, maxReplicas}} {
		if f.q == "" {
			continue
		}
		if v, err := p.query(ctx, f.q); err == nil && v >= 0 && v <= f.max {
			*f.dst = int(v)
		}
	}
	return o, nil
}

// query runs one instant query; NaN when the result is empty.
func (p *PrometheusObserver) query(ctx context.Context, promql string) (float64, error) {
	u := p.URL + "/api/v1/query?" + url.Values{"query": {promql}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("query %q: %s", promql, resp.Status)
	}
	return decodePromResult(resp.Body)
}

// decodePromResult reads a query API answer holding a scalar or a vector of
// at most one sample.
func decodePromResult(r io.Reader) (float64, error) {
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(r, maxSignalsBody)).Decode(&body); err != nil {
		return 0, fmt.Errorf("decode prometheus answer: %w", err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("prometheus: %s", body.Error)
	}
	var sample []any
	switch body.Data.ResultType {
	case "scalar":
		if err := json.Unmarshal(body.Data.Result, &sample); err != nil {
			return 0, err
		}
	case "vector":
		var vec []struct {
			Value []any `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
			return 0, err
		}
		if len(vec) == 0 {
			return math.NaN(), nil
		}
		if len(vec) > 1 {
			return 0, fmt.Errorf("prometheus: %d series, want one (aggregate the query)", len(vec))
		}
		sample = vec[0].Value
	default:
		return 0, fmt.Errorf("prometheus: result type %q", body.Data.ResultType)
	}
	if len(sample) != 2 {
		return 0, errors.New("prometheus: malformed sample")
	}
	s, ok := sample[1].(string)
	if !ok {
		return 0, errors.New("prometheus: malformed sample value")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, fmt.Errorf("prometheus: sample value %q is not a finite number", s)
	}
	return v, nil
}
