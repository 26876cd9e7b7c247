// Package config holds AURAX's one Config struct: defaults, a YAML file, and
// an AURAX_* environment variable for every setting, then Validate.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/scaling/compose"
	"github.com/aurax/aurax/scaling/runpod"
	"go.yaml.in/yaml/v3"
)

// Config is every setting of an AURAX process. Each field's environment
// variable is AURAX_ plus its YAML path in upper case joined by '_' (e.g.
// queue.max_inflight → AURAX_QUEUE_MAX_INFLIGHT), unless an env tag names it.
type Config struct {
	Server  Server         `yaml:"server"`
	Auth    Auth           `yaml:"auth"`
	Ollama  Ollama         `yaml:"ollama"`
	Models  Models         `yaml:"models"`
	Queue   Queue          `yaml:"queue"`
	Metrics Metrics        `yaml:"metrics"`
	RAG     rag.Config     `yaml:"rag"`
	Scaling scaling.Config `yaml:"scaling"`
	Compose compose.Config `yaml:"compose"`
	RunPod  runpod.Config  `yaml:"runpod"`
}

// Server is the HTTP listener and process behaviour.
type Server struct {
	Listen       string        `yaml:"listen" help:"address the API listens on"`
	HealthListen string        `yaml:"health_listen" help:"separate address for /ping and /health (empty: same listener)"`
	BodyLimit    int           `yaml:"body_limit" help:"largest request body in bytes (413 beyond)"`
	ReadTimeout  time.Duration `yaml:"read_timeout" help:"time to read one request"`
	IdleTimeout  time.Duration `yaml:"idle_timeout" help:"keep-alive idle time"`
	DrainTimeout time.Duration `yaml:"drain_timeout" help:"on SIGTERM, how long in-flight requests may finish"`
	KeepAlive    time.Duration `yaml:"keep_alive" help:"interval of keep-alive comments on idle SSE streams"`
	LogLevel     string        `yaml:"log_level" help:"debug, info, warn or error"`
	LogFormat    string        `yaml:"log_format" help:"text or json"`
	AccessLog    bool          `yaml:"access_log" help:"one log line per request (route, status, duration, model, engine); never a key or a prompt"`
	Linger       time.Duration `yaml:"linger" help:"after a 413, how long the rest of the body is read and discarded before closing (0: at once)"`
	MaxN         int           `yaml:"max_n" help:"most choices (OpenAI n) one chat request may ask for; each takes its own inference slot"`
}

// Auth holds the API keys. Keys never appear in logs or metrics.
type Auth struct {
	APIKeys     []string `yaml:"api_keys" env:"AURAX_API_KEYS" help:"comma-separated keys for /v1 and /api (empty: no auth)"`
	APIKeysFile string   `yaml:"api_keys_file" env:"AURAX_API_KEYS_FILE" help:"file with one key per line, added to api_keys"`
	AdminKey    string   `yaml:"admin_key" env:"AURAX_ADMIN_KEY" help:"key for admin endpoints"`
	MetricsKey  string   `yaml:"metrics_key" env:"AURAX_METRICS_KEY" help:"key for /metrics (empty: public)"`
}

