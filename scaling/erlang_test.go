package scaling

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestErlangC checks the M/M/c formulas against values worked by hand.
func TestErlangC(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    int
		a    float64
		want float64
	}{
		// c = 1: P(wait) = ρ.
		{"M/M/1 at 0.5", 1, 0.5, 0.5},
		// c = 2, a = 1: B = a²/2 / (1 + a + a²/2) = 0.5/2.5 = 0.2;
		// C = 2·0.2 / (2 − 1·(1 − 0.2)) = 0.4/1.2 = 1/3.
		{"two servers at 1 erlang", 2, 1, 1.0 / 3},
		// c = 3, a = 2: B = (8/6)/(1+2+2+8/6) = (4/3)/(19/3) = 4/19;
		// C = 3·(4/19) / (3 − 2·(15/19)) = (12/19)/(27/19) = 4/9.
		{"three servers at 2 erlangs", 3, 2, 4.0 / 9},
		{"no load", 4, 0, 0},
		{"saturated", 4, 4, 1},
		{"overloaded", 4, 9, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.InDelta(t, tc.want, ErlangC(tc.c, tc.a), 1e-12)
		})
	}
}

func TestWaitTailAndSlotsFor(t *testing.T) {
	// M/M/1, ρ = 0.5, s = 1: P(W > t) = ρ·e^{−(1−ρ)t} → t = 2: 0.5·e^{−1}.
	require.InDelta(t, 0.5*math.Exp(-1), WaitTail(1, 0.5, 1, 2), 1e-12)
	// Three servers at 2 erlangs, s = 2, t = 1: 4/9 · e^{−(3−2)·1/2}.
	require.InDelta(t, 4.0/9*math.Exp(-0.5), WaitTail(3, 2, 2, 1), 1e-12)
	require.Equal(t, 1.0, WaitTail(2, 3, 1, 5), "overloaded: everyone waits")
	// 2 erlangs, s = 2, t = 1, eps 0.3: c = 3 gives 0.27 ≤ 0.3; c = 2 is
	// saturated.
	require.Equal(t, 3, SlotsFor(2, 2, 1, 0.3, 100))
	// eps 0.05: c = 4: B(4) = (2/3)/(1+2+2+4/3+2/3) = 2/21, C = 4·(2/21)/(4−2·19/21)
	// = (8/21)/(46/21) = 4/23; tail 4/23·e^{−1} = 0.064 > 0.05; c = 5 passes.
	require.InDelta(t, 4.0/23*math.Exp(-1), WaitTail(4, 2, 2, 1), 1e-12)
	require.Equal(t, 5, SlotsFor(2, 2, 1, 0.05, 100))
	require.Equal(t, 7, SlotsFor(50, 1, 1, 0.01, 7), "capped at the limit")
}
