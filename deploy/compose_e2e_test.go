package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/dockertest"
	"github.com/aurax/aurax/internal/testenv"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
)

// e2eCompose is the stack of the end-to-end test: one gateway (the repo's
// image, built by its Dockerfile, `prebuilt` target on scratch) with the
// compose provider scaling the engines on short hold times, the engine
// service (the real Ollama binary `make ollama` built, on a Debian base
// made without a registry, serving the tiny models from a shared models
// directory), and nginx with the shipped deploy/nginx/nginx.conf unchanged
// (Docker's DNS is real here). An engine has 1 slot and a request makes 48
// tokens, so 6 clients queue 5: above the up rule's 2, held 2 s, the
// controller adds 2 engines; once the queue has been empty for 4 s it
// removes one at a time, and to zero (min_replicas 0) once idle.
const e2eCompose = `
services:
  aurax-backend:
    image: ${E2E_AURAX_IMAGE}
    user: "65532:65532"
    group_add: ["${E2E_DOCKER_GID}"]
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
    environment:
      AURAX_OLLAMA_URL: ""
      AURAX_OLLAMA_DISCOVER: dns:ollama:11434
      AURAX_OLLAMA_DISCOVER_INTERVAL: 500ms
      AURAX_OLLAMA_PS_INTERVAL: 500ms
      OLLAMA_NUM_PARALLEL: "1"
      AURAX_MODELS_DEFAULT: aurax-tiny
      AURAX_MODELS_EMBEDDING: ""
      AURAX_SERVER_LOG_FORMAT: text
      AURAX_SERVER_DRAIN_TIMEOUT: 15s
      AURAX_QUEUE_MAX_WAITING: "200"
      AURAX_QUEUE_MAX_WAIT: 90s
      AURAX_SCALING_PROFILE: prod
      AURAX_SCALING_POLICY: thresholds
      AURAX_SCALING_MODE: local
      AURAX_SCALING_PROVIDER: compose
      AURAX_COMPOSE_SERVICE: ollama
      AURAX_SCALING_MIN_REPLICAS: "0"
      AURAX_SCALING_MAX_REPLICAS: "3"
      AURAX_SCALING_INTERVAL: 1s
      AURAX_SCALING_UP_COOLDOWN: 3s
      AURAX_SCALING_DOWN_DELAY: 5s
      AURAX_SCALING_RETRY_BACKOFF: 200ms
      AURAX_SCALING_THRESHOLDS_UP: queue_depth > 2 for 2s step 2
      AURAX_SCALING_THRESHOLDS_DOWN: queue_depth == 0 for 4s step -1
      AURAX_COMPOSE_STOP_TIMEOUT: 30s
    healthcheck:
      test: ["CMD", "/usr/local/bin/aurax", "healthcheck"]
      interval: 1s
      timeout: 2s
      retries: 3
      start_period: 10s
    stop_grace_period: 20s
    depends_on: [ollama]
  ollama:
    image: ${E2E_ENGINE_IMAGE}
    environment:
      OLLAMA_HOST: 0.0.0.0:11434
      OLLAMA_NUM_PARALLEL: "1"
      OLLAMA_KEEP_ALIVE: 24h
      OLLAMA_NOPRUNE: "1"
    volumes:
      - ${E2E_MODELS}:/root/.ollama/models
    deploy:
      resources:
        limits:
          cpus: "0.5"
  nginx:
    image: ${E2E_NGINX_IMAGE}
    command: ["nginx", "-g", "daemon off;"]
    ports: ["127.0.0.1::8080"]
    volumes:
      - ${E2E_NGINX_CONF}:/etc/nginx/nginx.conf:ro
    depends_on: [aurax-backend]
`

