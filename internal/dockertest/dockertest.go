// Package dockertest gives tests a real Docker Engine: a client (skip where
// none answers, fail under CI), images built from a static Go binary on
// `FROM scratch` (no registry needed), private networks, and cleanup of every
// container, network and image a test made.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/testenv"
	"github.com/moby/moby/client"
)

// Client returns a client of the Engine at DOCKER_HOST (default socket), or
// skips the test (fails it under CI) when no daemon answers.
func Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		testenv.Missing(t, "no Docker client: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		testenv.Missing(t, "no Docker daemon answers at "+cli.DaemonHost()+": "+err.Error())
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Name returns prefix plus a random suffix: names that cannot collide with a
// parallel run's.
func Name(prefix string) string { return fmt.Sprintf("%s%06x", prefix, rand.Uint32()&0xffffff) }

// BuildStatic compiles the Go main package pkg (an import path or ./dir
// relative to the module root) as a static linux binary.
func BuildStatic(t testing.TB, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = ModuleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// ModuleRoot is the directory holding go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// ScratchImage builds tag as a FROM scratch image holding the static binary
// at bin as /app, with the given Dockerfile lines after COPY (e.g.
// HEALTHCHECK, ENTRYPOINT), and removes it when the test ends.
func ScratchImage(t testing.TB, cli *client.Client, tag, bin string, lines ...string) {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := "FROM scratch\nCOPY app /app\n" + strings.Join(lines, "\n") + "\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"app", 0o755, data}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatalf("build image %s: %v", tag, err)
	}
	t.Cleanup(func() { RemoveImage(t, cli, tag) })
	defer res.Body.Close()
	if err := buildErr(res.Body); err != nil {
		t.Fatalf("build image %s: %v", tag, err)
	}
}

// buildErr reads a build's JSON message stream and returns its error, if any.
func buildErr(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != "" {
			return fmt.Errorf("%s", m.Error)
		}
	}
}

// RemoveImage removes tag, logging (not failing) when it cannot.
func RemoveImage(t testing.TB, cli *client.Client, tag string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
		t.Logf("cleanup: remove image %s: %v", tag, err)
	}
}

// Network creates a bridge network labelled for the test and removes it,
// after every container with label (key=value) is removed, when the test
// ends.
func Network(t testing.TB, cli *client.Client, name, label string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, v, _ := strings.Cut(label, "=")
	res, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: map[string]string{k: v}})
	if err != nil {
		t.Fatalf("create network %s: %v", name, err)
	}
	t.Cleanup(func() {
		RemoveContainers(t, cli, label)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.NetworkRemove(ctx, res.ID, client.NetworkRemoveOptions{}); err != nil {
			t.Errorf("cleanup: remove network %s: %v", name, err)
		}
	})
	return res.ID
}

// RemoveContainers force-removes every container with label (key=value).
func RemoveContainers(t testing.TB, cli *client.Client, label string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", label)})
	if err != nil {
		t.Errorf("cleanup: list containers %s: %v", label, err)
		return
	}
	for _, c := range res.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Errorf("cleanup: remove container %s: %v", c.ID[:12], err)
		}
	}
}
