package runpod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aurax/aurax/internal/ctxtime"
	"github.com/aurax/aurax/internal/retry"
)

// Config is the worker's side of RunPod's protocol, from the environment
// RunPod sets in a worker (see FromEnv).
type Config struct {
	GetJobURL     string        // RUNPOD_WEBHOOK_GET_JOB; $ID → WorkerID
	PostOutputURL string        // RUNPOD_WEBHOOK_POST_OUTPUT; $RUNPOD_POD_ID → WorkerID, then $ID → job id
	PostStreamURL string        // RUNPOD_WEBHOOK_POST_STREAM; as PostOutputURL
	PingURL       string        // RUNPOD_WEBHOOK_PING; $RUNPOD_POD_ID → WorkerID
	APIKey        string        // RUNPOD_AI_API_KEY, sent raw in Authorization
	WorkerID      string        // RUNPOD_POD_ID
	PingInterval  time.Duration // RUNPOD_PING_INTERVAL (ms), default 10 s
	Concurrency   int           // jobs at once: the admission slots
	JobTimeout    time.Duration // longest job (0: none)
	Backoff       time.Duration // first wait after a failed take or post, doubled up to MaxBackoff, jittered
	MaxBackoff    time.Duration
	PostAttempts  int // tries per result post
}

// FromEnv reads RunPod's worker environment. queue is false when
// RUNPOD_WEBHOOK_GET_JOB is unset: local mode (run test_input.json once).
func FromEnv(lookup func(string) (string, bool)) (cfg Config, queue bool, err error) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	cfg = Config{
		GetJobURL:     get("RUNPOD_WEBHOOK_GET_JOB"),
		PostOutputURL: get("RUNPOD_WEBHOOK_POST_OUTPUT"),
		PostStreamURL: get("RUNPOD_WEBHOOK_POST_STREAM"),
		PingURL:       get("RUNPOD_WEBHOOK_PING"),
		APIKey:        get("RUNPOD_AI_API_KEY"),
		WorkerID:      get("RUNPOD_POD_ID"),
		PingInterval:  10 * time.Second,
		Concurrency:   1,
		Backoff:       500 * time.Millisecond,
		MaxBackoff:    30 * time.Second,
		PostAttempts:  4,
	}
	if v := get("RUNPOD_PING_INTERVAL"); v != "" {
		ms, perr := strconv.Atoi(v)
		if perr != nil || ms <= 0 {
			return cfg, false, fmt.Errorf("RUNPOD_PING_INTERVAL=%q: want milliseconds", v)
		}
		cfg.PingInterval = time.Duration(ms) * time.Millisecond
	}
	if cfg.GetJobURL == "" {
		return cfg, false, nil
	}
	return cfg, true, cfg.Validate()
}

// Validate reports what queue mode lacks. Values are not echoed: the URLs
// may carry tokens.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"RUNPOD_WEBHOOK_GET_JOB", c.GetJobURL},
		{"RUNPOD_WEBHOOK_POST_OUTPUT", c.PostOutputURL}} {
		if u, err := url.Parse(strings.NewReplacer("$RUNPOD_POD_ID", "x", "$ID", "x").Replace(f.v)); f.v == "" || err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: not an absolute URL", f.name))
		}
	}
	if c.WorkerID == "" {
		errs = append(errs, errors.New("RUNPOD_POD_ID: required"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d: at least 1", c.Concurrency))
	}
	if c.PingInterval <= 0 || c.Backoff <= 0 || c.MaxBackoff < c.Backoff || c.PostAttempts < 1 {
		errs = append(errs, errors.New("ping interval, backoff and post attempts must be positive"))
	}
	return errors.Join(errs...)
}

// Worker takes jobs from RunPod's queue and runs them.
type Worker struct {
	cfg    Config
	run    *Runner
	http   *http.Client
	logger *slog.Logger
	ready  func() bool

	mu     sync.Mutex
	active map[string]struct{} // jobs in progress, for job_in_progress and heartbeats
}

// NewWorker returns a worker. hc talks to RunPod (nil: a plain client);
// ready, when not nil, is polled before the first take (the model loaded).
func NewWorker(cfg Config, run *Runner, hc *http.Client, ready func() bool, logger *slog.Logger) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Worker{cfg: cfg, run: run, http: hc, ready: ready, active: map[string]struct{}{},
		logger: logger.With("component", "runpod-worker", "worker_id", cfg.WorkerID)}, nil
}

