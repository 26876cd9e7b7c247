package scaling

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestLimitsChangeIsCounted: a count outside the bounds is moved in with
// reason "limits", and that change is an event like any other.
func TestLimitsChangeIsCounted(t *testing.T) {
	prov := NewMemory(1) // the prod profile's floor is 2
	c, _ := newTestController(t, queueConfig(), &fakeObserver{}, prov, true)
	c.Tick(context.Background())
	require.Equal(t, []int{2}, prov.Sets())
	require.Equal(t, "limits", c.Status().Decisions[0].Decision.Reason)
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.events.WithLabelValues(string(Up), "limits")))
}
