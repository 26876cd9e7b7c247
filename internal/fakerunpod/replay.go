package fakerunpod

import (
	"math"
	"slices"
)

// ReplayJob is one request of a trace: its arrival, in seconds from the
// start, and how long it takes in one worker slot.
type ReplayJob struct {
	At, Service float64
}

// ReplayModel is the worker model of a Replay.
type ReplayModel struct {
	Slots     int     // jobs one worker runs at once
	ColdStart float64 // seconds from a worker's start to its first job
	Step      float64 // seconds per simulation step (default 0.25)
}

// Replay plays RunPod's queue and its own scaler on a clock of seconds:
// jobs queue FIFO, ready workers take them, and the scaler keeps between
// workers.min and workers.max the workers its type asks for (REQUEST_COUNT:
// ceil((inQueue+inProgress)/requestCount); QUEUE_DELAY: one more while the
// oldest job has waited longer than queueDelay and none is starting),
// removing a worker idle for idleTimeout when there are more than it asks
// for. It is not safe for concurrent use (API calls it under its lock).
type Replay struct {
	m    ReplayModel
	jobs []ReplayJob
	ep   Endpoint

	t       float64
	next    int
	queue   []int
	workers []*replayWorker

	completed int64
	waits     []float64 // per dispatched job
	workerSec float64
}

type replayWorker struct {
	readyAt   float64
	idleSince float64
	slots     []float64 // end time of each slot's job; -1 free
}

func (w *replayWorker) busy() int {
	n := 0
	for _, e := range w.slots {
		if e >= 0 {
			n++
		}
	}
	return n
}

// NewReplay starts a replay of jobs (sorted by At) at t = 0 under ep.
func NewReplay(jobs []ReplayJob, m ReplayModel, ep Endpoint) *Replay {
	if m.Step <= 0 {
		m.Step = 0.25
	}
	r := &Replay{m: m, jobs: jobs, ep: ep}
	for range ep.Workers.Min {
		r.workers = append(r.workers, r.newWorker(0))
	}
	return r
}

func (r *Replay) newWorker(readyAt float64) *replayWorker {
	w := &replayWorker{readyAt: readyAt, idleSince: readyAt, slots: make([]float64, r.m.Slots)}
	for i := range w.slots {
		w.slots[i] = -1
	}
	return w
}

// SetEndpoint applies new settings (RunPod's PATCH).
func (r *Replay) SetEndpoint(ep Endpoint) { r.ep = ep }

// Now is the replay's clock.
func (r *Replay) Now() float64 { return r.t }

// Done reports whether every job arrived and finished.
func (r *Replay) Done() bool {
	return r.next == len(r.jobs) && len(r.queue) == 0 && r.inProgress() == 0
}

func (r *Replay) inProgress() int {
	n := 0
	for _, w := range r.workers {
		n += w.busy()
	}
	return n
}

// AdvanceTo runs the replay up to t seconds.
func (r *Replay) AdvanceTo(t float64) {
	for r.t+r.m.Step <= t+1e-9 {
		r.step()
	}
}

func (r *Replay) step() {
	r.t += r.m.Step
	now := r.t
	for _, w := range r.workers {
		for i, end := range w.slots {
			if end >= 0 && end <= now {
				w.slots[i] = -1
				r.completed++
				if w.busy() == 0 {
					w.idleSince = end
				}
			}
		}
	}
	for r.next < len(r.jobs) && r.jobs[r.next].At <= now {
		r.queue = append(r.queue, r.next)
		r.next++
	}
	for _, w := range r.workers {
		if w.readyAt > now {
			continue
		}
		for i := range w.slots {
			if len(r.queue) == 0 {
				break
			}
			if w.slots[i] >= 0 {
				continue
			}
			j := r.queue[0]
			r.queue = r.queue[1:]
			w.slots[i] = now + r.jobs[j].Service
			r.waits = append(r.waits, now-r.jobs[j].At)
		}
	}
	want := r.ep.Workers.Min
	starting := 0
	for _, w := range r.workers {
		if w.readyAt > now {
			starting++
		}
	}
	switch s := r.ep.Scaling; s.Type {
	case "REQUEST_COUNT":
		if s.RequestCount > 0 {
			want = max(want, int(math.Ceil(float64(len(r.queue)+r.inProgress())/float64(s.RequestCount))))
		}
	case "QUEUE_DELAY":
		if len(r.queue) > 0 && now-r.jobs[r.queue[0]].At > s.QueueDelay && starting == 0 {
			want = max(want, len(r.workers)+1)
		} else {
			want = max(want, len(r.workers)) // QUEUE_DELAY only adds; idle workers leave below
		}
	}
	want = min(want, r.ep.Workers.Max)
	for len(r.workers) < want {
		r.workers = append(r.workers, r.newWorker(now+r.m.ColdStart))
	}
	// Idle workers beyond what the scaler wants leave after the idle
	// timeout; starting ones beyond max leave at once.
	idle := float64(r.ep.Workers.IdleTimeout)
	kept := r.workers[:0]
	extra := len(r.workers) - max(want, r.ep.Workers.Min)
	if r.ep.Scaling.Type == "QUEUE_DELAY" {
		extra = len(r.workers) - r.ep.Workers.Min
	}
	for _, w := range r.workers {
		if extra > 0 && w.busy() == 0 && (w.readyAt > now && len(r.workers) > r.ep.Workers.Max || w.readyAt <= now && now-w.idleSince >= idle) {
			extra--
			continue
		}
		kept = append(kept, w)
	}
	clear(r.workers[len(kept):])
	r.workers = kept
	r.workerSec += float64(len(r.workers)) * r.m.Step
}

// Health is what /health reports now.
func (r *Replay) Health() Health {
	var idle, running, init int64
	for _, w := range r.workers {
		switch {
		case w.readyAt > r.t:
			init++
		case w.busy() > 0:
			running++
		default:
			idle++
		}
	}
	return Health{Jobs: Jobs{Completed: r.completed, InProgress: int64(r.inProgress()), InQueue: int64(len(r.queue))},
		Workers: map[string]int64{"idle": idle, "running": running, "initializing": init, "throttled": 0, "unhealthy": 0}}
}

// Workers is the number of billed workers (starting or serving).
func (r *Replay) Workers() int { return len(r.workers) }

// ReplayStats summarise a replay.
type ReplayStats struct {
	Jobs        int
	Attainment  float64 // share of dispatched jobs that waited at most the SLO
	P50WaitS    float64
	P99WaitS    float64
	WorkerHours float64
}

// Stats summarises the replay so far against a queue-wait SLO.
func (r *Replay) Stats(sloWait float64) ReplayStats {
	w := slices.Clone(r.waits)
	slices.Sort(w)
	s := ReplayStats{Jobs: len(w), WorkerHours: r.workerSec / 3600}
	if len(w) == 0 {
		return s
	}
	met := 0
	for _, v := range w {
		if v <= sloWait+1e-9 {
			met++
		}
	}
	s.Attainment = float64(met) / float64(len(w))
	s.P50WaitS = w[len(w)/2]
	s.P99WaitS = w[min(len(w)-1, int(math.Ceil(0.99*float64(len(w))))-1)]
	return s
}
