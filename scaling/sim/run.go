package sim

import (
	"fmt"
	"io"
	"strings"
)

// AllPolicies are the names "all" expands to: the controller's policies,
// the baselines, and static sizes around the oracle's mean.
func AllPolicies(static []int) []string {
	names := []string{"thresholds", "target", "predictive", HPA, KPA, RunPod}
	for _, n := range static {
		names = append(names, fmt.Sprintf("static:%d", n))
	}
	return names
}

// RunAll simulates each named policy and the oracle, and fills CostVsOracle.
// The oracle's result comes last.
func RunAll(reqs []Request, names []string, opt Options) ([]Result, error) {
	oracle := Oracle(reqs, opt)
	oracle.CostVsOracle = 1
	var out []Result
	for _, name := range names {
		if name == "oracle" {
			continue
		}
		pol, err := NewPolicy(name, opt.Scaling)
		if err != nil {
			return nil, err
		}
		r := Simulate(reqs, pol, opt)
		if oracle.CostUSD > 0 {
			r.CostVsOracle = r.CostUSD / oracle.CostUSD
		}
		out = append(out, r)
	}
	return append(out, oracle), nil
}

// WriteTable prints results as an aligned table.
func WriteTable(w io.Writer, rs []Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %7s %7s %8s %9s %8s %6s %6s\n", "policy", "reqs", "attain", "p95_s", "rep_h", "cost_$", "events", "vs_orc")
	for _, r := range rs {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}
