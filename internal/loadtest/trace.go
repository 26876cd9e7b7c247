package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"golang.org/x/exp/trace"
)

// schedStats is what the profile suite's execution trace says of the Go
// scheduler under the load: how long a goroutine that became runnable
// (its socket ready, a channel sent to) waited to run, and how often a P
// went idle and was woken again (each time a thread sleeps on a futex or
// in epoll_wait and is woken, where nginx's one worker returns from
// epoll_wait).
type schedStats struct {
	span      time.Duration   // from the trace's first event to its last
	waits     []time.Duration // runnable → running, sorted
	procWakes int             // P idle → running
}

// readSched reads the execution trace at path.
func readSched(path string) (schedStats, error) {
	var st schedStats
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return st, err
	}
	runnable := map[trace.GoID]trace.Time{}
	var first, last trace.Time
	for n := 0; ; n++ {
		ev, err := r.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, err
		}
		if n == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		tr := ev.StateTransition()
		switch tr.Resource.Kind {
		case trace.ResourceGoroutine:
			id := tr.Resource.Goroutine()
			from, to := tr.Goroutine()
			switch {
			case to == trace.GoRunnable:
				runnable[id] = ev.Time()
			case from == trace.GoRunnable && to == trace.GoRunning:
				if t, ok := runnable[id]; ok {
					st.waits = append(st.waits, ev.Time().Sub(t))
					delete(runnable, id)
				}
			}
		case trace.ResourceProc:
			if from, to := tr.Proc(); from == trace.ProcIdle && to == trace.ProcRunning {
				st.procWakes++
			}
		}
	}
	st.span = last.Sub(first)
	slices.Sort(st.waits)
	return st, nil
}

func (st schedStats) String() string {
	if len(st.waits) == 0 || st.span <= 0 {
		return "no goroutine ran in the trace"
	}
	q := func(p float64) time.Duration { return st.waits[min(int(p*float64(len(st.waits))), len(st.waits)-1)] }
	return fmt.Sprintf("%d goroutine wake-ups in %v, runnable → running p50 %v, p90 %v, p99 %v; Ps woken from idle %.0f times a second",
		len(st.waits), st.span.Round(time.Millisecond), q(0.5), q(0.9), q(0.99), float64(st.procWakes)/st.span.Seconds())
}
