package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSimulateOut: --out writes the plot and results.json, every policy's
// result with its timeline.
func TestSimulateOut(t *testing.T) {
	dir := t.TempDir()
	err := runSimulate([]string{"--quiet", "--trace", filepath.Join("..", "..", "scaling", "sim", "testdata", "burst.csv"),
		"--policy", "predictive,static:2", "--warmup", "0", "--out", dir})
	require.NoError(t, err)
	svg, err := os.ReadFile(filepath.Join(dir, "simulation.svg"))
	require.NoError(t, err)
	require.Contains(t, string(svg), "<svg")
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	var rs []struct {
		Policy   string `json:"policy"`
		Requests int    `json:"requests"`
		Timeline []struct {
			T        float64 `json:"t"`
			Arrivals int     `json:"arrivals"`
			Replicas int     `json:"replicas"`
		} `json:"timeline"`
	}
	require.NoError(t, json.Unmarshal(b, &rs))
	require.Len(t, rs, 3, "the two asked for and the oracle they are costed against")
	for _, r := range rs {
		require.Positive(t, r.Requests, r.Policy)
		require.NotEmpty(t, r.Timeline, r.Policy)
		arrivals := 0
		for _, p := range r.Timeline {
			arrivals += p.Arrivals
			require.Positive(t, p.Replicas, r.Policy)
		}
		require.Equal(t, r.Requests, arrivals, "%s: the timeline's arrivals are the trace's", r.Policy)
	}
	require.Equal(t, []string{"predictive", "static:2", "oracle"}, []string{rs[0].Policy, rs[1].Policy, rs[2].Policy})
}
