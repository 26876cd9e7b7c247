package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/sysmon"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/pool"
	"github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/scaling/compose"
	"github.com/aurax/aurax/scaling/runpod"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

func init() {
	register("serve", "start the API server (the default command)", runServe)
}

// loadConfig parses the common --config flag and the command's own (see
// parseFlags for help, bad flags and unexpected arguments) and loads the
// configuration.
func loadConfig(name string, args []string, extra func(*flag.FlagSet)) (config.Config, *flag.FlagSet, error) {
	fs := newFlagSet(name)
	path := fs.String("config", os.Getenv("AURAX_CONFIG"), "YAML configuration file (env AURAX_CONFIG)")
	if extra != nil {
		extra(fs)
	}
	fs.Usage = func() {
		printUsage(fs, name)
		fmt.Fprintln(fs.Output(), "\nsettings (YAML path, environment variable, default; then what it does):")
		printSettings(fs.Output(), helpWidth)
	}
	if err := parseFlags(fs, args); err != nil {
		return config.Config{}, fs, err
	}
	cfg, err := config.Load(*path, lookupEnv)
	return cfg, fs, err
}

// lookupEnv is os.LookupEnv plus RunPod's PORT: a load-balancing worker
// must listen on $PORT unless AURAX_SERVER_LISTEN says otherwise, and serve
// /ping on $PORT_HEALTH.
func lookupEnv(key string) (string, bool) {
	v, ok := os.LookupEnv(key)
	if ok {
		return v, ok
	}
	switch key {
	case "AURAX_SERVER_LISTEN":
		if p, ok := os.LookupEnv("PORT"); ok && p != "" {
			return ":" + p, true
		}
	case "AURAX_SERVER_HEALTH_LISTEN":
		if p, ok := os.LookupEnv("PORT_HEALTH"); ok && p != "" && p != os.Getenv("PORT") {
			return ":" + p, true
		}
	}
	return "", false
}

// helpWidth is the width --help's settings table fits in.
const helpWidth = 100

// printSettings lists every setting in width columns: the YAML path and
// environment variable aligned, the default after them when it fits (else
// at the end of the help), and the help below, wrapped and indented.
func printSettings(w io.Writer, width int) {
	const indent = "      "
	def := config.Default()
	settings := config.Settings(&def)
	wp, we := 0, 0
	for _, s := range settings {
		wp, we = max(wp, len(s.Path)), max(we, len(s.Env))
	}
	for _, s := range settings {
		head := fmt.Sprintf("  %-*s  %-*s", wp, s.Path, we, s.Env)
		help := s.Help
		if v := s.Value; v != "" {
			if len(head)+2+utf8.RuneCountInString(v) <= width && strconv.Quote(v) == `"`+v+`"` {
				head += "  " + v
			} else {
				help = strings.TrimSpace(help + " (default " + strconv.Quote(v) + ")")
			}
		}
		fmt.Fprintln(w, strings.TrimRight(head, " "))
		for _, line := range wrap(help, width-len(indent)) {
			fmt.Fprintln(w, indent+line)
		}
	}
}

// wrap breaks text into lines of at most width runes at spaces, cutting a
// longer word.
func wrap(text string, width int) []string {
	var lines []string
	var line []rune
	for _, word := range strings.Fields(text) {
		r := []rune(word)
		if len(line) > 0 && len(line)+1+len(r) > width {
			lines, line = append(lines, string(line)), line[:0]
		}
		if len(line) > 0 {
			line = append(line, ' ')
		}
		for len(line)+len(r) > width {
			n := width - len(line)
			lines, line = append(lines, string(append(line, r[:n]...))), line[:0]
			r = r[n:]
		}
		line = append(line, r...)
	}
	if len(line) > 0 {
		lines = append(lines, string(line))
	}
	return lines
}

func newLogger(cfg config.Server, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runServe(args []string) error {
	execErr := sysmon.Exec() // returns only once the runtime has its setting, or could not get it
	cfg, _, err := loadConfig("serve", args, nil)
	if err != nil {
		return err
	}
	base, closeBase, err := startReplica(cfg)
	if err != nil {
		return err
	}
	defer closeBase()
	logger, reg, m, engines := base.logger, base.reg, base.m, base.engines
	if execErr != nil {
		logger.Warn("the Go runtime's sysmon keeps its default deep sleep (more CPU a request under load)", "err", execErr)
	}
	ctrl, closeProvider, err := newController(cfg, m, reg, logger, engines)
	if err != nil {
		return err
	}
	defer closeProvider() // after the controller stopped: waits for engines still draining
	srv, closeServer, err := buildServer(cfg, logger, reg, m, engines, ctrl)
	if err != nil {
		return err
	}
	defer closeServer()

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Server.Listen, err)
	}
	var healthLn net.Listener
	if cfg.Server.HealthListen != "" && cfg.Server.HealthListen != cfg.Server.Listen {
		if healthLn, err = net.Listen("tcp", cfg.Server.HealthListen); err != nil {
			ln.Close()
			return fmt.Errorf("listen %s: %w", cfg.Server.HealthListen, err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("aurax listening", "addr", ln.Addr().String(), "version", version(), "ollama", cfg.Ollama.URL,
		"model", cfg.Models.Default, "embedding_model", cfg.Models.Embedding, "slots", cfg.Slots(),
		"auth", len(cfg.Auth.APIKeys) > 0, "aliases", strings.Join(aliasList(cfg.Models.Aliases), ","))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx, ln, healthLn) })
	g.Go(func() error { return ctrl.Run(gctx) })
	g.Go(func() error { return srv.StatusPage().Run(gctx) })
	return g.Wait()
}

// newController builds the scaling controller with the configured
// observation mode and provider ("none": a dry run that records and logs
// its decisions and applies nothing). Except on RunPod (whose workers are
// engines of their own), the replicas it counts ready are the pool's
// engines; with the compose provider and min_replicas 0, a request that
// finds no engine wakes it to start one at once.
func newController(cfg config.Config, m *metrics.Metrics, reg prometheus.Registerer, logger *slog.Logger, engines *pool.Pool) (*scaling.Controller, func(), error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	var obs scaling.Observer
	var err error
	if cfg.Scaling.Mode == scaling.ModeRunPod {
		obs, err = runpod.NewObserver(cfg.RunPod, hc, logger)
	} else {
		obs, err = scaling.NewObserver(cfg.Scaling, m.Signals, hc)
	}
	if err != nil {
		return nil, nil, err
	}
	prov, closeProv, err := newProvider(cfg, providerDeps{logger: logger, metrics: m, engines: engines})
	if err != nil {
		return nil, nil, err
	}
	var opts []scaling.Option
	if cfg.Scaling.Provider != runpod.Name && cfg.Scaling.Mode != scaling.ModeRunPod {
		opts = append(opts, scaling.WithReady(func() (int, int) {
			st := engines.Stats()
			return st.Ready, st.Starting
		}))
	}
	ctrl, err := scaling.NewController(cfg.Scaling, obs, prov, reg, logger, opts...)
	if err != nil {
		closeProv()
		return nil, nil, err
	}
	if cfg.Scaling.Provider == compose.Name && cfg.Scaling.Resolved().MinReplicas == 0 {
		engines.WaitForEngines(ctrl.Wake)
	}
	return ctrl, closeProv, nil
}

func aliasList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}
