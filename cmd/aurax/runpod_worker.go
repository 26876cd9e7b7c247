package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	rpworker "github.com/aurax/aurax/server/runpod"
)

func init() {
	register("runpod-worker", "run as a RunPod Serverless queue worker (local mode: run test_input.json once)", runRunPodWorker)
}

// runRunPodWorker serves jobs from RunPod's queue through the same
// in-process API as `serve`. Without RUNPOD_WEBHOOK_GET_JOB it is local
// mode: it runs the test input once, prints the output, and exits 0 or 1.
func runRunPodWorker(args []string) error {
	var testInput string
	var readyWait time.Duration
	cfg, _, err := loadConfig("runpod-worker", args, func(fs *flag.FlagSet) {
		fs.StringVar(&testInput, "test-input", "test_input.json", "job file run once in local mode ({\"input\": {...}})")
		fs.DurationVar(&readyWait, "ready-timeout", 10*time.Minute, "longest wait for Ollama and the model before giving up (local mode)")
	})
	if err != nil {
		return err
	}
	wcfg, queueMode, err := rpworker.FromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	base, closeBase, err := startReplica(cfg)
	if err != nil {
		return err
	}
	defer closeBase()
	logger := base.logger
	// Workers run no controller: it runs in one process outside them and
	// sets the endpoint's bounds through RunPod's API.
	srv, closeServer, err := buildServer(cfg, logger, base.reg, base.m, base.engines, nil)
	if err != nil {
		return err
	}
	defer closeServer()

	// The API runs in process; jobs reach it through an in-memory listener.
	ip := rpworker.NewInProcess()
	srvCtx, stopSrv := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(srvCtx, ip.Listener(), nil) }()
	stopServer := func() error { stopSrv(); return <-srvDone }
	runner := &rpworker.Runner{Client: ip.Client(), BaseURL: rpworker.InProcessURL}
	if len(cfg.Auth.APIKeys) > 0 {
		runner.APIKey = cfg.Auth.APIKeys[0]
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !queueMode {
		b, err := os.ReadFile(testInput)
		if err != nil {
			stopServer()
			return fmt.Errorf("local mode (RUNPOD_WEBHOOK_GET_JOB is not set): %w", err)
		}
		rctx, cancel := context.WithTimeout(ctx, readyWait)
		for !srv.Health().Ready() && rctx.Err() == nil {
			time.Sleep(250 * time.Millisecond)
		}
		cancel()
		err = rpworker.RunLocal(ctx, runner, b, os.Stdout)
		if serr := stopServer(); err == nil {
			err = serr
		}
		if err != nil {
			logger.Error("local job failed", "err", err)
			return errExitSilently
		}
		return nil
	}

	wcfg.Concurrency = cfg.Slots()
	wcfg.JobTimeout = cfg.Ollama.RequestTimeout
	w, err := rpworker.NewWorker(wcfg, runner, nil, srv.Health().Ready, logger)
	if err != nil {
		stopServer()
		return err
	}
	logger.Info("aurax runpod worker starting", "version", version(), "ollama", cfg.Ollama.URL,
		"model", cfg.Models.Default, "concurrency", wcfg.Concurrency)
	werr := w.Run(ctx) // returns once the jobs in flight have finished
	if err := stopServer(); err != nil && werr == nil && !errors.Is(err, context.Canceled) {
		werr = err
	}
	return werr
}
