package scaling

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aurax/aurax/metrics"
)

type staticResolver []string

func (r staticResolver) LookupHost(context.Context, string) ([]string, error) { return r, nil }

func TestPeersObserverMissingPeerIsNotZero(t *testing.T) {
	now := time.Now()
	s := metrics.Signals{Time: now, QueueDepth: 3, InFlight: 4, Slots: 4, Engines: 2, ArrivalsTotal: 100, CPUPercent: 50, MemoryPercent: 30}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/v1/scaling/signals", r.URL.Path)
		json.NewEncoder(w).Encode(s)
	}))
	defer srv.Close()
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer dead.Close()
	// Both servers listen on 127.0.0.1 with different ports; the observer
	// uses one port, so give each peer its own loopback address via a
	// dialer that maps address to server.
	ports := map[string]string{"127.0.0.1": srv.Listener.Addr().String(), "127.0.0.2": dead.Listener.Addr().String()}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		return (&net.Dialer{}).DialContext(ctx, network, ports[host])
	}}}
	defer client.CloseIdleConnections()
	p := &PeersObserver{Name: "aurax", Port: 8000, Client: client, Timeout: time.Second, Resolver: staticResolver{"127.0.0.2", "127.0.0.1"}}
	o, err := p.Observe(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, o.Replicas, "the engines the gateway sees")
	require.Equal(t, 1, o.Sources)
	require.Equal(t, 1, o.Missing, "a peer that does not answer is missing")
	require.Equal(t, 3.0, o.QueueDepth)
	require.True(t, math.IsNaN(o.ArrivalRate), "first snapshot: rate unknown")

	s.Time, s.ArrivalsTotal = now.Add(10*time.Second), 150
	o, err = p.Observe(context.Background())
	require.NoError(t, err)
	require.InDelta(t, 5.0, o.ArrivalRate, 1e-9)

	el := &LowestAddress{Peers: p, Self: "127.0.0.1"}
	leader, self, err := el.Leader(context.Background())
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", leader)
	require.True(t, self)
	_, self, _ = (&LowestAddress{Peers: p, Self: "127.0.0.2"}).Leader(context.Background())
	require.False(t, self)
}

func TestSortAddrsNumeric(t *testing.T) {
	require.Equal(t, []string{"10.0.0.2", "10.0.0.10", "b"}, sortAddrs([]string{"b", "10.0.0.10", "10.0.0.2", "10.0.0.2"}))
}

func TestLocalObserverRate(t *testing.T) {
	t0 := time.Now()
	snaps := []metrics.Signals{{Time: t0, ArrivalsTotal: 10, Slots: 4}, {Time: t0.Add(15 * time.Second), ArrivalsTotal: 40, Slots: 4}}
	i := 0
	o, err := NewObserver(DefaultConfig(), func() metrics.Signals { s := snaps[i]; i++; return s }, nil)
	require.NoError(t, err)
	first, err := o.Observe(context.Background())
	require.NoError(t, err)
	require.True(t, math.IsNaN(first.ArrivalRate))
	second, _ := o.Observe(context.Background())
	require.InDelta(t, 2.0, second.ArrivalRate, 1e-9)
	b, err := json.Marshal(first)
	require.NoError(t, err, "NaN signals must marshal")
	require.Contains(t, string(b), `"arrival_rate":null`)
}