// TestComposeScalesEnginesOnDocker is the Show of "scale the engines" on
// the real Docker Engine: load through nginx makes the controller add real
// Ollama engines 1 → 3, each getting requests only once warm, and completed
// requests per second rise with them; under a trickle it drains back to 1
// with no failed request; idle, to 0; then one request waits while the
// first engine starts, and is answered. It runs under CI or with
// AURAX_E2E_DOCKER=1 (a few minutes), needs the real Ollama `make test`
// builds (AURAX_TEST_OLLAMA_BIN, _MODELS), and removes every container,
// network and image it made.
func TestComposeScalesEnginesOnDocker(t *testing.T) {
	if os.Getenv("AURAX_E2E_DOCKER") != "1" && os.Getenv("CI") == "" {
		t.Skip("Docker end-to-end test: set AURAX_E2E_DOCKER=1 (CI runs it)")
	}
	ollamaBin, modelsDir := os.Getenv("AURAX_TEST_OLLAMA_BIN"), os.Getenv("AURAX_TEST_OLLAMA_MODELS")
	if ollamaBin == "" || modelsDir == "" {
		testenv.Missing(t, "AURAX_TEST_OLLAMA_BIN and AURAX_TEST_OLLAMA_MODELS are not set: run `make test`")
	}
	cli := dockertest.Client(t)
	dc := tool(t, "docker-compose")
	t0 := time.Now()
	step := func(format string, args ...any) {
		t.Logf("[%5.1fs] %s", time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
	}
	project := dockertest.Name("auraxe2e")
	tmp := t.TempDir()
	root := dockertest.ModuleRoot(t)

	// Images: AURAX from the repo's Dockerfile; the engine: the real Ollama
	// on a Debian rootfs (the nginx one: glibc and libstdc++ are there).
	auraxImage := project + "-aurax:test"
	ctxDir := filepath.Join(tmp, "context")
	require.NoError(t, os.MkdirAll(filepath.Join(ctxDir, "deploy/docker/data"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "deploy/docker/data/.keep"), nil, 0o644))
	dockertest.BuildStatic(t, "./cmd/aurax", filepath.Join(ctxDir, "aurax"))
	step("built static aurax")
	buildImage(t, cli, auraxImage, ctxDir, filepath.Join(root, "Dockerfile"),
		"--target", "prebuilt", "--build-arg", "RUNTIME_IMAGE=scratch", "--build-arg", "PREBUILT=aurax")
	nginxImage := project + "-nginx:test"
	nginxBaseImage(t, cli, nginxImage)
	engineImage := project + "-engine:test"
	engineDir := filepath.Join(tmp, "engine")
	require.NoError(t, os.MkdirAll(engineDir, 0o755))
	copyFile(t, ollamaBin, filepath.Join(engineDir, "ollama"), 0o755)
	require.NoError(t, os.WriteFile(filepath.Join(engineDir, "Dockerfile"), []byte("FROM "+nginxImage+
		"\nCOPY ollama /usr/local/bin/ollama\nEXPOSE 11434\nENTRYPOINT [\"/usr/local/bin/ollama\"]\nCMD [\"serve\"]\n"), 0o644))
	buildImage(t, cli, engineImage, engineDir, filepath.Join(engineDir, "Dockerfile"))
	// The models every engine shares: a copy of the test Ollama's.
	models := filepath.Join(tmp, "models")
	out, err := exec.Command("cp", "-a", modelsDir, models).CombinedOutput()
	require.NoError(t, err, "copy models: %s", out)
	step("images built: %s, %s, %s", auraxImage, engineImage, nginxImage)

	// The stack.
	composeFile := filepath.Join(tmp, "docker-compose.yml")
	require.NoError(t, os.WriteFile(composeFile, []byte(e2eCompose), 0o644))
	fi, err := os.Stat("/var/run/docker.sock")
	require.NoError(t, err)
	gid := int(fi.Sys().(*syscall.Stat_t).Gid)
	env := append(os.Environ(),
		"E2E_AURAX_IMAGE="+auraxImage, "E2E_ENGINE_IMAGE="+engineImage, "E2E_NGINX_IMAGE="+nginxImage, "E2E_MODELS="+models,
		"E2E_NGINX_CONF="+filepath.Join(root, "deploy/nginx/nginx.conf"), "E2E_DOCKER_GID="+strconv.Itoa(gid))
	compose := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(dc, append([]string{"-p", project, "-f", composeFile}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "docker-compose %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			cmd := exec.Command(dc, "-p", project, "-f", composeFile, "logs", "--no-color", "--tail", "80", "aurax-backend")
			cmd.Env = env
			out, _ := cmd.CombinedOutput()
			t.Logf("aurax-backend logs:\n%s", out)
		}
		cmd := exec.Command(dc, "-p", project, "-f", composeFile, "down", "-v", "--remove-orphans", "-t", "2")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
		dockertest.RemoveContainers(t, cli, "com.docker.compose.project="+project)
	})
	compose("up", "-d")
	step("docker-compose up -d")
	port := strings.TrimSpace(compose("port", "nginx", "8080"))
	lb := "http://" + port
	httpc := &http.Client{Timeout: 120 * time.Second}
	require.Eventually(t, func() bool {
		resp, err := httpc.Get(lb + "/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 90*time.Second, 250*time.Millisecond, "the stack never answered ready through nginx")
	step("ready through nginx at %s", lb)
	gateway := listService(t, cli, project, "aurax-backend")[0].ip
	engines := func() []replicaInfo { return listService(t, cli, project, "ollama") }

	// Watch the gateway's view of the engines: an engine must never have
	// served a request before it was ready (warm).
	var watchMu sync.Mutex
	var coldServed []string
	readyAt := map[string]time.Time{}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for watchCtx.Err() == nil {
			for _, e := range gatewayEngines(gateway) {
				watchMu.Lock()
				if e.State == "ready" && readyAt[e.Name].IsZero() {
					readyAt[e.Name] = time.Now()
				}
				if e.State != "ready" && e.State != "draining" && e.Requests > 0 && readyAt[e.Name].IsZero() {
					coldServed = append(coldServed, fmt.Sprintf("%s %s with %d requests", e.Name, e.State, e.Requests))
				}
				watchMu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	defer func() { stopWatch(); <-watchDone }()

	// Load: clients in a closed loop through nginx, every answer timed.
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	var done []time.Time
	load := func(ctx context.Context, clients int) *sync.WaitGroup {
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil && i < 2000; i++ {
					body := fmt.Sprintf(`{"model":"aurax-tiny","messages":[{"role":"user","content":"client %d request %d"}],"stream":%t,"options":{"num_predict":48}}`, c, i, i%2 == 0)
					req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, lb+"/api/chat", strings.NewReader(body))
					resp, err := httpc.Do(req)
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					if err != nil || resp.StatusCode != http.StatusOK {
						failed.Add(1)
						code := 0
						if resp != nil {
							code = resp.StatusCode
						}
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%.1fs: %d %v", time.Since(t0).Seconds(), code, err))
						mu.Unlock()
						continue
					}
					ok.Add(1)
					mu.Lock()
					done = append(done, time.Now())
					mu.Unlock()
				}
			})
		}
		return &wg
	}
	rate := func(from, to time.Time) float64 {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, d := range done {
			if !d.Before(from) && d.Before(to) {
				n++
			}
		}
		return float64(n) / to.Sub(from).Seconds()
	}
	ready := func(n int) func() bool {
		return func() bool {
			k := 0
			for _, e := range gatewayEngines(gateway) {
				if e.State == "ready" {
					k++
				}
			}
			return k == n
		}
	}
	require.Eventually(t, ready(1), 60*time.Second, 200*time.Millisecond, "the first engine never got ready")
	heavyCtx, stopHeavy := context.WithTimeout(context.Background(), 3*time.Minute)
	defer stopHeavy()
	loadStart := time.Now()
	heavy := load(heavyCtx, 6)
	time.Sleep(2 * time.Second)
	oneRate := rate(loadStart.Add(500*time.Millisecond), time.Now())

	require.Eventually(t, ready(3), 120*time.Second, 200*time.Millisecond, "never 3 engines ready")
	require.Len(t, engines(), 3)
	step("3 engines ready: %v", engines())
	threeFrom := time.Now()
	time.Sleep(5 * time.Second)
	threeRate := rate(threeFrom, time.Now())
	for _, e := range gatewayEngines(gateway) {
		require.Positive(t, e.Requests, "engine %s got no request", e.Name)
	}
	step("completed through nginx: %.1f requests/s on 1 engine, %.1f on 3", oneRate, threeRate)
	require.Greater(t, threeRate, oneRate, "capacity rose with the engines")
	stopHeavy()
	heavy.Wait()
	step("load stopped: %d ok, %d failed", ok.Load(), failed.Load())

	// Back to 1 under a trickle of 2 clients that must all succeed.
	okBefore := ok.Load()
	trickleCtx, stopTrickle := context.WithTimeout(context.Background(), 2*time.Minute)
	defer stopTrickle()
	trickle := load(trickleCtx, 2)
	require.Eventually(t, func() bool { return len(engines()) == 1 }, 90*time.Second, 500*time.Millisecond,
		"never drained back to 1 engine")
	step("drained back to 1: %v", engines())
	time.Sleep(2 * time.Second) // the trickle keeps the last engine (to zero only when idle)
	require.Len(t, engines(), 1)
	stopTrickle()
	trickle.Wait()
	step("trickle during scale-down: %d ok", ok.Load()-okBefore)

	// Idle: to zero. Then one request: it waits while the first engine
	// starts, and is answered.
	require.Eventually(t, func() bool { return len(engines()) == 0 }, 60*time.Second, 500*time.Millisecond, "never scaled to zero")
	require.Eventually(t, ready(0), 10*time.Second, 100*time.Millisecond)
	step("idle: zero engines")
	coldStart := time.Now()
	resp, err := httpc.Post(lb+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"aurax-tiny","messages":[{"role":"user","content":"from zero"}],"max_tokens":8}`))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	step("from zero: answered in %v (an engine started, warmed and served)", time.Since(coldStart).Round(time.Millisecond))
	require.Len(t, engines(), 1)

	// The controller's record: up by 2, down one at a time, to zero, from zero.
	var status struct {
		Decisions []struct {
			Result   string `json:"result"`
			Current  int    `json:"current"`
			Decision struct {
				Desired int    `json:"desired"`
				Reason  string `json:"reason"`
				Rule    string `json:"rule"`
			} `json:"decision"`
		} `json:"decisions"`
	}
	resp, err = httpc.Get("http://" + gateway + ":8000/v1/scaling")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&status))
	resp.Body.Close()
	var applied []string
	for _, d := range status.Decisions {
		if d.Result == "applied" {
			applied = append(applied, fmt.Sprintf("%d→%d", d.Current, d.Decision.Desired))
		}
	}
	step("applied decisions: %v", applied)
	require.Equal(t, []string{"1→3", "3→2", "2→1", "1→0", "0→1"}, applied)
	watchMu.Lock()
	defer watchMu.Unlock()
	require.Empty(t, coldServed, "an engine served a request before it was warm")
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, failures, "no request may fail, during load or scale-down")
	require.Positive(t, ok.Load()-okBefore)
}

// gatewayEngines is the gateway's /health engines list (nil when it does
// not answer).
func gatewayEngines(ip string) []struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Requests int    `json:"requests"`
} {
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + ip + ":8000/health")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var h struct {
		Engines []struct {
			Name     string `json:"name"`
			State    string `json:"state"`
			Requests int    `json:"requests"`
		} `json:"engines"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return h.Engines
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, mode))
}

