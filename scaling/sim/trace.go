// Package sim replays a request trace through AURAX's scaling policies on a
// virtual clock: the same scaling.Policy.Decide the controller runs, a model
// of replicas with inference slots, cold starts and draining, the baselines
// (Kubernetes HPA, Knative KPA, RunPod REQUEST_COUNT, static) and a
// clairvoyant oracle, and reports SLO attainment and cost.
package sim

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Request is one trace row: arrival offset in seconds from the trace's first
// request, and its prompt and generated tokens.
type Request struct {
	At     float64
	Prompt int
	Gen    int
}

// Default token counts of a plain offsets CSV without token columns.
const (
	DefaultPromptTokens = 1000
	DefaultGenTokens    = 100
)

const azureLayout = "2006-01-02 15:04:05.9999999"

// ParseTrace reads either the Azure LLM inference trace format
// (TIMESTAMP,ContextTokens,GeneratedTokens, timestamps like
// 2023-11-16 18:15:46.6805900) or a plain CSV whose first column is an
// offset in seconds, optionally followed by prompt and generated tokens. A
// header line is allowed. Rows are sorted by time and offsets start at 0.
func ParseTrace(r io.Reader) ([]Request, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var out []Request
	var t0 time.Time
	azure, decided := false, false
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		if !decided {
			decided = true
			if strings.EqualFold(f[0], "TIMESTAMP") {
				azure = true
				continue
			}
			if _, err := time.Parse(azureLayout, f[0]); err == nil {
				azure = true
			} else if _, err := strconv.ParseFloat(f[0], 64); err != nil {
				continue // a header of a plain offsets CSV
			}
		}
		req := Request{Prompt: DefaultPromptTokens, Gen: DefaultGenTokens}
		if azure {
			if len(f) != 3 {
				return nil, fmt.Errorf("trace line %d: want TIMESTAMP,ContextTokens,GeneratedTokens", line)
			}
			ts, err := time.Parse(azureLayout, f[0])
			if err != nil {
				return nil, fmt.Errorf("trace line %d: timestamp: %w", line, err)
			}
			if t0.IsZero() {
				t0 = ts
			}
			req.At = ts.Sub(t0).Seconds()
		} else {
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e9 {
				return nil, fmt.Errorf("trace line %d: offset %q is not a number of seconds", line, f[0])
			}
			req.At = v
			if len(f) > 3 {
				return nil, fmt.Errorf("trace line %d: want offset[,prompt_tokens,generated_tokens]", line)
			}
		}
		for i, dst := range []*int{&req.Prompt, &req.Gen} {
			if len(f) > i+1 {
				n, err := strconv.Atoi(f[i+1])
				if err != nil || n < 0 || n > 10_000_000 {
					return nil, fmt.Errorf("trace line %d: token count %q", line, f[i+1])
				}
				*dst = n
			}
		}
		out = append(out, req)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("trace has no requests")
	}
	slices.SortStableFunc(out, byArrival)
	first := out[0].At
	for i := range out {
		out[i].At -= first
	}
	return out, nil
}

// TimeScale compresses time by k (k=2 replays twice as fast).
func TimeScale(reqs []Request, k float64) []Request {
	out := slices.Clone(reqs)
	for i := range out {
		out[i].At /= k
	}
	return out
}

// RateScale multiplies the arrival rate by k, deterministically: each request
// is kept (k<1) or copied floor(k) or ceil(k) times (k>1) by a fixed-seed
// generator, copies spread uniformly within the gap to the next arrival.
func RateScale(reqs []Request, k float64) []Request {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []Request
	for i, r := range reqs {
		n := int(k)
		if rng.Float64() < k-float64(n) {
			n++
		}
		gap := 1.0
		if i+1 < len(reqs) {
			gap = reqs[i+1].At - r.At
		}
		for j := 0; j < n; j++ {
			c := r
			if j > 0 {
				c.At += rng.Float64() * gap
			}
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, byArrival)
	return out
}

// byArrival orders requests by arrival time, keeping the file's order on ties.
func byArrival(a, b Request) int { return cmp.Compare(a.At, b.At) }
