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

func runSimulate(args []string) error {
	opt := sim.DefaultOptions()
	fs := newFlagSet("simulate")
	trace := fs.String("trace", "", "trace CSV: Azure (TIMESTAMP,ContextTokens,GeneratedTokens) or offsets in seconds[,prompt,generated]")
	configFile := fs.String("config", "", "YAML file with a scaling: section (AURAX config) and a simulate: section")
	policy := fs.String("policy", "", "policy name, comma-separated names, or all (default: the configured policy)")
	rateScale := fs.Float64("rate-scale", 1, "multiply the arrival rate")
	timeScale := fs.Float64("time-scale", 1, "compress time (2: twice as fast)")
	out := fs.String("out", "", "directory for the SVG plot and results.json")
	asJSON := fs.Bool("json", false, "one JSON object per policy per line")
	static := fs.String("static", "", "static:N sizes for --policy all, comma-separated (default: around the oracle's peak)")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
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
		return err
	}
	if *trace == "" {
		return usageErrorf("--trace is required (see 'aurax simulate --help')")
	}
	if *configFile != "" {
		if err := loadSimConfig(*configFile, &opt); err != nil {
			return err
		}
	}
	if err := opt.Scaling.Validate(); err != nil {
		return err
	}
	if opt.Model.Slots < 1 || opt.Model.PrefillTPS <= 0 || opt.Model.DecodeTPS <= 0 || *rateScale <= 0 || *timeScale <= 0 {
		return usageErrorf("--slots, --prefill-tps, --decode-tps, --rate-scale and --time-scale must be positive")
	}
	f, err := os.Open(*trace)
	if err != nil {
		return err
	}
	reqs, err := sim.ParseTrace(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *trace, err)
	}
	if *timeScale != 1 {
		reqs = sim.TimeScale(reqs, *timeScale)
	}
	if *rateScale != 1 {
		reqs = sim.RateScale(reqs, *rateScale)
	}
	names := []string{opt.Scaling.Policy}
	switch {
	case *policy == "all":
		sizes, err := staticSizes(*static, reqs, opt)
		if err != nil {
			return err
		}
		names = sim.AllPolicies(sizes)
	case *policy != "":
		names = strings.Split(*policy, ",")
	}
	if !*quiet {
		opt.Progress = func(p string, frac float64) { fmt.Fprintf(os.Stderr, "\rsimulating %-12s %3.0f%%", p, 100*frac) }
	}
	results, err := sim.RunAll(reqs, names, opt)
	if !*quiet {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		title := fmt.Sprintf("%s (rate ×%g, time ×%g)", filepath.Base(*trace), *rateScale, *timeScale)
		if err := os.WriteFile(filepath.Join(*out, "simulation.svg"), sim.Plot(results, title), 0o644); err != nil {
			return err
		}
		if err := writeResults(filepath.Join(*out, "results.json"), results); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	return sim.WriteTable(os.Stdout, results)
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
