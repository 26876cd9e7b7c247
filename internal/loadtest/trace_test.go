package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadSched traces goroutines that wake each other and reads the
// scheduler's figures back from the trace.
func TestReadSched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.out")
	stop, err := startTrace(path, 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the trace starts in a timer
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	for i := range 1000 {
		ping <- i
		<-pong
	}
	close(ping)
	stop()
	st, err := readSched(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.waits) < 1000 || len(st.runs) < 1000 || st.span <= 0 {
		t.Fatalf("%d waits, %d runs over %v: want the 2,000 wake-ups of the ping-pong", len(st.waits), len(st.runs), st.span)
	}
	if s := st.String(); !strings.Contains(s, "goroutine wake-ups") {
		t.Fatalf("summary %q", s)
	}
	if _, err := readSched(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("a missing trace read without error")
	}
}
