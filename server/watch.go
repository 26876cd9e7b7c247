package server

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// watchInterval is how often an in-flight request's connection is checked
// for a client that went away.
const watchInterval = 100 * time.Millisecond

// watcher checks the connections of the requests in flight for a client
// that went away: fasthttp tells a handler nothing of a client that
// disconnects, and inference must not run on for nobody. One goroutine
// checks them all, every watchInterval, with a non-consuming MSG_PEEK read
// each; it starts with the first connection watched and exits at the first
// tick that finds none, so an idle server runs nothing and a request costs
// a map entry, not a goroutine and a ticker.
type watcher struct {
	mu      sync.Mutex
	conns   map[*watched]struct{}
	running bool
	batch   []*watched // the checking goroutine's copy of conns
}

// watched is one connection and what to call when its peer has gone.
type watched struct {
	ws   *watcher
	rc   syscall.RawConn
	mu   sync.Mutex // held while it is checked, and by stop
	gone func()     // nil once stopped or called
}

// watch calls gone once when the peer of conn has closed its end, until
// stop is called; once stop returns, gone is not called. Connections that
// are not sockets (in-memory tests) are not watched.
func (ws *watcher) watch(conn net.Conn, gone func()) (stop func()) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return func() {}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return func() {}
	}
	w := &watched{ws: ws, rc: rc, gone: gone}
	ws.mu.Lock()
	if ws.conns == nil {
		ws.conns = make(map[*watched]struct{})
	}
	ws.conns[w] = struct{}{}
	start := !ws.running
	ws.running = true
	ws.mu.Unlock()
	if start {
		go ws.run()
	}
	return w.stop
}

func (w *watched) stop() {
	w.mu.Lock()
	w.gone = nil
	w.mu.Unlock()
	w.ws.mu.Lock()
	delete(w.ws.conns, w)
	w.ws.mu.Unlock()
}

// run checks every watched connection each tick, dropping those whose
// peer has gone, until a tick finds none.
func (ws *watcher) run() {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for range t.C {
		ws.mu.Lock()
		ws.batch = ws.batch[:0]
		for w := range ws.conns {
			ws.batch = append(ws.batch, w)
		}
		ws.mu.Unlock()
		for _, w := range ws.batch {
			if !w.check() {
				ws.mu.Lock()
				delete(ws.conns, w)
				ws.mu.Unlock()
			}
		}
		clear(ws.batch)
		ws.mu.Lock()
		if len(ws.conns) == 0 {
			ws.running = false
			ws.mu.Unlock()
			return
		}
		ws.mu.Unlock()
	}
}

// check peeks at the connection, calling gone when its peer has closed; it
// reports whether the connection is still to be watched.
func (w *watched) check() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone == nil {
		return false
	}
	closed := false
	var b [1]byte
	_ = w.rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = (n == 0 && err == nil) || (err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR))
		return true
	})
	if !closed {
		return true
	}
	w.gone()
	w.gone = nil
	return false
}
