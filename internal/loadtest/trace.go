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
	long      int             // waits over longWait
	longSameP int             // of them, run on the P that made them runnable
	runs      []time.Duration // running → not running, sorted
	procWakes int             // P idle → running
}

// longWait is a wait counted as long: a request queued behind others.
const longWait = 150 * time.Microsecond

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
	type ready struct {
		at   trace.Time
		proc trace.ProcID
	}
	runnable := map[trace.GoID]ready{}
	running := map[trace.GoID]trace.Time{}
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
			if from == trace.GoRunning {
				if t, ok := running[id]; ok {
					st.runs = append(st.runs, ev.Time().Sub(t))
					delete(running, id)
				}
			}
			switch {
			case to == trace.GoRunnable:
				runnable[id] = ready{ev.Time(), ev.Proc()}
			case from == trace.GoRunnable && to == trace.GoRunning:
				if r, ok := runnable[id]; ok {
					w := ev.Time().Sub(r.at)
					st.waits = append(st.waits, w)
					if w > longWait {
						st.long++
						if r.proc == ev.Proc() {
							st.longSameP++
						}
					}
					delete(runnable, id)
				}
			}
			if to == trace.GoRunning {
				running[id] = ev.Time()
			}
		case trace.ResourceProc:
			if from, to := tr.Proc(); from == trace.ProcIdle && to == trace.ProcRunning {
				st.procWakes++
			}
		}
	}
	st.span = last.Sub(first)
	slices.Sort(st.waits)
	slices.Sort(st.runs)
	return st, nil
}

func (st schedStats) String() string {
	if len(st.waits) == 0 || st.span <= 0 {
		return "no goroutine ran in the trace"
	}
	q := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(int(p*float64(len(d))), len(d)-1)]
	}
	return fmt.Sprintf("%d goroutine wake-ups in %v, runnable → running p50 %v, p90 %v, p99 %v; %.0f%% waited over %v, %.0f%% of those "+
		"on the P that made them runnable; a goroutine ran p50 %v, p90 %v, p99 %v before it blocked; Ps woken from idle %.0f times a second",
		len(st.waits), st.span.Round(time.Millisecond), q(st.waits, 0.5), q(st.waits, 0.9), q(st.waits, 0.99),
		100*float64(st.long)/float64(len(st.waits)), longWait, 100*float64(st.longSameP)/float64(max(st.long, 1)),
		q(st.runs, 0.5), q(st.runs, 0.9), q(st.runs, 0.99), float64(st.procWakes)/st.span.Seconds())
}
