package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := Load("", env(nil))
	require.NoError(t, err)
	require.Equal(t, ":8000", cfg.Server.Listen)
	require.Equal(t, 1, cfg.Slots(), "default slots follow Ollama's parallelism")
	require.Equal(t, cfg.Models.Default, cfg.Models.Aliases[SeedAlias], "the seed's qwen3:coder names the default model")
}

// TestEngineURLs: ollama.url is a list of engines, each with an optional
// #parallel=N; the pool's options follow, and a bad entry names itself.
func TestEngineURLs(t *testing.T) {
	cfg, err := Load("", env(map[string]string{
		"AURAX_OLLAMA_URL":      "http://gpu0:11434, http://gpu1:11434#parallel=8,http://gpu2",
		"OLLAMA_NUM_PARALLEL":   "2",
		"AURAX_OLLAMA_DISCOVER": "dns:ollama:11434",
	}))
	require.NoError(t, err)
	po, err := cfg.PoolOptions()
	require.NoError(t, err)
	require.Len(t, po.Targets, 3)
	require.Equal(t, "http://gpu0:11434", po.Targets[0].URL)
	require.Equal(t, 8, po.Targets[1].Parallel)
	require.Equal(t, "http://gpu2:11434", po.Targets[2].URL, "the port defaults to Ollama's")
	require.Equal(t, 2, po.Parallel)
	require.Len(t, po.Discoverers, 1)
	require.Equal(t, []string{"qwen3:8b", "qwen3-embedding:0.6b"}, po.Require)

	for _, tc := range []struct{ url, discover, want string }{
		{"http://a:1,http://a:1", "", "listed twice"},
		{"http://a:1#parallel=0", "", "parallel"},
		{"ftp://a:1", "", "not an http(s) base URL"},
		{"http://a:1/api", "", "no path"},
		{"", "dns:", "dns:HOST:PORT"},
		{"", "docker:nolabel", "LABEL=VALUE"},
		{"", "consul:x", "unknown discovery"},
	} {
		_, err := Load("", env(map[string]string{"AURAX_OLLAMA_URL": tc.url, "AURAX_OLLAMA_DISCOVER": tc.discover}))
		require.ErrorContains(t, err, tc.want, "url %q discover %q", tc.url, tc.discover)
	}
	cfg, err = Load("", env(map[string]string{"AURAX_OLLAMA_URL": "", "AURAX_OLLAMA_DISCOVER": "docker:io.aurax.role=engine"}))
	require.NoError(t, err, "discovery alone is enough")
	require.Equal(t, []string{"io.aurax.role=engine"}, cfg.DockerDiscover())
}

// TestOllamaHost: an empty ollama.url takes OLLAMA_HOST in every form
// Ollama accepts, else Ollama's default; an explicit ollama.url wins, and
// discovery alone adds no static engine.
func TestOllamaHost(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"", "http://127.0.0.1:11434"},
		{"gpu0", "http://gpu0:11434"},
		{"gpu0:8080", "http://gpu0:8080"},
		{":8080", "http://127.0.0.1:8080"},
		{"0.0.0.0", "http://127.0.0.1:11434"},
		{"0.0.0.0:11500", "http://127.0.0.1:11500"},
		{"[::1]", "http://[::1]:11434"},
		{"[::]:9000", "http://[::1]:9000"},
		{"http://gpu0:11434", "http://gpu0:11434"},
		{"http://gpu0", "http://gpu0:80"},
		{"https://gpu0", "https://gpu0:443"},
		{"https://gpu0:8443/", "https://gpu0:8443"},
		{"'gpu0:1234'", "http://gpu0:1234"},
		{" \"gpu0\" ", "http://gpu0:11434"},
		{"gpu0:notaport", "http://gpu0:11434"},
		{"ollama.com", "https://ollama.com:443"},
	} {
		cfg, err := Load("", env(map[string]string{"OLLAMA_HOST": tc.host}))
		require.NoError(t, err, "OLLAMA_HOST=%q", tc.host)
		require.Equal(t, tc.want, cfg.Ollama.URL, "OLLAMA_HOST=%q", tc.host)
		po, err := cfg.PoolOptions()
		require.NoError(t, err)
		require.Len(t, po.Targets, 1)
		require.Equal(t, tc.want, po.Targets[0].URL)
	}
	for _, bad := range []string{"ftp://gpu0", "http://gpu0:1/v1"} {
		_, err := Load("", env(map[string]string{"OLLAMA_HOST": bad}))
		require.ErrorContains(t, err, "OLLAMA_HOST", bad)
	}

	cfg, err := Load("", env(map[string]string{"OLLAMA_HOST": "gpu9:1", "AURAX_OLLAMA_URL": "http://gpu0:11434"}))
	require.NoError(t, err)
	require.Equal(t, "http://gpu0:11434", cfg.Ollama.URL, "an explicit ollama.url wins over OLLAMA_HOST")

	cfg, err = Load("", env(map[string]string{"OLLAMA_HOST": "gpu9:1", "AURAX_OLLAMA_DISCOVER": "dns:ollama:11434"}))
	require.NoError(t, err)
	require.Empty(t, cfg.Ollama.URL, "discovery alone: no static engine")
	po, err := cfg.PoolOptions()
	require.NoError(t, err)
	require.Empty(t, po.Targets)

	def := Default()
	require.Empty(t, def.Ollama.URL, "empty means the default")
	po, err = def.PoolOptions()
	require.NoError(t, err)
	require.Equal(t, DefaultOllamaURL, po.Targets[0].URL, "a Config not loaded still has the default engine")
}

