package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/scaling/sim"
)

func init() {
	register("simulate", "replay a request trace through the scaling policies", runSimulate)
}

// simFile is the --config file: the scaling section of AURAX's config and
// the simulator's model.
type simFile struct {
	Scaling  *scaling.Config `yaml:"scaling"`
	Simulate *simSettings    `yaml:"simulate"`
}

type simSettings struct {
	Slots      int     `yaml:"slots"`
	PrefillTPS float64 `yaml:"prefill_tps"`
	DecodeTPS  float64 `yaml:"decode_tps"`
	ColdStartS float64 `yaml:"cold_start_s"`
	MaxWaitS   float64 `yaml:"max_wait_s"`
	SLOWaitS   float64 `yaml:"slo_wait_s"`
	WarmupS    float64 `yaml:"warmup_s"`
	Target     float64 `yaml:"target"`
	Price      float64 `yaml:"price"`
}

// simRun is one simulate command: its options and flags.
type simRun struct {
	opt                        sim.Options
	trace, policy, out, static string
	rateScale, timeScale       float64
	asJSON, quiet              bool
}

func runSimulate(args []string) error {
	r, err := parseSimulate(args)
	if err != nil {
		return err
	}
	reqs, err := r.requests()
	if err != nil {
		return err
	}
	names, err := r.policies(reqs)
	if err != nil {
		return err
	}
	if !r.quiet {
		r.opt.Progress = func(p string, frac float64) { fmt.Fprintf(os.Stderr, "\rsimulating %-12s %3.0f%%", p, 100*frac) }
	}
	results, err := sim.RunAll(reqs, names, r.opt)
	if !r.quiet {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	return r.report(results)
}

// parseSimulate reads the flags and the --config file, and checks them.
func parseSimulate(args []string) (*simRun, error) {
	r := &simRun{opt: sim.DefaultOptions()}
	opt := &r.opt
	fs := newFlagSet("simulate")
	fs.StringVar(&r.trace, "trace", "", "trace CSV: Azure (TIMESTAMP,ContextTokens,GeneratedTokens) or offsets in seconds[,prompt,generated]")
	configFile := fs.String("config", "", "YAML file with a scaling: section (AURAX config) and a simulate: section")
	fs.StringVar(&r.policy, "policy", "", "policy name, comma-separated names, or all (default: the configured policy)")
	fs.Float64Var(&r.rateScale, "rate-scale", 1, "multiply the arrival rate")
	fs.Float64Var(&r.timeScale, "time-scale", 1, "compress time (2: twice as fast)")
	fs.StringVar(&r.out, "out", "", "directory for the SVG plot and results.json")
	fs.BoolVar(&r.asJSON, "json", false, "one JSON object per policy per line")
	fs.StringVar(&r.static, "static", "", "static:N sizes for --policy all, comma-separated (default: around the oracle's peak)")
	fs.BoolVar(&r.quiet, "quiet", false, "no progress on stderr")
	fs.IntVar(&opt.Model.Slots, "slots", opt.Model.Slots, "concurrent requests per replica")
	fs.Float64Var(&opt.Model.PrefillTPS, "prefill-tps", opt.Model.PrefillTPS, "prompt tokens per second per request")
	fs.Float64Var(&opt.Model.DecodeTPS, "decode-tps", opt.Model.DecodeTPS, "generated tokens per second per request")
	fs.Float64Var(&opt.Model.ColdStart, "cold-start", opt.Model.ColdStart, "seconds before a new replica serves")
	fs.Float64Var(&opt.Model.SLOWait, "slo-wait", opt.Model.SLOWait, "SLO: longest queue wait in seconds")
	fs.Float64Var(&opt.Model.MaxWait, "max-wait", opt.Model.MaxWait, "seconds a request may wait before it is dropped (0: never)")
	fs.Float64Var(&opt.Model.Warmup, "warmup", opt.Model.Warmup, "seconds replayed but not counted")
	fs.Float64Var(&opt.Target, "target", opt.Target, "SLO attainment target")
	fs.Float64Var(&opt.Price, "price", opt.Price, "USD per replica-hour")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if r.trace == "" {
		return nil, usageErrorf("--trace is required (see 'aurax simulate --help')")
	}
	if *configFile != "" {
		if err := loadSimConfig(*configFile, opt); err != nil {
			return nil, err
		}
	}
	if err := opt.Scaling.Validate(); err != nil {
		return nil, err
	}
	if opt.Model.Slots < 1 || opt.Model.PrefillTPS <= 0 || opt.Model.DecodeTPS <= 0 || r.rateScale <= 0 || r.timeScale <= 0 {
		return nil, usageErrorf("--slots, --prefill-tps, --decode-tps, --rate-scale and --time-scale must be positive")
	}
	return r, nil
}

// requests reads the trace and scales it.
func (r *simRun) requests() ([]sim.Request, error) {
	f, err := os.Open(r.trace)
	if err != nil {
		return nil, err
	}
	reqs, err := sim.ParseTrace(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.trace, err)
	}
	if r.timeScale != 1 {
		reqs = sim.TimeScale(reqs, r.timeScale)
	}
	if r.rateScale != 1 {
		reqs = sim.RateScale(reqs, r.rateScale)
	}
	return reqs, nil
}

