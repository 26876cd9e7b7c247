package compose

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Config configures the Compose provider (YAML section scaling.compose…;
// see DefaultConfig).
type Config struct {
	Host        string        `yaml:"host" help:"Docker Engine address (empty: DOCKER_HOST, else unix:///var/run/docker.sock)"`
	Project     string        `yaml:"project" help:"Compose project to scale (empty: this container's com.docker.compose.project label)"`
	Service     string        `yaml:"service" help:"Compose service to scale (empty: this container's com.docker.compose.service label)"`
	ContainerID string        `yaml:"container_id" help:"this replica's container ID or name (empty: detected from the hostname or /proc/self/mountinfo)"`
	StopTimeout time.Duration `yaml:"stop_timeout" help:"on scale-down, time a replica has to drain after SIGTERM before SIGKILL (longer than server.drain_timeout)"`
	APITimeout  time.Duration `yaml:"api_timeout" help:"time one Docker Engine API call may take"`
}

// DefaultConfig finds everything from the container it runs in, and gives a
// replica 45 s to drain (server.drain_timeout is 30 s).
func DefaultConfig() Config {
	return Config{StopTimeout: 45 * time.Second, APITimeout: 30 * time.Second}
}

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
	if (c.Project == "") != (c.Service == "") {
		bad("project", "set project and service together, or neither (then both come from this container's labels)")
	}
	if c.StopTimeout < time.Second {
		bad("stop_timeout", "%v is below 1s", c.StopTimeout)
	}
	if c.APITimeout <= 0 {
		bad("api_timeout", "must be positive")
	}
	return errors.Join(errs...)
}