func FuzzOllamaHostURL(f *testing.F) {
	for _, s := range []string{"", "gpu0", ":1", "[::1]:2", "http://a", "https://b:3/", "ollama.com", "x://y", "a/b", "[", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		u, err := OllamaHostURL(v)
		if err != nil {
			return
		}
		require.True(t, strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://"), u)
	})
}

func TestFileThenEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "aurax.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
server:
  listen: ":9000"
  drain_timeout: 45s
models:
  default: qwen3:4b
  aliases:
    fast: qwen3:0.6b
queue:
  max_inflight: 8
`), 0o600))
	keys := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(keys, []byte("# comment\nk-file\n\n"), 0o600))
	cfg, err := Load(path, env(map[string]string{
		"AURAX_SERVER_LISTEN":      ":9100",
		"AURAX_API_KEYS":           "k1, k2",
		"AURAX_API_KEYS_FILE":      keys,
		"AURAX_QUEUE_MAX_WAIT":     "2m",
		"AURAX_METRICS_SEED_NAMES": "true",
		"OLLAMA_NUM_PARALLEL":      "4",
	}))
	require.NoError(t, err)
	require.Equal(t, ":9100", cfg.Server.Listen, "env overrides the file")
	require.Equal(t, 45*time.Second, cfg.Server.DrainTimeout, "the file overrides defaults")
	require.Equal(t, "qwen3:0.6b", cfg.Models.Aliases["fast"])
	require.Equal(t, "qwen3:4b", cfg.Models.Aliases[SeedAlias])
	require.Equal(t, []string{"k1", "k2", "k-file"}, cfg.Auth.APIKeys)
	require.Equal(t, 2*time.Minute, cfg.Queue.MaxWait)
	require.True(t, cfg.Metrics.SeedNames)
	require.Equal(t, 4, cfg.Slots(), "one engine's slots: ollama.parallel, under the max_inflight cap of 8")
	require.Equal(t, 8, cfg.Queue.MaxInFlight)
	require.Equal(t, 4, cfg.Ollama.Parallel)
}

func TestErrorsNameTheSetting(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		env  map[string]string
		want string
	}{
		{"unknown key", "server:\n  lisen: x\n", nil, "lisen"},
		{"removed setting in the file", "scaling:\n  predictive:\n    backlog_drain: 1m\n", nil, "field backlog_drain not found"},
		{"removed setting in the environment", "", map[string]string{"AURAX_SCALING_PREDICTIVE_WAIT_EPS": "0.02"}, "scaling.predictive.wait_eps (AURAX_SCALING_PREDICTIVE_WAIT_EPS): removed"},
		{"bad duration", "", map[string]string{"AURAX_QUEUE_MAX_WAIT": "soon"}, "queue.max_wait"},
		{"bad int", "", map[string]string{"AURAX_QUEUE_MAX_INFLIGHT": "many"}, "queue.max_inflight"},
		{"bad url", "", map[string]string{"AURAX_OLLAMA_URL": "localhost:11434"}, "ollama.url"},
		{"bad level", "", map[string]string{"AURAX_SERVER_LOG_LEVEL": "loud"}, "server.log_level"},
		{"bad alias", "", map[string]string{"AURAX_MODELS_ALIASES": "novalue"}, "models.aliases"},
		{"secret redacted", "", map[string]string{"AURAX_ADMIN_KEY": "s3cret", "AURAX_QUEUE_MAX_WAIT": "-"}, "queue.max_wait"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = filepath.Join(t.TempDir(), "c.yaml")
				require.NoError(t, os.WriteFile(path, []byte(tc.yaml), 0o600))
			}
			_, err := Load(path, env(tc.env))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestSettingsListEveryField(t *testing.T) {
	def := Default()
	settings := Settings(&def)
	seen := map[string]bool{}
	for _, s := range settings {
		require.NotEmpty(t, s.Help, "setting %s has no help text", s.Path)
		require.LessOrEqualf(t, utf8.RuneCountInString(s.Help), 100, "%s: help is one line of at most 100 characters", s.Path)
		require.NotContains(t, s.Help, "\n", s.Path)
		// Besides AURAX_*, two variables keep the names their platforms use.
		require.True(t, strings.HasPrefix(s.Env, "AURAX_") || s.Env == "OLLAMA_NUM_PARALLEL" || s.Env == "RUNPOD_API_KEY", s.Env)
		require.False(t, seen[s.Env], "duplicate env %s", s.Env)
		seen[s.Env] = true
	}
	for _, path := range removedSettings {
		require.False(t, seen[envName(path)], "%s is removed but still a setting", path)
	}
	require.True(t, seen["AURAX_API_KEYS"])
	require.True(t, seen["AURAX_QUEUE_MAX_INFLIGHT"])
}

func TestEmptyFileMeansDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.yaml")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	cfg, err := Load(path, env(nil))
	require.NoError(t, err)
	require.Equal(t, Default().Server, cfg.Server)
}