// Ollama is the pool of engines (Ollama servers) requests are routed to.
type Ollama struct {
	URL              string        `yaml:"url" help:"engine URLs, comma-separated, each may end #parallel=N (empty: $OLLAMA_HOST, else :11434)"`
	Discover         []string      `yaml:"discover" help:"more engines, comma-separated: dns:HOST:PORT (every A/AAAA record), docker:LABEL=VALUE"`
	DiscoverInterval time.Duration `yaml:"discover_interval" help:"how often dns: discovery resolves again"`
	ConnectTimeout   time.Duration `yaml:"connect_timeout" help:"TCP connect timeout to Ollama"`
	HeaderTimeout    time.Duration `yaml:"header_timeout" help:"time for Ollama to start answering (includes model load)"`
	RequestTimeout   time.Duration `yaml:"request_timeout" help:"longest whole request to Ollama"`
	HealthInterval   time.Duration `yaml:"health_interval" help:"how often readiness re-checks the engines and the vector store, logging changes"`
	PSInterval       time.Duration `yaml:"ps_interval" help:"how often each engine's loaded models (/api/ps) and liveness are checked"`
	TagsInterval     time.Duration `yaml:"tags_interval" help:"how often each engine's models (/api/tags) are listed"`
	LoadEstimate     time.Duration `yaml:"load_estimate" help:"model load time assumed until one is measured (routing waits for a loaded engine when sooner)"`
	PullMissing      bool          `yaml:"pull_missing" help:"pull configured models an engine lacks (/api/pull); it is not ready until it has them"`
	Preload          bool          `yaml:"preload" help:"an engine joining with no model loaded loads models.default first (ready means warm)"`
	Parallel         int           `yaml:"parallel" env:"OLLAMA_NUM_PARALLEL" help:"slots per engine: Ollama's parallel requests (OLLAMA_NUM_PARALLEL)"`
}

// Models names the defaults and aliases.
type Models struct {
	Default   string            `yaml:"default" help:"chat model used when a request names none"`
	Embedding string            `yaml:"embedding" help:"embedding model used when a request names none"`
	Aliases   map[string]string `yaml:"aliases" help:"alias=model, comma-separated in the environment; unless set, qwen3:coder is models.default"`
}

// Queue is the admission queue in front of inference.
type Queue struct {
	MaxInFlight int           `yaml:"max_inflight" help:"most inference requests in flight over all engines (0: the engines' slots)"`
	MaxWaiting  int           `yaml:"max_waiting" help:"requests allowed to wait for a slot (429 beyond)"`
	MaxWait     time.Duration `yaml:"max_wait" help:"longest wait for a slot (429 after)"`
}

// Metrics configures /metrics and the scaling signals.
type Metrics struct {
	SeedNames bool          `yaml:"seed_names" help:"name HTTP metrics fastapi_* as the seed's dashboards expect"`
	Window    time.Duration `yaml:"window" help:"window of the p95 latency and error rate signals"`
}

// Default returns the configuration AURAX runs with when nothing is set.
func Default() Config {
	return Config{
		Server: Server{
			Listen:       ":8000",
			BodyLimit:    8 << 20,
			ReadTimeout:  30 * time.Second,
			IdleTimeout:  120 * time.Second,
			DrainTimeout: 30 * time.Second,
			KeepAlive:    15 * time.Second,
			LogLevel:     "info",
			LogFormat:    "text",
			AccessLog:    true,
			Linger:       5 * time.Second,
			MaxN:         4,
		},
		Ollama: Ollama{
			DiscoverInterval: 5 * time.Second,
			ConnectTimeout:   5 * time.Second,
			HeaderTimeout:    5 * time.Minute,
			RequestTimeout:   10 * time.Minute,
			HealthInterval:   5 * time.Second,
			PSInterval:       3 * time.Second,
			TagsInterval:     30 * time.Second,
			LoadEstimate:     5 * time.Second,
			Preload:          true,
			Parallel:         1,
		},
		Models: Models{
			Default:   "qwen3:8b",
			Embedding: "qwen3-embedding:0.6b",
		},
		Queue: Queue{
			MaxWaiting: 128,
			MaxWait:    30 * time.Second,
		},
		Metrics: Metrics{Window: time.Minute},
		RAG:     rag.DefaultConfig(),
		Scaling: scaling.DefaultConfig(),
		Compose: compose.DefaultConfig(),
		RunPod:  runpod.DefaultConfig(),
	}
}

