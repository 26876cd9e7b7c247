package metrics

import "time"

// Signals is one replica's load snapshot: what the scaling controller reads
// in-process and what peers read from GET /v1/scaling/signals. Rates and
// quantiles cover the trailing Window; gauges are read at Time.
type Signals struct {
	Time          time.Time `json:"time"`
	WindowS       float64   `json:"window_s"`
	QueueDepth    int       `json:"queue_depth"`      // admitted requests waiting for an inference slot
	InFlight      int       `json:"in_flight"`        // requests holding an inference slot
	Slots         int       `json:"slots"`            // inference slots of this gateway (its share of the engines')
	Engines       int       `json:"engines"`          // engines taking requests
	Starting      int       `json:"engines_starting"` // engines joining, not ready yet
	ArrivalsTotal uint64    `json:"arrivals_total"`   // model requests that reached admission since start
	Requests      int       `json:"requests"`         // model requests completed in the window
	RequestRate   float64   `json:"request_rate"`     // completed model requests per second over the window
	P95LatencyS   float64   `json:"p95_latency_s"`    // p95 of model request duration over the window, 0 when none
	ErrorRate     float64   `json:"error_rate"`       // share of the window's model requests that failed (5xx or 429)
	CPUPercent    float64   `json:"cpu_percent"`      // of the CPU this process may use (cgroup quota, else all cores)
	MemoryPercent float64   `json:"memory_percent"`   // of the cgroup memory limit, else of host memory
	MemoryBytes   uint64    `json:"memory_bytes"`
	GPUAvailable  bool      `json:"gpu_available"`
	GPUPercent    float64   `json:"gpu_percent"` // mean utilisation over the GPUs, 0 without one

	CPUCores         float64 `json:"cpu_cores"`          // the CPU this process may use, the denominator of CPUPercent
	MemoryLimitBytes uint64  `json:"memory_limit_bytes"` // the denominator of MemoryPercent; 0 when unknown
}

// cpuMinInterval is the shortest interval CPUPercent is computed over, so
// that callers polling Signals often (the controller and peers at once) do
// not read the noise of a few milliseconds.
const cpuMinInterval = time.Second

type cpuSample struct {
	t       time.Time
	seconds float64
}

// Signals takes a snapshot now. It reads the queue source, the window,
// /proc and the cgroup files, and NVML when present: call it every few
// seconds, not per request. CPUPercent covers the time since the previous
// call at least cpuMinInterval ago (the first call: since the process
// started). What cannot be read (no /proc outside Linux) reads as 0; the
// first such failure is logged once.
func (m *Metrics) Signals() Signals {
	now := m.now()
	q := m.queue()
	ws := m.win.stats(now.Sub(m.start))
	window := m.win.span
	if up := now.Sub(m.start); up < window {
		window = max(up, m.win.width) // not yet a whole window since start
	}
	s := Signals{
		Time:          now,
		WindowS:       m.win.span.Seconds(),
		QueueDepth:    q.Waiting,
		InFlight:      q.InFlight,
		Slots:         q.Slots,
		Engines:       q.Engines,
		Starting:      q.Starting,
		ArrivalsTotal: m.arrivals.Load(),
		Requests:      int(ws.n),
		RequestRate:   float64(ws.n) / window.Seconds(),
		P95LatencyS:   ws.p95,
	}
	if ws.n > 0 {
		s.ErrorRate = float64(ws.errs) / float64(ws.n)
	}

	sys, err := m.sys.sample()
	if err != nil {
		m.sysErrOnce.Do(func() { m.logger.Warn("read process and cgroup stats", "err", err) })
	}
	s.CPUCores = m.sys.cpuCores(sys.cg)
	if sys.cpuSeconds > 0 {
		start := sys.start
		if start.IsZero() || start.After(now) {
			start = m.start
		}
		m.sigMu.Lock()
		s.CPUPercent = m.cpuPercent(now, cpuSample{t: now, seconds: sys.cpuSeconds}, start, s.CPUCores)
		m.sigMu.Unlock()
	}
	s.MemoryBytes, s.MemoryLimitBytes = memoryOf(sys)
	if s.MemoryLimitBytes > 0 {
		s.MemoryPercent = float64(s.MemoryBytes) / float64(s.MemoryLimitBytes) * 100
	}

	if devs, ok := m.gpu.devices(); ok {
		s.GPUAvailable = true
		s.GPUPercent = meanUtilization(devs)
	}
	return s
}

// cpuPercent turns the process's CPU seconds into a percentage of cores
// since a reference sample: the newest one at least cpuMinInterval old,
// or the process start (0 CPU seconds). Called with sigMu held.
func (m *Metrics) cpuPercent(now time.Time, cur cpuSample, start time.Time, cores float64) float64 {
	if m.cpuNew.t.IsZero() {
		m.cpuNew = cpuSample{t: start}
	}
	ref := m.cpuNew
	if now.Sub(ref.t) < cpuMinInterval && !m.cpuOld.t.IsZero() {
		ref = m.cpuOld
	}
	if now.Sub(m.cpuNew.t) >= cpuMinInterval {
		m.cpuOld, m.cpuNew = m.cpuNew, cur
	}
	dt := now.Sub(ref.t).Seconds()
	if dt <= 0 || cores <= 0 {
		return 0
	}
	return max(0, (cur.seconds-ref.seconds)/dt/cores*100)
}

// GPU reports the GPUs for /health: their readings now, or why there are none.
func (m *Metrics) GPU() GPUStatus { return m.gpu.status() }

// Close shuts NVML down if it was initialised and stops the GPU collector;
// later scrapes and Signals report no GPU. Safe to call more than once.
func (m *Metrics) Close() error {
	m.closeOnce.Do(func() {
		if m.gpu.col != nil {
			m.reg.Unregister(m.gpu.col)
		}
		m.closeErr = m.gpu.close()
	})
	return m.closeErr
}
