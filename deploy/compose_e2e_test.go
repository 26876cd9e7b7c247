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
	"regexp"
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

// e2eCompose is the stack of the end-to-end test: the repo's image (built
// by its Dockerfile, `prebuilt` target on scratch) with the compose provider
// on and short hold times, a fixed-latency Ollama-wire upstream, and nginx
// with the shipped deploy/nginx/nginx.conf unchanged (Docker's DNS is real
// here). One replica has 2 slots and each answer takes 1 s, so 12 clients
// queue 10: above the up rule's 4, held 2 s, it scales by 2 to the maximum
// of 3; once the queue has been empty for 4 s it removes one at a time.
const e2eCompose = `
services:
  aurax-backend:
    image: ${E2E_AURAX_IMAGE}
    user: "65532:65532"
    group_add: ["${E2E_DOCKER_GID}"]
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
    environment:
      AURAX_OLLAMA_URL: http://upstream:11434
      AURAX_MODELS_DEFAULT: fake
      AURAX_MODELS_EMBEDDING: ""
      AURAX_OLLAMA_PULL_MISSING: "true"
      AURAX_SERVER_LOG_FORMAT: text
      AURAX_SERVER_DRAIN_TIMEOUT: 15s
      AURAX_QUEUE_MAX_INFLIGHT: "2"
      AURAX_QUEUE_MAX_WAITING: "200"
      AURAX_QUEUE_MAX_WAIT: 60s
      AURAX_SCALING_PROFILE: prod
      AURAX_SCALING_POLICY: thresholds
      AURAX_SCALING_MODE: peers
      AURAX_SCALING_PEERS_DNS: aurax-backend
      AURAX_SCALING_PEERS_PORT: "8000"
      AURAX_SCALING_PROVIDER: compose
      AURAX_SCALING_MIN_REPLICAS: "1"
      AURAX_SCALING_MAX_REPLICAS: "3"
      AURAX_SCALING_INTERVAL: 1s
      AURAX_SCALING_UP_COOLDOWN: 3s
      AURAX_SCALING_DOWN_DELAY: 5s
      AURAX_SCALING_RETRY_BACKOFF: 200ms
      AURAX_SCALING_THRESHOLDS_UP: queue_depth > 4 for 2s step 2
      AURAX_SCALING_THRESHOLDS_DOWN: queue_depth == 0 for 4s step -1
      AURAX_COMPOSE_STOP_TIMEOUT: 20s
    healthcheck:
      test: ["CMD", "/usr/local/bin/aurax", "healthcheck"]
      interval: 1s
      timeout: 2s
      retries: 3
      start_period: 10s
    stop_grace_period: 20s
    deploy:
      replicas: 1
      resources:
        limits:
          memory: 256M
          cpus: "0.5"
    depends_on: [upstream]
  upstream:
    image: ${E2E_UPSTREAM_IMAGE}
    environment:
      LATENCY: 1s
      TOKENS: "4"
  nginx:
    image: ${E2E_NGINX_IMAGE}
    command: ["nginx", "-g", "daemon off;"]
    ports: ["127.0.0.1::8080"]
    volumes:
      - ${E2E_NGINX_CONF}:/etc/nginx/nginx.conf:ro
    depends_on: [aurax-backend]
`

