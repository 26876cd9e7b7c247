package pool

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/testenv"
	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer is a real DNS server on loopback UDP that answers A queries for
// one name from a set the test changes; any other name is NXDOMAIN, as is
// the name while its set is empty.
type dnsServer struct {
	conn net.PacketConn
	name string
	mu   sync.Mutex
	ips  []netip.Addr
	done chan struct{}
}

func startDNS(t *testing.T, name string) *dnsServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	d := &dnsServer{conn: conn, name: name, done: make(chan struct{})}
	go d.serve()
	t.Cleanup(func() { conn.Close(); <-d.done })
	return d
}

func (d *dnsServer) set(ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ips = nil
	for _, ip := range ips {
		d.ips = append(d.ips, netip.MustParseAddr(ip))
	}
}

func (d *dnsServer) serve() {
	defer close(d.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		d.mu.Lock()
		ips := append([]netip.Addr(nil), d.ips...)
		d.mu.Unlock()
		rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeSuccess}
		if q.Name.String() != d.name || len(ips) == 0 {
			rh.RCode = dnsmessage.RCodeNameError
		}
		b := dnsmessage.NewBuilder(nil, rh)
		b.EnableCompression()
		_ = b.StartQuestions()
		_ = b.Question(q)
		_ = b.StartAnswers()
		if rh.RCode == dnsmessage.RCodeSuccess && q.Type == dnsmessage.TypeA {
			for _, ip := range ips {
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}, dnsmessage.AResource{A: ip.As4()})
			}
		}
		msg, err := b.Finish()
		if err == nil {
			_, _ = d.conn.WriteTo(msg, from)
		}
	}
}

// resolver is Go's own resolver, asking only d.
func (d *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

// TestDNSDiscoveryFollowsTheRecords: real engines on 127.0.0.2 and
// 127.0.0.3 at one port, found through a real DNS server: the second joins
// when its record appears, the first drains out when its record goes, and
// a name that no longer resolves leaves no engine.
func TestDNSDiscoveryFollowsTheRecords(t *testing.T) {
	port := testenv.FreeAddr(t, "127.0.0.2")
	_, portS, _ := net.SplitHostPort(port)
	e2 := testenv.StartEngine(t, "127.0.0.2:"+portS)
	e3 := testenv.StartEngine(t, "127.0.0.3:"+portS)
	dns := startDNS(t, "engines.aurax.test.")
	dns.set("127.0.0.2")
	d := &DNS{Host: "engines.aurax.test", Port: atoi(portS), Interval: 100 * time.Millisecond, Resolver: dns.resolver()}
	p := realPool(t, Options{Targets: []Target{}, Discoverers: []Discoverer{d}})
	runPool(t, p)
	ready := func(names ...string) func() bool {
		return func() bool {
			got := map[string]bool{}
			for _, e := range p.Engines() {
				if e.State == "ready" {
					got[e.Name] = true
				}
			}
			if len(got) != len(names) {
				return false
			}
			for _, n := range names {
				if !got[n] {
					return false
				}
			}
			return true
		}
	}
	require.Eventually(t, ready(e2.Addr), 10*time.Second, 10*time.Millisecond, "%v", states(p))
	require.Equal(t, "dns", p.Engines()[0].Source)

	dns.set("127.0.0.2", "127.0.0.3")
	require.Eventually(t, ready(e2.Addr, e3.Addr), 10*time.Second, 10*time.Millisecond, "%v", states(p))
	require.NoError(t, p.Chat(context.Background(), tinyChat(false, 4), func(*api.ChatResponse) error { return nil }))

	dns.set("127.0.0.3")
	require.Eventually(t, func() bool { return len(p.Engines()) == 1 && p.Engines()[0].Name == e3.Addr }, 10*time.Second, 10*time.Millisecond,
		"the engine whose record went is gone: %v", states(p))

	dns.set() // NXDOMAIN: the service scaled to zero
	require.Eventually(t, func() bool { return len(p.Engines()) == 0 }, 10*time.Second, 10*time.Millisecond)
	_, _, err := p.Acquire(context.Background(), testenv.ChatModel)
	require.ErrorIs(t, err, ErrNoEngine)
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
