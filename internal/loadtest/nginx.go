package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// nginxProxy is a real nginx (Debian's package) proxying to upstream
// groups, one per listener: the comparators of the side-by-side runs.
type nginxProxy struct {
	cmd   *exec.Cmd
	dir   string
	addrs map[string]string // group name → listen address
}

// nginxGroup is one upstream block: its servers and the balancing
// directive ("" for round robin, "least_conn;" ...).
type nginxGroup struct {
	name, balance string
	servers       []string // host:port
}

// startNginx runs one worker (as the one-process AURAX is compared with)
// with keepalive connections to the upstreams and no buffering, as the
// shipped deploy/nginx config proxies streams.
func startNginx(groups ...nginxGroup) (*nginxProxy, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			return nil, fmt.Errorf("nginx not found (make deploy-tools installs it): %w", err)
		}
		bin = "/usr/sbin/nginx"
	}
	dir, err := os.MkdirTemp("", "aurax-loadtest-nginx-")
	if err != nil {
		return nil, err
	}
	n := &nginxProxy{dir: dir, addrs: map[string]string{}}
	var b strings.Builder
	fmt.Fprintf(&b, "worker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\nevents { worker_connections 16384; }\nhttp {\n", dir, dir)
	fmt.Fprintf(&b, "  access_log off;\n  client_body_temp_path %s/body;\n  proxy_temp_path %s/proxy;\n", dir, dir)
	for _, g := range groups {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		n.addrs[g.name] = fmt.Sprintf("127.0.0.1:%d", port)
		fmt.Fprintf(&b, "  upstream %s {\n    %s\n", g.name, g.balance)
		for _, s := range g.servers {
			fmt.Fprintf(&b, "    server %s max_fails=0;\n", s)
		}
		fmt.Fprintf(&b, "    keepalive 256;\n  }\n")
		fmt.Fprintf(&b, "  server {\n    listen 127.0.0.1:%d backlog=4096;\n    location / {\n      proxy_pass http://%s;\n", port, g.name)
		b.WriteString("      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n      proxy_read_timeout 300s;\n    }\n  }\n")
	}
	b.WriteString("}\n")
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	n.cmd = proxyCommand(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf, "-g", "daemon off;")
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	for _, addr := range n.addrs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				n.stop()
				log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				return nil, fmt.Errorf("nginx did not listen on %s: %s", addr, log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return n, nil
}

func (n *nginxProxy) url(group string) string { return "http://" + n.addrs[group] }

func (n *nginxProxy) stop() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGQUIT)
		waitOrKill(n.cmd, 5*time.Second)
	}
	os.RemoveAll(n.dir)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
