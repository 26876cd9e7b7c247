package scaling_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	. "github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/scaling/scalingtest"
)

// TestLimitsChangeIsCounted: a count outside the bounds is moved in with
// reason "limits", and that change is an event like any other.
func TestLimitsChangeIsCounted(t *testing.T) {
	prov := scalingtest.NewMemory(1) // the prod profile's floor is 2
	c, _ := newTestController(t, queueConfig(), &fakeObserver{}, prov, true)
	c.Tick(context.Background())
	require.Equal(t, []int{2}, prov.Sets())
	require.Equal(t, "limits", c.Status().Decisions[0].Decision.Reason)
	require.Equal(t, 1.0, toFloat64(t, c.Metrics().Events.WithLabelValues(string(Up), "limits")))
}