// policies are the names --policy asks for (all: every policy and static
// sizes), by default the configured policy.
func (r *simRun) policies(reqs []sim.Request) ([]string, error) {
	switch r.policy {
	case "":
		return []string{r.opt.Scaling.Policy}, nil
	case "all":
		sizes, err := staticSizes(r.static, reqs, r.opt)
		if err != nil {
			return nil, err
		}
		return sim.AllPolicies(sizes), nil
	}
	return strings.Split(r.policy, ","), nil
}

// report writes the plot and results.json under --out, then the results
// to stdout as a table or JSON lines.
func (r *simRun) report(results []sim.Result) error {
	if r.out != "" {
		if err := os.MkdirAll(r.out, 0o755); err != nil {
			return err
		}
		title := fmt.Sprintf("%s (rate ×%g, time ×%g)", filepath.Base(r.trace), r.rateScale, r.timeScale)
		if err := os.WriteFile(filepath.Join(r.out, "simulation.svg"), sim.Plot(results, title), 0o644); err != nil {
			return err
		}
		if err := writeResults(filepath.Join(r.out, "results.json"), results); err != nil {
			return err
		}
	}
	if !r.asJSON {
		return sim.WriteTable(os.Stdout, results)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, res := range results {
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	return nil
}

// writeResults saves every policy's result with its timeline (one point per
// sample: arrivals since the previous point, queue, billed and ready replicas).
func writeResults(path string, results []sim.Result) error {
	type withTimeline struct {
		sim.Result
		Timeline []sim.Point `json:"timeline"`
	}
	all := make([]withTimeline, len(results))
	for i, r := range results {
		all[i] = withTimeline{r, r.Timeline}
	}
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func loadSimConfig(path string, opt *sim.Options) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	file := simFile{Scaling: &opt.Scaling}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	if s := file.Simulate; s != nil {
		m := &opt.Model
		setIf(&m.Slots, s.Slots)
		setIf(&m.PrefillTPS, s.PrefillTPS)
		setIf(&m.DecodeTPS, s.DecodeTPS)
		setIf(&m.ColdStart, s.ColdStartS)
		setIf(&m.MaxWait, s.MaxWaitS)
		setIf(&m.SLOWait, s.SLOWaitS)
		setIf(&m.Warmup, s.WarmupS)
		setIf(&opt.Target, s.Target)
		setIf(&opt.Price, s.Price)
	}
	return nil
}

func setIf[T int | float64](dst *T, v T) {
	if v != 0 {
		*dst = v
	}
}

// staticSizes parses --static, or picks sizes around the oracle's peak.
func staticSizes(s string, reqs []sim.Request, opt sim.Options) ([]int, error) {
	if s != "" {
		var out []int
		for _, f := range strings.Split(s, ",") {
			var n int
			if _, err := fmt.Sscan(f, &n); err != nil || n < 1 {
				return nil, fmt.Errorf("--static: %q is not a positive size", f)
			}
			out = append(out, n)
		}
		return out, nil
	}
	o := opt
	o.Progress = nil
	peak := 1
	for _, p := range sim.Oracle(reqs, o).Timeline {
		peak = max(peak, p.Ready)
	}
	var out []int
	step := max(1, peak/8)
	for n := 1; n <= peak+peak/4; n += step {
		out = append(out, n)
	}
	return out, nil
}