// Run takes and runs jobs, Concurrency at a time, until ctx ends; then it
// takes no more, lets the jobs in flight finish and post their results
// (heartbeats go on meanwhile), and returns nil once all have.
func (w *Worker) Run(ctx context.Context) error {
	hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(hbCtx) })
	defer func() { stopHB(); hb.Wait() }()

	if err := w.waitReady(ctx); err != nil {
		return nil
	}
	w.logger.Info("taking jobs", "concurrency", w.cfg.Concurrency, "ping_interval", w.cfg.PingInterval)
	var jobs sync.WaitGroup
	defer jobs.Wait()
	sem := make(chan struct{}, w.cfg.Concurrency)
	backoff := retry.Backoff{Initial: w.cfg.Backoff, Max: w.cfg.MaxBackoff}
	failures := 0 // takes failed in a row
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			w.logger.Info("stopping: finishing jobs in flight", "in_flight", len(w.inProgress()))
			return nil
		}
		job, err := w.take(ctx)
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				continue // the select above sees it
			}
			if errors.Is(err, errNoJob) {
				failures = 0
				continue
			}
			failures++
			wait := backoff.Wait(failures, err)
			w.logger.Warn("job take failed", "err", err, "retry_in", wait)
			_ = ctxtime.Sleep(ctx, wait) // a cancel is seen by the select above
			continue
		}
		failures = 0
		w.setActive(job.ID, true)
		// A job taken is finished even when ctx ends now: RunPod gave it to us.
		jobs.Go(func() {
			defer func() { <-sem }()
			defer w.setActive(job.ID, false)
			w.runJob(context.WithoutCancel(ctx), job)
		})
	}
}

func (w *Worker) waitReady(ctx context.Context) error {
	if w.ready == nil {
		return nil
	}
	for logged := false; !w.ready(); logged = true {
		if !logged {
			w.logger.Info("waiting for the model to be ready before taking jobs")
		}
		if err := ctxtime.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func (w *Worker) setActive(id string, on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if on {
		w.active[id] = struct{}{}
	} else {
		delete(w.active, id)
	}
}

func (w *Worker) inProgress() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]string, 0, len(w.active))
	for id := range w.active {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// withQuery adds query parameters to a URL template after substitution.
func withQuery(raw string, kv ...string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func (w *Worker) request(ctx context.Context, method, u string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", w.cfg.APIKey) // RunPod's worker API takes the raw key
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// take long-polls for one job. errNoJob: none came (204 or an empty answer).
// A 429's error carries the wait it asked for (retry.After).
func (w *Worker) take(ctx context.Context) (Job, error) {
	inProgress := "0"
	if len(w.inProgress()) > 0 {
		inProgress = "1"
	}
	u, err := withQuery(strings.ReplaceAll(w.cfg.GetJobURL, "$ID", w.cfg.WorkerID), "job_in_progress", inProgress)
	if err != nil {
		return Job{}, fmt.Errorf("job take URL: %w", err)
	}
	req, err := w.request(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Job{}, err
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return Job{}, redactURL(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJob+1))
	switch {
	case err != nil:
		return Job{}, fmt.Errorf("job take: read: %w", err)
	case resp.StatusCode == http.StatusNoContent:
		return Job{}, errNoJob
	case resp.StatusCode == http.StatusTooManyRequests:
		return Job{}, retry.After(fmt.Errorf("job take: %s", resp.Status), retry.HeaderWait(resp.Header, time.Now()))
	case resp.StatusCode != http.StatusOK:
		return Job{}, fmt.Errorf("job take: %s", resp.Status)
	case len(bytes.TrimSpace(b)) == 0:
		return Job{}, errNoJob
	}
	job, err := DecodeJob(b)
	if err != nil {
		// Without an id the job cannot be answered; RunPod times it out.
		return Job{}, err
	}
	return job, nil
}

// redactURL drops the URL from a transport error: RunPod's URLs carry the
// endpoint's identifiers and sometimes tokens.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// runJob runs one job and posts its result; it never panics the worker.
func (w *Worker) runJob(ctx context.Context, job Job) {
	start := time.Now()
	log := w.logger.With("job_id", job.ID)
	if w.cfg.JobTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.cfg.JobTimeout)
		defer cancel()
	}
	var res Result
	streamed := false
	func() {
		defer func() {
			if p := recover(); p != nil {
				log.Error("job panicked", "panic", fmt.Sprint(p))
				res = Result{Error: "internal error"}
			}
		}()
		res = w.run.Run(ctx, job.Input, func(chunk any) {
			streamed = true
			if w.cfg.PostStreamURL == "" {
				return
			}
			if err := w.post(ctx, w.cfg.PostStreamURL, job.ID, true, map[string]any{"output": chunk}); err != nil {
				log.Warn("stream post failed", "err", err)
			}
		})
	}()
	body := map[string]any{"output": res.Output}
	if res.Failed() {
		body = map[string]any{"error": res.Error}
	}
	if err := w.post(ctx, w.cfg.PostOutputURL, job.ID, streamed, body); err != nil {
		log.Error("result post failed", "err", err)
		return
	}
	log.Info("job done", "failed", res.Failed(), "streamed", streamed, "duration", time.Since(start).Round(time.Millisecond))
}

// post sends body for job to a result URL template, retrying 429, 5xx and
// network errors up to PostAttempts (internal/retry's loop and backoff).
func (w *Worker) post(ctx context.Context, tmpl, jobID string, stream bool, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": "output is not JSON: " + err.Error()})
	}
	raw := strings.ReplaceAll(strings.ReplaceAll(tmpl, "$RUNPOD_POD_ID", w.cfg.WorkerID), "$ID", jobID)
	u, err := withQuery(raw, "isStream", strconv.FormatBool(stream))
	if err != nil {
		return fmt.Errorf("result URL: %w", err)
	}
	p := retry.Policy{Attempts: w.cfg.PostAttempts, Backoff: retry.Backoff{Initial: w.cfg.Backoff, Max: w.cfg.MaxBackoff}}
	return p.Do(ctx, func(ctx context.Context) error { return w.postOnce(ctx, u, b) })
}

