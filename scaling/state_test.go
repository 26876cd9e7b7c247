package scaling

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStateApplied(t *testing.T) {
	earlier := t0.Add(-time.Hour)
	for _, tc := range []struct {
		name             string
		from, to         int
		wantUp, wantDown time.Time
	}{
		{"up starts the up cooldown", 2, 5, t0, earlier},
		{"down starts the down delay", 5, 2, earlier, t0},
		{"no change: nothing", 3, 3, earlier, earlier},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := State{Current: tc.from, LastUp: earlier, LastDown: earlier}
			st.Applied(tc.to, t0)
			require.Equal(t, tc.to, st.Current)
			require.Equal(t, tc.wantUp, st.LastUp, "LastUp")
			require.Equal(t, tc.wantDown, st.LastDown, "LastDown")
		})
	}
	// The limits read what Applied recorded: a scale-up holds the next one
	// for the up cooldown, and any change holds a scale-down for the delay.
	lim := Limits{Min: 1, Max: 10, UpCooldown: time.Minute, DownDelay: 5 * time.Minute}
	st := State{Current: 2}
	st.Applied(4, t0)
	require.Equal(t, None, lim.Finish(4, 6, "", "", st, t0.Add(30*time.Second)).Direction)
	require.Equal(t, Up, lim.Finish(4, 6, "", "", st, t0.Add(time.Minute)).Direction)
	require.Equal(t, None, lim.Finish(4, 3, "", "", st, t0.Add(4*time.Minute)).Direction)
	require.Equal(t, Down, lim.Finish(4, 3, "", "", st, t0.Add(5*time.Minute)).Direction)
}

func TestStateObserved(t *testing.T) {
	var st State
	for i := range 10 {
		now := t0.Add(time.Duration(i) * 15 * time.Second)
		st.Observed(Observation{Time: now, Replicas: i}, now, time.Minute)
	}
	// At 135 s, a minute back keeps 75 s and later.
	require.Len(t, st.History, 5)
	require.Equal(t, 5, st.History[0].Replicas, "oldest kept")
	require.Equal(t, 9, st.History[4].Replicas, "newest last")
}