// Load returns Default, overlaid with the YAML file at path (when not empty),
// then with the environment (lookup is os.LookupEnv in production), then
// validated. Unknown YAML keys are errors: a typo must not pass silently.
func Load(path string, lookup func(string) (string, bool)) (Config, error) {
	cfg := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		dec := yaml.NewDecoder(f)
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, lookup); err != nil {
		return cfg, err
	}
	if err := cfg.defaultEngine(lookup); err != nil {
		return cfg, err
	}
	if cfg.Auth.APIKeysFile != "" {
		keys, err := readKeys(cfg.Auth.APIKeysFile)
		if err != nil {
			return cfg, err
		}
		cfg.Auth.APIKeys = append(cfg.Auth.APIKeys, keys...)
	}
	if _, ok := cfg.Models.Aliases[SeedAlias]; !ok {
		if cfg.Models.Aliases == nil {
			cfg.Models.Aliases = map[string]string{}
		}
		cfg.Models.Aliases[SeedAlias] = cfg.Models.Default
	}
	return cfg, cfg.Validate()
}

// SeedAlias is the model name the seed's dashboards use (model_type
// "qwen3:coder"); unless configured it is an alias of models.default.
const SeedAlias = "qwen3:coder"

func readKeys(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth.api_keys_file: %w", err)
	}
	var keys []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	return keys, nil
}

// Validate reports every setting that cannot work, naming it.
func (c Config) Validate() error {
	var errs []error
	bad := badField(func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	})
	c.Server.validate(bad)
	c.validateOllama(bad)
	c.validateModelsQueue(bad)
	return errors.Join(append(errs, c.sectionErrors()...)...)
}

// badField reports one invalid setting by its YAML path.
type badField func(field, format string, args ...any)

func (s Server) validate(bad badField) {
	if s.Listen == "" {
		bad("server.listen", "must not be empty")
	}
	if s.BodyLimit < 1024 {
		bad("server.body_limit", "%d is below 1024 bytes", s.BodyLimit)
	}
	if s.DrainTimeout < 0 {
		bad("server.drain_timeout", "must not be negative")
	}
	if s.Linger < 0 {
		bad("server.linger", "must not be negative")
	}
	if s.MaxN < 1 || s.MaxN > 128 {
		bad("server.max_n", "%d is not between 1 and 128", s.MaxN)
	}
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("server.log_level", "%q is not debug, info, warn or error", s.LogLevel)
	}
	switch s.LogFormat {
	case "text", "json":
	default:
		bad("server.log_format", "%q is not text or json", s.LogFormat)
	}
}

func (c Config) validateOllama(bad badField) {
	if _, err := pool.ParseTargets(c.engineURLs()); err != nil {
		bad("ollama.url", "%v", err)
	}
	for _, d := range c.Ollama.Discover {
		if _, _, _, _, err := pool.ParseDiscover(d); err != nil {
			bad("ollama.discover", "%v", err)
		}
	}
	if c.Ollama.DiscoverInterval < 100*time.Millisecond {
		bad("ollama.discover_interval", "must be at least 100ms")
	}
	if c.Ollama.PSInterval < 100*time.Millisecond || c.Ollama.TagsInterval < 100*time.Millisecond {
		bad("ollama.ps_interval", "ps_interval and tags_interval must be at least 100ms")
	}
	if c.Ollama.Parallel < 1 {
		bad("ollama.parallel", "must be at least 1")
	}
	if c.Ollama.HealthInterval <= 0 {
		bad("ollama.health_interval", "must be positive")
	}
}

// validateModelsQueue checks the models, queue and metrics sections.
func (c Config) validateModelsQueue(bad badField) {
	if c.Models.Default == "" {
		bad("models.default", "must not be empty")
	}
	for alias, target := range c.Models.Aliases {
		if alias == "" || target == "" {
			bad("models.aliases", "%q=%q: alias and model must both be set", alias, target)
		}
	}
	if c.Queue.MaxInFlight < 0 {
		bad("queue.max_inflight", "must not be negative")
	}
	if c.Queue.MaxWaiting < 0 {
		bad("queue.max_waiting", "must not be negative")
	}
	if c.Queue.MaxWait <= 0 {
		bad("queue.max_wait", "must be positive")
	}
	if c.Metrics.Window < time.Second {
		bad("metrics.window", "must be at least 1s")
	}
}