func TestPrometheusObserver(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		dq := DefaultQueries()
		v := map[string]string{dq.Replicas: "3", dq.Starting: "1", dq.Slots: "12", dq.QueueDepth: "12"}[q]
		if v == "" {
			w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
			return
		}
		w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"` + v + `"]}]}}`))
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.Mode, cfg.PrometheusURL = ModePrometheus, srv.URL
	o, err := NewObserver(cfg, nil, srv.Client())
	require.NoError(t, err)
	got, err := o.Observe(context.Background())
	require.NoError(t, err)
	require.Equal(t, 3, got.Replicas)
	require.Equal(t, 1, got.Starting)
	require.Equal(t, 12, got.Slots)
	require.Equal(t, 12.0, got.QueueDepth)
	require.True(t, math.IsNaN(got.CPUPercent), "empty result: unknown, not zero")
}

func TestDecodeSignals(t *testing.T) {
	s, err := DecodeSignals(strings.NewReader(`{"queue_depth":3,"in_flight":2,"slots":4,"arrivals_total":7,"error_rate":0.1}`))
	require.NoError(t, err)
	require.Equal(t, 3, s.QueueDepth)
	for _, bad := range []string{``, `[]`, `{"queue_depth":-1}`, `{"error_rate":2}`, `{"cpu_percent":-5}`, `{"slots":"x"}`} {
		_, err := DecodeSignals(strings.NewReader(bad))
		require.Error(t, err, "DecodeSignals(%q)", bad)
	}
}

func FuzzDecodeSignals(f *testing.F) {
	f.Add([]byte(`{"time":"2026-01-01T00:00:00Z","queue_depth":3,"in_flight":2,"slots":4,"arrivals_total":7}`))
	f.Add([]byte(`{"error_rate":1e308}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSignals(bytes.NewReader(b))
		if err != nil {
			return
		}
		if s.QueueDepth < 0 || s.InFlight < 0 || s.ErrorRate < 0 || s.ErrorRate > 1 {
			t.Fatalf("DecodeSignals accepted %+v", s)
		}
		o := aggregate(s.Time, []metrics.Signals{s}, []float64{math.NaN()}, 0)
		if o.Sources != 1 || o.Replicas != s.Engines || o.QueueDepth != float64(s.QueueDepth) {
			t.Fatalf("aggregate(%+v) = %+v", s, o)
		}
		_ = strconv.Itoa(o.Slots)
	})
}

func FuzzDecodePromResult(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"3"]}]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0.25"]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}`))
	f.Add([]byte(`{"status":"error","error":"parse error"}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodePromResult(bytes.NewReader(b))
		if err != nil && v != 0 {
			t.Fatalf("decodePromResult(%q) = %v with error %v", b, v, err)
		}
		if err == nil && math.IsInf(v, 0) {
			t.Fatalf("decodePromResult(%q) = %v: infinite", b, v)
		}
	})
}

func TestPrometheusObserverRejectsImpossibleReplicas(t *testing.T) {
	for _, v := range []string{"+Inf", "-1", "1e300"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"` + v + `"]}]}}`))
		}))
		o := &PrometheusObserver{URL: srv.URL, Queries: Queries{Replicas: "r", Slots: "s"}, Client: srv.Client()}
		_, err := o.Observe(context.Background())
		srv.Close()
		require.Error(t, err, "replicas %s", v)
	}
}

// TestAggregateEnginesAndGateways: gateways over one pool each see all of
// its engines and hold a share of its slots: the engines are the most any
// gateway sees, the slots and the load add up.
func TestAggregateEnginesAndGateways(t *testing.T) {
	now := time.Now()
	snaps := []metrics.Signals{
		{Time: now, Engines: 3, Starting: 1, Slots: 6, QueueDepth: 2, InFlight: 6},
		{Time: now, Engines: 3, Starting: 0, Slots: 6, QueueDepth: 1, InFlight: 5},
	}
	o := aggregate(now, snaps, []float64{1, 2}, 0)
	require.Equal(t, 3, o.Replicas)
	require.Equal(t, 1, o.Starting)
	require.Equal(t, 2, o.Sources)
	require.Equal(t, 12, o.Slots)
	require.Equal(t, 14.0, o.Load())
	require.Equal(t, 3.0, o.ArrivalRate)
	require.False(t, stale(aggregate(now, []metrics.Signals{{Time: now}}, []float64{0}, 0), State{}, now),
		"no engine at all is an observation (scale from zero), not a stale one")
}
