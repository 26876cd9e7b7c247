package runpod

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/aurax/aurax/scaling"
)

// Config configures the RunPod provider and observer. The API key comes
// from the environment (RUNPOD_API_KEY) unless APIKey is set.
type Config struct {
	EndpointID  string        `yaml:"endpoint_id" help:"RunPod Serverless endpoint id"`
	APIKey      string        `yaml:"api_key" env:"RUNPOD_API_KEY" help:"RunPod API key (Bearer); never logged"`
	BaseURL     string        `yaml:"base_url" help:"RunPod REST API v2 base (endpoint settings and workers)"`
	QueueURL    string        `yaml:"queue_url" help:"RunPod serverless API base (GET {queue_url}/{endpoint_id}/health)"`
	MaxWorkers  int           `yaml:"max_workers" help:"budget: workers.max kept on the endpoint; the floor never exceeds it"`
	IdleTimeout time.Duration `yaml:"idle_timeout" help:"workers.idleTimeout to keep (0: leave as set on RunPod)"`
	ScalerType  string        `yaml:"scaler_type" help:"RunPod's own scaler to keep: QUEUE_DELAY or REQUEST_COUNT (empty: leave as set)"`
	ScalerValue int           `yaml:"scaler_value" help:"queue delay in seconds (QUEUE_DELAY) or requests per worker (REQUEST_COUNT)"`
	WorkerSlots int           `yaml:"worker_slots" help:"concurrent jobs one worker runs (its admission slots; 0: unknown)"`
	Timeout     time.Duration `yaml:"timeout" help:"time one API call may take (and longest wait for a spent rate limit)"`
}

// Name is this provider's and observer's scaling.provider and scaling.mode
// value.
const Name = scaling.ModeRunPod

// Scaler types of RunPod's own scaler.
const (
	ScalerQueueDelay   = "QUEUE_DELAY"
	ScalerRequestCount = "REQUEST_COUNT"
)

// Default API bases.
const (
	DefaultBaseURL  = "https://api.runpod.io/v2"
	DefaultQueueURL = "https://api.runpod.ai/v2"
)

// DefaultConfig returns the seed's production budget (50 workers) with
// RunPod's API bases; EndpointID and the key must be set.
func DefaultConfig() Config {
	return Config{
		BaseURL:    DefaultBaseURL,
		QueueURL:   DefaultQueueURL,
		MaxWorkers: 50,
		Timeout:    10 * time.Second,
	}
}

// Validate reports every invalid field, naming it by its YAML path under
// runpod. It does not require the key (it may come from the environment
// later): New does.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("runpod.%s: "+format, append([]any{field}, args...)...))
	}
	if c.EndpointID == "" {
		bad("endpoint_id", "required")
	} else if url.PathEscape(c.EndpointID) != c.EndpointID {
		bad("endpoint_id", "%q has characters an endpoint id cannot have", c.EndpointID)
	}
	for _, u := range []struct{ field, v string }{{"base_url", c.BaseURL}, {"queue_url", c.QueueURL}} {
		if p, err := url.Parse(u.v); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad(u.field, "%q is not an http(s) URL", u.v)
		}
	}
	if c.MaxWorkers < 1 {
		bad("max_workers", "%d: at least 1", c.MaxWorkers)
	}
	if c.IdleTimeout < 0 || c.IdleTimeout%time.Second != 0 {
		bad("idle_timeout", "%s: a non-negative whole number of seconds", c.IdleTimeout)
	}
	switch c.ScalerType {
	case "":
		if c.ScalerValue != 0 {
			bad("scaler_value", "set without scaler_type")
		}
	case ScalerQueueDelay, ScalerRequestCount:
		if c.ScalerValue < 1 {
			bad("scaler_value", "%d: at least 1 with %s", c.ScalerValue, c.ScalerType)
		}
	default:
		bad("scaler_type", "%q is not QUEUE_DELAY or REQUEST_COUNT", c.ScalerType)
	}
	if c.WorkerSlots < 0 {
		bad("worker_slots", "%d is negative", c.WorkerSlots)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive")
	}
	return errors.Join(errs...)
}

// ValidateFor is Validate plus what the scaling settings sc must respect:
// the floor the controller sets, workers.min, is at most max_workers, so
// scaling.max_replicas may not exceed it.
func (c Config) ValidateFor(sc scaling.Config) error {
	err := c.Validate()
	if r := sc.Resolved(); c.MaxWorkers >= 1 && r.MaxReplicas > c.MaxWorkers {
		err = errors.Join(err, fmt.Errorf("scaling.max_replicas %d is above runpod.max_workers %d (the endpoint's budget, and the highest floor it takes): lower the one or raise the other",
			r.MaxReplicas, c.MaxWorkers))
	}
	return err
}
