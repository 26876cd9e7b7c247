package server

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// watchInterval is how often an in-flight request's connection is checked
// for a client that went away.
const watchInterval = 100 * time.Millisecond

// watchConn calls gone once when the peer of conn has closed its end,
// checking every watchInterval with a non-consuming MSG_PEEK read, until stop
// is called; stop waits for the watcher to exit. fasthttp tells a handler
// nothing of a client that disconnects, and inference must not run on for
// nobody: this frees the slot and cancels the upstream call. Connections
// that are not sockets (in-memory tests) are not watched.
func watchConn(conn net.Conn, gone func()) (stop func()) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return func() {}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return func() {}
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(watchInterval)
		defer t.Stop()
		var b [1]byte
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			closed := false
			_ = rc.Read(func(fd uintptr) bool {
				n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
				closed = (n == 0 && err == nil) || (err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR))
				return true
			})
			if closed {
				gone()
				return
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}
