package server

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tcpPair is both ends of one loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestWatcher: of three watched connections, the one whose client closes
// is reported, once; the one stopped before its client closes is not; the
// one still open is not; the watcher goroutine exits once none is watched
// (goleak in TestMain fails the package otherwise).
func TestWatcher(t *testing.T) {
	var ws watcher
	goneC := make(chan string, 3)
	conns := map[string]net.Conn{}
	stops := map[string]func(){}
	for _, name := range []string{"closes", "stopped", "open"} {
		srv, cli := tcpPair(t)
		conns[name] = cli
		stops[name] = ws.watch(srv, func() { goneC <- name })
	}
	stops["stopped"]()
	require.NoError(t, conns["stopped"].Close())
	require.NoError(t, conns["closes"].Close())
	select {
	case name := <-goneC:
		require.Equal(t, "closes", name)
	case <-time.After(10 * time.Second):
		t.Fatal("a closed client was not reported within 10 s")
	}
	// Two more ticks: nothing else is reported.
	time.Sleep(2 * watchInterval)
	require.Empty(t, goneC, "gone called for a stopped or an open connection")
	stops["open"]()
	stops["closes"]() // after gone: does nothing
	ws.mu.Lock()
	defer ws.mu.Unlock()
	require.Empty(t, ws.conns)
}
