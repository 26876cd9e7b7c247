package server

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Queue is the admission queue in front of inference: at most Slots requests
// hold a slot; at most MaxWaiting more wait for one, each up to MaxWait.
// "Queue depth" everywhere in AURAX is Waiting().
type Queue struct {
	slots      chan struct{}
	maxWaiting int64
	maxWait    time.Duration

	waiting  atomic.Int64
	inFlight atomic.Int64
	draining atomic.Bool

	mu      sync.Mutex
	service float64 // EWMA of slot hold time, seconds, for Retry-After
}

// Admission errors.
var (
	ErrQueueFull   = errors.New("admission queue full")
	ErrWaitTimeout = errors.New("waited too long for an inference slot")
	ErrDraining    = errors.New("server is draining")
)

// NewQueue returns a queue with slots concurrent requests.
func NewQueue(slots, maxWaiting int, maxWait time.Duration) *Queue {
	if slots < 1 {
		slots = 1
	}
	return &Queue{slots: make(chan struct{}, slots), maxWaiting: int64(maxWaiting), maxWait: maxWait, service: 1}
}

// Acquire takes a slot, waiting if none is free. It returns at once with
// ErrQueueFull when MaxWaiting requests already wait, ErrDraining once Drain
// was called, ErrWaitTimeout after MaxWait, or ctx.Err() when ctx ends first.
// On success the caller must call release exactly once. The wait is reported
// either way.
func (q *Queue) Acquire(ctx context.Context) (release func(), waited time.Duration, err error) {
	if q.draining.Load() {
		return nil, 0, ErrDraining
	}
	select {
	case q.slots <- struct{}{}:
		return q.holder(time.Now()), 0, nil
	default:
	}
	if q.waiting.Add(1) > q.maxWaiting {
		q.waiting.Add(-1)
		return nil, 0, ErrQueueFull
	}
	start := time.Now()
	timer := time.NewTimer(q.maxWait)
	defer timer.Stop()
	select {
	case q.slots <- struct{}{}:
		q.waiting.Add(-1)
		now := time.Now()
		return q.holder(now), now.Sub(start), nil
	case <-timer.C:
		q.waiting.Add(-1)
		return nil, time.Since(start), ErrWaitTimeout
	case <-ctx.Done():
		q.waiting.Add(-1)
		return nil, time.Since(start), ctx.Err()
	}
}

func (q *Queue) holder(start time.Time) func() {
	q.inFlight.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			q.inFlight.Add(-1)
			<-q.slots
			held := time.Since(start).Seconds()
			q.mu.Lock()
			q.service = 0.9*q.service + 0.1*held
			q.mu.Unlock()
		})
	}
}

// RetryAfter estimates when a rejected client should try again: the time
// for the present queue to drain at the recent service time, at least 1 s.
func (q *Queue) RetryAfter() time.Duration {
	q.mu.Lock()
	svc := q.service
	q.mu.Unlock()
	est := (float64(q.waiting.Load())/float64(cap(q.slots)) + 1) * svc
	return time.Duration(math.Max(1, math.Min(60, math.Ceil(est)))) * time.Second
}

// Drain refuses new admissions from now on; requests already admitted go on.
func (q *Queue) Drain() { q.draining.Store(true) }

// Waiting is the queue depth: admitted requests waiting for a slot.
func (q *Queue) Waiting() int { return int(q.waiting.Load()) }

// InFlight is the number of requests holding a slot.
func (q *Queue) InFlight() int { return int(q.inFlight.Load()) }

// Slots is the number of concurrent inference requests.
func (q *Queue) Slots() int { return cap(q.slots) }