type replicaInfo struct {
	name    string
	ip      string
	healthy bool
}

func (r replicaInfo) String() string {
	return fmt.Sprintf("%s(%s healthy=%t)", r.name, r.ip, r.healthy)
}

// listService returns the running containers of a service of project.
func listService(t *testing.T, cli *client.Client, project, service string) []replicaInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := make(client.Filters).Add("label", "com.docker.compose.project="+project, "com.docker.compose.service="+service).
		Add("status", "running")
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: f})
	require.NoError(t, err)
	var out []replicaInfo
	for _, c := range res.Items {
		r := replicaInfo{name: strings.TrimPrefix(c.Names[0], "/"), healthy: strings.Contains(c.Status, "(healthy)")}
		if c.NetworkSettings != nil {
			for _, n := range c.NetworkSettings.Networks {
				if n != nil && n.IPAddress.IsValid() {
					r.ip = n.IPAddress.String()
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// buildImage runs `docker build` (the CLI: the repo's Dockerfile as users
// build it) and removes the image when the test ends.
func buildImage(t *testing.T, cli *client.Client, tag, contextDir, dockerfile string, args ...string) {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"build", "-q", "-t", tag, "-f", dockerfile}, append(args, contextDir)...)...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "docker build %s:\n%s", tag, out)
	t.Cleanup(func() { dockertest.RemoveImage(t, cli, tag) })
}

// nginxBaseImage imports a Debian rootfs with nginx-light (debootstrap, as
// FACTS.md describes) as tag. The rootfs tarball is cached under
// $AURAX_CACHE/e2e so later runs skip debootstrap; the image is removed at
// the end of the test.
func nginxBaseImage(t *testing.T, cli *client.Client, tag string) {
	t.Helper()
	cache := os.Getenv("AURAX_CACHE")
	if cache == "" {
		cache = filepath.Join(dockertest.ModuleRoot(t), ".cache")
	}
	tarball := filepath.Join(cache, "e2e", "nginx-rootfs.tar")
	if _, err := os.Stat(tarball); err != nil {
		debootstrap := tool(t, "debootstrap")
		require.NoError(t, os.MkdirAll(filepath.Dir(tarball), 0o755))
		dir, err := os.MkdirTemp(filepath.Dir(tarball), "rootfs-")
		require.NoError(t, err)
		defer os.RemoveAll(dir)
		cmd := exec.Command(debootstrap, "--variant=minbase", "--include=nginx-light", "bookworm", dir, debianMirror())
		out, err := cmd.CombinedOutput()
		if err != nil {
			testenv.Missing(t, fmt.Sprintf("debootstrap failed: %v\n%s", err, tail(out, 20)))
		}
		tmpTar := tarball + ".tmp"
		out, err = exec.Command("tar", "-C", dir, "-cf", tmpTar, ".").CombinedOutput()
		require.NoError(t, err, "tar: %s", out)
		require.NoError(t, os.Rename(tmpTar, tarball))
	}
	cmd := exec.Command("docker", "import", tarball, tag)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "docker import: %s", out)
	t.Cleanup(func() { dockertest.RemoveImage(t, cli, tag) })
}

// debianMirror is the first URIs of the machine's Debian sources.
func debianMirror() string {
	f, err := os.Open("/etc/apt/sources.list.d/debian.sources")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "URIs:"); ok {
				return strings.Fields(u)[0]
			}
		}
	}
	return "http://deb.debian.org/debian"
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