// postOnce is one try of post: a 429 waits what it asks, another 4xx is
// terminal, a 5xx or a transport error is retried.
func (w *Worker) postOnce(ctx context.Context, u string, body []byte) error {
	req, err := w.request(ctx, http.MethodPost, u, body)
	if err != nil {
		return retry.Terminal(err)
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return redactURL(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	err = errors.New(resp.Status)
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests:
		return retry.After(err, retry.HeaderWait(resp.Header, time.Now()))
	case resp.StatusCode < 500:
		return retry.Terminal(err)
	}
	return err
}

// heartbeat pings every PingInterval with the jobs in progress until ctx
// ends.
func (w *Worker) heartbeat(ctx context.Context) {
	if w.cfg.PingURL == "" {
		return
	}
	t := time.NewTicker(w.cfg.PingInterval)
	defer t.Stop()
	for {
		w.ping(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *Worker) ping(ctx context.Context) {
	kv := []string{}
	if ids := w.inProgress(); len(ids) > 0 {
		kv = append(kv, "job_id", strings.Join(ids, ","))
	}
	u, err := withQuery(strings.ReplaceAll(w.cfg.PingURL, "$RUNPOD_POD_ID", w.cfg.WorkerID), kv...)
	if err != nil {
		w.logger.Warn("ping URL", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, max(w.cfg.PingInterval, time.Second))
	defer cancel()
	req, err := w.request(ctx, http.MethodGet, u, nil)
	if err != nil {
		return
	}
	resp, err := w.http.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			w.logger.Warn("ping failed", "err", redactURL(err))
		}
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		w.logger.Warn("ping answered", "status", resp.StatusCode)
	}
}

// RunLocal is local mode: it runs the job in testInput ({"input": {...}},
// as RunPod's test_input.json) once, writes {"output": ...} or
// {"error": "..."} to out, and returns an error when the job failed.
func RunLocal(ctx context.Context, r *Runner, testInput []byte, out io.Writer) error {
	var in struct {
		ID    string          `json:"id"`
		Input json.RawMessage `json:"input"`
	}
	var res Result
	if err := json.Unmarshal(testInput, &in); err != nil {
		res = Result{Error: "test input: " + err.Error()}
	} else {
		res = r.Run(ctx, in.Input, nil)
	}
	body := map[string]any{"output": res.Output}
	if res.Failed() {
		body = map[string]any{"error": res.Error}
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(body); err != nil {
		return err
	}
	if res.Failed() {
		return errors.New("job failed: " + res.Error)
	}
	return nil
}
