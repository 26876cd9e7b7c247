package scaling

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLowestAddressSelf: this replica is Self when set, else any address of
// its interfaces (Local), the same in Leader, Gateways and Others.
func TestLowestAddressSelf(t *testing.T) {
	peers := &PeersObserver{Name: "aurax", Resolver: staticResolver{"10.0.0.3", "10.0.0.1", "10.0.0.2"}}
	local := func(addrs ...string) func() ([]string, error) {
		return func() ([]string, error) { return addrs, nil }
	}
	for _, tc := range []struct {
		name     string
		el       LowestAddress
		leader   bool
		index, n int
		others   []string
	}{
		{"self set, lowest", LowestAddress{Self: "10.0.0.1", Local: local("10.0.0.2")}, true, 0, 3, []string{"10.0.0.2", "10.0.0.3"}},
		{"self set, not lowest", LowestAddress{Self: "10.0.0.3"}, false, 2, 3, []string{"10.0.0.1", "10.0.0.2"}},
		{"from the interfaces", LowestAddress{Local: local("127.0.0.1", "10.0.0.2")}, false, 1, 3, []string{"10.0.0.1", "10.0.0.3"}},
		{"from the interfaces, lowest", LowestAddress{Local: local("10.0.0.1")}, true, 0, 3, []string{"10.0.0.2", "10.0.0.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			el := tc.el
			el.Peers = peers
			ctx := context.Background()
			leader, self, err := el.Leader(ctx)
			require.NoError(t, err)
			require.Equal(t, "10.0.0.1", leader)
			require.Equal(t, tc.leader, self, "Leader")
			i, n, err := el.Gateways(ctx)
			require.NoError(t, err)
			require.Equal(t, []int{tc.index, tc.n}, []int{i, n}, "Gateways")
			others, err := el.Others(ctx)
			require.NoError(t, err)
			require.Equal(t, tc.others, others, "Others")
		})
	}
	// An address list that fails is an error everywhere, and a replica not
	// among the peers has no index.
	boom := errors.New("no interfaces")
	el := LowestAddress{Peers: peers, Local: func() ([]string, error) { return nil, boom }}
	_, _, err := el.Leader(context.Background())
	require.ErrorIs(t, err, boom)
	_, _, err = el.Gateways(context.Background())
	require.ErrorIs(t, err, boom)
	_, err = el.Others(context.Background())
	require.ErrorIs(t, err, boom)
	_, _, err = (&LowestAddress{Peers: peers, Self: "10.0.0.9"}).Gateways(context.Background())
	require.ErrorContains(t, err, "not among the 3 peers")
}