// TestComposeStackScalesOnDocker is the Show of issue 5 on the real Docker
// Engine: load through nginx grows the service to 3 healthy replicas that
// all serve traffic through nginx; with the load down to a trickle it shrinks
// back to 1 and no request fails. It runs under CI or with
// AURAX_E2E_DOCKER=1 (a couple of minutes), and removes every container,
// network and image it made.
func TestComposeStackScalesOnDocker(t *testing.T) {
	if os.Getenv("AURAX_E2E_DOCKER") != "1" && os.Getenv("CI") == "" {
		t.Skip("Docker end-to-end test: set AURAX_E2E_DOCKER=1 (CI runs it)")
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

	// Images: AURAX from the repo's Dockerfile; the upstream and nginx.
	auraxImage := project + "-aurax:test"
	ctxDir := filepath.Join(tmp, "context")
	require.NoError(t, os.MkdirAll(filepath.Join(ctxDir, "deploy/docker/data"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "deploy/docker/data/.keep"), nil, 0o644))
	dockertest.BuildStatic(t, "./cmd/aurax", filepath.Join(ctxDir, "aurax"))
	step("built static aurax")
	buildImage(t, cli, auraxImage, ctxDir, filepath.Join(root, "Dockerfile"),
		"--target", "prebuilt", "--build-arg", "RUNTIME_IMAGE=scratch", "--build-arg", "PREBUILT=aurax")
	upstreamImage := project + "-upstream:test"
	bin := filepath.Join(tmp, "fakeupstream")
	dockertest.BuildStatic(t, "./internal/dockertest/fakeupstream", bin)
	dockertest.ScratchImage(t, cli, upstreamImage, bin, `ENTRYPOINT ["/app"]`)
	nginxImage := project + "-nginx:test"
	nginxBaseImage(t, cli, nginxImage)
	step("images built: %s, %s, %s", auraxImage, upstreamImage, nginxImage)

	// The stack.
	composeFile := filepath.Join(tmp, "docker-compose.yml")
	require.NoError(t, os.WriteFile(composeFile, []byte(e2eCompose), 0o644))
	fi, err := os.Stat("/var/run/docker.sock")
	require.NoError(t, err)
	gid := int(fi.Sys().(*syscall.Stat_t).Gid)
	env := append(os.Environ(),
		"E2E_AURAX_IMAGE="+auraxImage, "E2E_UPSTREAM_IMAGE="+upstreamImage, "E2E_NGINX_IMAGE="+nginxImage,
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
			cmd := exec.Command(dc, "-p", project, "-f", composeFile, "logs", "--no-color", "--tail", "60", "aurax-backend")
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
	httpc := &http.Client{Timeout: 90 * time.Second}
	require.Eventually(t, func() bool {
		resp, err := httpc.Get(lb + "/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 250*time.Millisecond, "the stack never answered ready through nginx")
	step("ready through nginx at %s", lb)

	replicas := func() []replicaInfo { return listReplicas(t, cli, project) }

	// Load: 12 clients in a closed loop through nginx.
	var ok, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	load := func(ctx context.Context, clients int) *sync.WaitGroup {
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil && i < 500; i++ {
					body := fmt.Sprintf(`{"model":"fake","messages":[{"role":"user","content":"client %d request %d"}],"stream":%t}`, c, i, i%2 == 0)
					req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, lb+"/api/chat", strings.NewReader(body))
					resp, err := httpc.Do(req)
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					if err != nil || resp.StatusCode != http.StatusOK {
						failed.Add(1)
						failMu.Lock()
						code := 0
						if resp != nil {
							code = resp.StatusCode
						}
						failures = append(failures, fmt.Sprintf("%.1fs: %d %v", time.Since(t0).Seconds(), code, err))
						failMu.Unlock()
						continue
					}
					ok.Add(1)
				}
			})
		}
		return &wg
	}
	heavyCtx, stopHeavy := context.WithTimeout(context.Background(), 90*time.Second)
	defer stopHeavy()
	heavy := load(heavyCtx, 12)

	// Grow to 3, every replica healthy and serving through nginx.
	require.Eventually(t, func() bool {
		rs := replicas()
		healthy := 0
		for _, r := range rs {
			if r.healthy {
				healthy++
			}
		}
		return len(rs) == 3 && healthy == 3
	}, 60*time.Second, 500*time.Millisecond, "never 3 healthy replicas")
	step("3 healthy replicas: %v", replicas())
	require.Eventually(t, func() bool {
		for _, r := range replicas() {
			if modelRequests(r.ip) == 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 500*time.Millisecond, "a replica got no traffic through nginx")
	for _, r := range replicas() {
		step("replica %s (%s): %d model requests", r.name, r.ip, int(modelRequests(r.ip)))
	}
	stopHeavy()
	heavy.Wait()
	step("load stopped: %d ok, %d failed", ok.Load(), failed.Load())

	// Shrink to 1 under a trickle of requests that must all succeed.
	okBefore := ok.Load()
	trickleCtx, stopTrickle := context.WithTimeout(context.Background(), 90*time.Second)
	defer stopTrickle()
	trickle := load(trickleCtx, 1)
	require.Eventually(t, func() bool { return len(replicas()) == 1 }, 75*time.Second, 500*time.Millisecond,
		"never shrank back to 1 replica")
	step("shrank to 1: %v", replicas())
	stopTrickle()
	trickle.Wait()
	step("trickle during scale-down: %d ok", ok.Load()-okBefore)

	// The leader (the replica left) applied: up to 3 on the queue rule, then
	// down one at a time.
	var status struct {
		IsLeader  bool `json:"is_leader"`
		Decisions []struct {
			Result   string `json:"result"`
			Current  int    `json:"current"`
			Decision struct {
				Desired int    `json:"desired"`
				Reason  string `json:"reason"`
			} `json:"decision"`
		} `json:"decisions"`
	}
	resp, err := httpc.Get("http://" + replicas()[0].ip + ":8000/v1/scaling")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&status))
	resp.Body.Close()
	require.True(t, status.IsLeader)
	var applied []string
	for _, d := range status.Decisions {
		if d.Result == "applied" {
			applied = append(applied, fmt.Sprintf("%d→%d %s", d.Current, d.Decision.Desired, d.Decision.Reason))
		}
	}
	step("leader's applied decisions: %v", applied)
	require.Equal(t, []string{"1→3 queue", "3→2 queue", "2→1 queue"}, applied)
	failMu.Lock()
	defer failMu.Unlock()
	require.Empty(t, failures, "no request may fail, during load or scale-down")
	require.Positive(t, ok.Load()-okBefore)
}

type replicaInfo struct {
	name    string
	ip      string
	healthy bool
}

func (r replicaInfo) String() string {
	return fmt.Sprintf("%s(%s healthy=%t)", r.name, r.ip, r.healthy)
}

// listReplicas returns the running aurax-backend containers of project.
func listReplicas(t *testing.T, cli *client.Client, project string) []replicaInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := make(client.Filters).Add("label", "com.docker.compose.project="+project, "com.docker.compose.service=aurax-backend").
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

var modelReqRe = regexp.MustCompile(`(?m)^aurax_model_requests_total\{[^}]*\} ([0-9.e+]+)$`)

// modelRequests sums aurax_model_requests_total of the replica at ip (the
// host reaches container addresses on the bridge), 0 when unreachable.
func modelRequests(ip string) float64 {
	if ip == "" {
		return 0
	}
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + ip + ":8000/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, m := range modelReqRe.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		sum += v
	}
	return sum
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
