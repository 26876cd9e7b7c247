package compose

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aurax/aurax/scaling"
)

// Config configures the Compose provider (YAML section compose; see
// DefaultConfig).
type Config struct {
	Host        string        `yaml:"host" help:"Docker Engine address (empty: DOCKER_HOST, else unix:///var/run/docker.sock)"`
	Project     string        `yaml:"project" help:"Compose project (empty: this container's com.docker.compose.project label)"`
	Service     string        `yaml:"service" help:"the engine service to scale: Ollama containers, never a gateway"`
	ContainerID string        `yaml:"container_id" help:"this gateway's container ID or name (empty: detected from the hostname or /proc/self/mountinfo)"`
	GPUs        string        `yaml:"gpus" help:"GPUs for engines, one each: all, or IDs like 0,1,2,3 (empty: CPU only)"`
	EnginePort  int           `yaml:"engine_port" help:"port Ollama listens on inside an engine container"`
	StopTimeout time.Duration `yaml:"stop_timeout" help:"on scale-down, longest wait for an engine's requests in flight before it is stopped"`
	APITimeout  time.Duration `yaml:"api_timeout" help:"time one Docker Engine API call may take"`
}

// DefaultConfig scales the service "ollama" of the project this gateway's
// container is in, CPU only, and gives an engine 45 s to finish its
// requests before it stops.
func DefaultConfig() Config {
	return Config{Service: "ollama", EnginePort: 11434, StopTimeout: 45 * time.Second, APITimeout: 30 * time.Second}
}

// Name is this provider's scaling.provider value.
const Name = "compose"

// ValidateFor is Validate plus what the scaling settings sc must respect:
// with compose.gpus a list, one engine per GPU, so scaling.max_replicas may
// not exceed its length ("all" is checked by New, which sees the GPUs).
func (c Config) ValidateFor(sc scaling.Config) error {
	err := c.Validate()
	if list, lerr := gpuList(c.GPUs); lerr == nil && len(list) > 0 && list[0] != "all" {
		if r := sc.Resolved(); r.MaxReplicas > len(list) {
			err = errors.Join(err, fmt.Errorf("scaling.max_replicas %d is above compose.gpus, which lists %d (%s), one engine per GPU: lower scaling.max_replicas or list more GPUs",
				r.MaxReplicas, len(list), strings.Join(list, ",")))
		}
	}
	return err
}

// gpuList parses Config.GPUs: nil for CPU only, {"all"}, or the IDs.
func gpuList(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if s == "all" {
		return []string{"all"}, nil
	}
	var out []string
	for _, id := range strings.Split(s, ",") {
		id = strings.TrimSpace(id)
		if !gpuID.MatchString(id) {
			return nil, fmt.Errorf("%q is not a GPU index (0, 1, …) or UUID (GPU-…)", id)
		}
		if slices.Contains(out, id) {
			return nil, fmt.Errorf("GPU %s listed twice", id)
		}
		out = append(out, id)
	}
	return out, nil
}

var gpuID = regexp.MustCompile(`^([0-9]+|GPU-[0-9a-fA-F-]+|MIG-[0-9a-fA-F-]+)$`)

// Validate reports every invalid field, naming it by its YAML path under
// compose.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("compose.%s: "+format, append([]any{field}, args...)...))
	}
	if c.Host != "" {
		if u, err := url.Parse(c.Host); err != nil || u.Scheme == "" {
			bad("host", "%q is not an address like unix:///var/run/docker.sock or tcp://host:2375", c.Host)
		}
	}
	if c.Service == "" {
		bad("service", "must name the engine service (the Ollama containers)")
	}
	if _, err := gpuList(c.GPUs); err != nil {
		bad("gpus", "%v", err)
	}
	if c.EnginePort < 1 || c.EnginePort > 65535 {
		bad("engine_port", "%d is not a port", c.EnginePort)
	}
	if c.StopTimeout < time.Second {
		bad("stop_timeout", "%v is below 1s", c.StopTimeout)
	}
	if c.APITimeout <= 0 {
		bad("api_timeout", "must be positive")
	}
	return errors.Join(errs...)
}
