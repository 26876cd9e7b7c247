// Package deploy_test checks the deploy files with the real tools: promtool
// on the Prometheus config, rules and rule tests; nginx on its config and in
// front of two AURAX processes; docker-compose on the three compose files;
// and the Kubernetes manifests decoded strictly into the k8s.io/api types.
// `make test` installs the tools (scripts/deploy-tools-install.sh); without
// them these tests skip, and fail under CI.
package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/testenv"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// tool returns the path of a command the test needs, or skips (fails under CI).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/" + name); serr == nil {
			return "/usr/sbin/" + name
		}
		testenv.Missing(t, name+" not installed: run `make deploy-tools` (scripts/deploy-tools-install.sh)")
	}
	return p
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

func TestPrometheusConfigRulesAndRuleTests(t *testing.T) {
	promtool := tool(t, "promtool")
	dir := "prometheus"
	t.Log(run(t, dir, promtool, "check", "config", "prometheus.yml"))
	t.Log(run(t, dir, promtool, "check", "rules", "alerts.yml"))
	t.Log(run(t, dir, promtool, "test", "rules", "alerts_test.yml"))
}

// TestEveryAlertHasARuleTest: a rule nobody tested would pass promtool.
func TestEveryAlertHasARuleTest(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	decode(t, "prometheus/alerts.yml", &rules)
	decode(t, "prometheus/alerts_test.yml", &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
				require.True(t, fires[r.Alert], "alert %s has no test where it fires", r.Alert)
				require.True(t, quiet[r.Alert], "alert %s has no test where it stays quiet", r.Alert)
			}
		}
	}
	for _, want := range []string{"HighCPUUsage", "HighMemoryUsage", "HighErrorRate", "HighQueueDepth",
		"HighLatencyP95", "AuraxScalingAtMaxReplicas", "AuraxNoReplicaUp"} {
		require.Contains(t, alerts, want)
	}
}

func decode(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, v), path)
}

func TestNginxConfigSyntax(t *testing.T) {
	nginx := tool(t, "nginx")
	conf, err := filepath.Abs("nginx/nginx.conf")
	require.NoError(t, err)
	prefix := t.TempDir()
	t.Log(run(t, prefix, nginx, "-t", "-q", "-p", prefix, "-e", "stderr", "-c", conf))
}

// composeConfig runs `docker-compose config` on the files and returns the
// merged model.
func composeConfig(t *testing.T, files ...string) map[string]any {
	t.Helper()
	dc := tool(t, "docker-compose")
	args := []string{"--project-directory", ".."}
	for _, f := range files {
		args = append(args, "-f", filepath.Join("..", f))
	}
	cmd := exec.Command(dc, append(args, "config")...)
	cmd.Env = append(os.Environ(), "DOCKER_GID=105")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "docker-compose %v config: %s", files, stderr.String())
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(out, &m))
	return m
}