// sectionErrors are the errors of the sections that validate themselves:
// rag and scaling always, the provider's (ValidateProvider). Nil entries
// are dropped by errors.Join.
func (c Config) sectionErrors() []error {
	var errs []error
	if err := c.RAG.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Scaling.Validate(); err != nil {
		errs = append(errs, err)
	}
	return append(errs, c.ValidateProvider())
}

// ValidateProvider checks the settings of the configured scaling provider
// (and of the RunPod observer) against scaling's bounds:
// scaling.max_replicas within runpod.max_workers or the GPUs compose.gpus
// lists. nil when they hold, or when no provider is configured.
func (c Config) ValidateProvider() error {
	switch {
	case c.Scaling.Provider == runpod.Name:
		return c.RunPod.ValidateFor(c.Scaling)
	case c.Scaling.Mode == scaling.ModeRunPod:
		return c.RunPod.Validate()
	case c.Scaling.Provider == compose.Name:
		return c.Compose.ValidateFor(c.Scaling)
	}
	return nil
}

// Slots is the number of requests one engine takes at once, capped by
// queue.max_inflight: what a lone worker (RunPod) runs concurrently.
func (c Config) Slots() int {
	if c.Queue.MaxInFlight > 0 && c.Queue.MaxInFlight < c.Ollama.Parallel {
		return c.Queue.MaxInFlight
	}
	return c.Ollama.Parallel
}

// resolve maps a model name through the aliases.
func (c Config) resolve(name string) string {
	if t, ok := c.Models.Aliases[name]; ok {
		return t
	}
	return name
}

// PoolOptions are the engine pool's options from the ollama, queue and
// models settings: the static engines, DNS discovery, slots, the queue's
// bounds and the models every engine must have. Docker discovery needs a
// client, so the caller adds it (DockerDiscover lists its labels).
func (c Config) PoolOptions() (pool.Options, error) {
	targets, err := pool.ParseTargets(c.engineURLs())
	if err != nil {
		return pool.Options{}, fmt.Errorf("ollama.url: %w", err)
	}
	o := pool.Options{
		Targets:      targets,
		Ollama:       models.OllamaOptions{ConnectTimeout: c.Ollama.ConnectTimeout, HeaderTimeout: c.Ollama.HeaderTimeout},
		Parallel:     c.Ollama.Parallel,
		MaxInFlight:  c.Queue.MaxInFlight,
		MaxWaiting:   c.Queue.MaxWaiting,
		MaxWait:      c.Queue.MaxWait,
		PSInterval:   c.Ollama.PSInterval,
		TagsInterval: c.Ollama.TagsInterval,
		LoadEstimate: c.Ollama.LoadEstimate,
		PullMissing:  c.Ollama.PullMissing,
		Require:      []string{c.resolve(c.Models.Default)},
	}
	if c.Ollama.Preload {
		o.Preload = c.resolve(c.Models.Default)
	}
	if c.Models.Embedding != "" {
		o.Require = append(o.Require, c.resolve(c.Models.Embedding))
	}
	for _, d := range c.Ollama.Discover {
		kind, host, port, _, err := pool.ParseDiscover(d)
		if err != nil {
			return o, fmt.Errorf("ollama.discover: %w", err)
		}
		if kind == "dns" {
			o.Discoverers = append(o.Discoverers, &pool.DNS{Host: host, Port: port, Parallel: c.Ollama.Parallel, Interval: c.Ollama.DiscoverInterval})
		}
	}
	return o, nil
}

// DockerDiscover are the LABEL=VALUE selectors of the docker: entries of
// ollama.discover.
func (c Config) DockerDiscover() []string {
	var out []string
	for _, d := range c.Ollama.Discover {
		if kind, _, _, label, err := pool.ParseDiscover(d); err == nil && kind == "docker" {
			out = append(out, label)
		}
	}
	return out
}