func get(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

// TestComposeFiles: every combination of the shipped files is valid, runs
// one scalable gateway service (two in staging) and a scalable engine
// service, and the engines are what the provider scales: the gateway
// discovers the service `ollama` by DNS, the Docker socket is mounted only
// where the compose provider is on, slots per engine are one variable for
// both, and with the GPU overlay the first engine has GPU 0 and the
// provider hands out the rest.
func TestComposeFiles(t *testing.T) {
	for _, tc := range []struct {
		files          []string
		gateways       int
		memory         string
		cpus           float64
		provider       string
		mode           string
		minMax         [2]string
		socketReadable bool
		gpus           string
	}{
		{[]string{"docker-compose.yml"}, 1, "4G", 2, "compose", "local", [2]string{"1", "4"}, true, ""},
		{[]string{"docker-compose.yml", "docker-compose.dev.yml"}, 1, "2G", 1, "none", "local", [2]string{"1", "1"}, false, ""},
		{[]string{"docker-compose.yml", "docker-compose.staging.yml"}, 2, "4G", 2, "compose", "peers", [2]string{"2", "2"}, true, ""},
		{[]string{"docker-compose.yml", "docker-compose.gpu.yml"}, 1, "4G", 2, "compose", "local", [2]string{"1", "4"}, true, "0,1,2,3"},
		{[]string{"docker-compose.yml", "docker-compose.staging.yml", "docker-compose.gpu.yml"}, 2, "4G", 2, "compose", "peers", [2]string{"2", "2"}, true, "0,1,2,3"},
		{[]string{"docker-compose.yml", "docker-compose.dev.yml", "docker-compose.gpu.yml"}, 1, "2G", 1, "none", "local", [2]string{"1", "1"}, false, "0,1,2,3"},
	} {
		t.Run(strings.Join(tc.files, "+"), func(t *testing.T) {
			m := composeConfig(t, tc.files...)
			svc := get(m, "services", "aurax-backend")
			require.NotNil(t, svc)
			require.Nil(t, get(svc, "container_name"), "scalable: no container_name")
			require.Nil(t, get(svc, "ports"), "scalable: no fixed host port")
			hc := get(svc, "healthcheck")
			require.Equal(t, []any{"CMD", "/usr/local/bin/aurax", "healthcheck"}, get(hc, "test"))
			for k, v := range map[string]string{"interval": "30s", "timeout": "10s", "retries": "3", "start_period": "40s"} {
				require.Equal(t, v, toString(get(hc, k)), "healthcheck.%s", k)
			}
			require.Equal(t, tc.gateways, get(svc, "deploy", "replicas"))
			require.Equal(t, tc.memory, get(svc, "deploy", "resources", "limits", "memory"))
			require.Equal(t, tc.cpus, toFloat(t, get(svc, "deploy", "resources", "limits", "cpus")))
			env := get(svc, "environment").(map[string]any)
			require.Equal(t, tc.provider, env["AURAX_SCALING_PROVIDER"])
			require.Equal(t, tc.mode, env["AURAX_SCALING_MODE"])
			require.Equal(t, tc.minMax, [2]string{toString(env["AURAX_SCALING_MIN_REPLICAS"]), toString(env["AURAX_SCALING_MAX_REPLICAS"])},
				"engine bounds")
			require.Equal(t, "ollama", env["AURAX_COMPOSE_SERVICE"], "the provider scales the engines")
			require.Equal(t, "dns:ollama:11434", env["AURAX_OLLAMA_DISCOVER"], "the gateway finds every engine container")
			require.Empty(t, toString(env["AURAX_OLLAMA_URL"]))
			require.Equal(t, "true", env["AURAX_OLLAMA_PULL_MISSING"], "models pulled on first start")
			require.Equal(t, tc.gpus, toString(env["AURAX_COMPOSE_GPUS"]))
			var socket string
			for _, v := range get(svc, "volumes").([]any) {
				if s, ok := v.(string); ok && strings.Contains(s, ":/var/run/docker.sock") {
					socket = s
				}
			}
			require.Equal(t, tc.socketReadable, strings.HasPrefix(socket, "/var/run/docker.sock:"),
				"the Docker socket is mounted only where the compose provider is on: %q", socket)

			_, err := config.Load("", func(k string) (string, bool) {
				v, ok := env[k]
				return toString(v), ok
			})
			require.NoError(t, err, "the gateway's environment is a valid configuration")

			engine := get(m, "services", "ollama")
			require.NotNil(t, engine)
			require.Nil(t, get(engine, "container_name"), "the engine service is scalable")
			require.Nil(t, get(engine, "ports"), "no fixed host port on an engine")
			require.Equal(t, toString(env["OLLAMA_NUM_PARALLEL"]), toString(get(engine, "environment", "OLLAMA_NUM_PARALLEL")),
				"the gateway counts the slots the engines run")
			require.Equal(t, "4", toString(env["OLLAMA_NUM_PARALLEL"]))
			require.Contains(t, toString(get(engine, "volumes")), "/root/.ollama", "one models volume for every engine")
			devices := get(engine, "deploy", "resources", "reservations", "devices")
			if tc.gpus == "" {
				require.Nil(t, devices, "CPU only")
			} else {
				require.Contains(t, toString(devices), "device_ids", "the first engine's GPU")
				require.Contains(t, toString(devices), "gpu")
			}
			for _, s := range []string{"qdrant", "nginx", "prometheus", "grafana"} {
				require.NotNil(t, get(m, "services", s), "service %s", s)
			}
		})
	}
}

// TestPrometheusScrapesOnlyGateways: the gateways, found by DNS as they
// come and go; never the engines (Ollama has no /metrics).
func TestPrometheusScrapesOnlyGateways(t *testing.T) {
	var cfg struct {
		ScrapeConfigs []struct {
			JobName      string `yaml:"job_name"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
			} `yaml:"dns_sd_configs"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decode(t, "prometheus/prometheus.yml", &cfg)
	var names []string
	for _, sc := range cfg.ScrapeConfigs {
		for _, d := range sc.DNSSDConfigs {
			names = append(names, d.Names...)
		}
		for _, s := range sc.StaticConfigs {
			names = append(names, s.Targets...)
		}
	}
	require.Contains(t, names, "aurax-backend")
	for _, n := range names {
		require.NotContains(t, n, "ollama")
	}
}

func toFloat(t *testing.T, v any) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(toString(v), 64)
	require.NoError(t, err, "%v", v)
	return f
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := yaml.Marshal(v)
		return strings.TrimSpace(string(b))
	}
}

func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/dashboards/aurax.json")
	require.NoError(t, err)
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, yaml.Unmarshal(b, &d)) // JSON is YAML
	require.Equal(t, "aurax-overview", d.UID)
	var titles, exprs []string
	for _, p := range d.Panels {
		titles = append(titles, p.Title)
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, want := range []string{"Request rate", "Model latency p50 / p95 / p99", "Error rate", "CPU", "Memory",
		"GPU utilisation", "Queue depth and in flight", "Active instances", "Scaling history"} {
		require.Contains(t, titles, want)
	}
	all := strings.Join(exprs, "\n")
	for _, metric := range []string{"aurax_requests_total", "aurax_model_processing_duration_seconds_bucket",
		"aurax_queue_depth", "aurax_active_instances", "aurax_scaling_events_total", "process_cpu_seconds_total",
		"process_resident_memory_bytes", "nvidia_gpu_utilization_percent"} {
		require.Contains(t, all, metric)
	}
	require.False(t, slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, "fastapi_") }))
}
