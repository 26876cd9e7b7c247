# AURAX: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
OLLAMA_ADDR ?= 127.0.0.1:11435
export AURAX_CACHE ?= $(CURDIR)/.cache

.PHONY: run test build ollama deploy-tools vet fmt bench clean

build:
	$(GO) build -o bin/aurax ./cmd/aurax

# Installs (once) and starts the real test Ollama with the tiny models;
# OLLAMA_ENGINES=N starts a pool of N on consecutive ports.
ollama:
	@bash scripts/ollama-up.sh

# Installs (once) the tools the deploy tests run: promtool, nginx,
# docker-compose, chromium (the status page's browser tests), and
# debootstrap for the Docker end-to-end test under CI.
deploy-tools:
	@bash scripts/deploy-tools-install.sh

run: build
	@bash scripts/run.sh

test: ollama deploy-tools
	$(GO) vet ./...
	AURAX_TEST_OLLAMA=http://$(OLLAMA_ADDR) AURAX_TEST_OLLAMA_BIN=$(AURAX_CACHE)/ollama/bin/ollama \
	AURAX_TEST_OLLAMA_MODELS=$(AURAX_CACHE)/ollama/models $(GO) test -count=1 -timeout 20m ./...

# Figures for the README's Performance and Pool sections: Go benchmarks of
# the handler path and the routing, the loopback load test (fixed-latency
# upstream, and the real tiny-model Ollama side by side), the hop suite
# (direct, an nginx hop and AURAX to the same upstream, rounds interleaved),
# again with the proxies on a CPU of their own where there are two or more
# (-pin 1), then the pool suite (AURAX vs nginx round robin and least_conn
# over four engines).
bench: ollama deploy-tools
	$(GO) test -run '^$$' -bench . -benchtime 2s ./server ./metrics ./pool
	$(GO) run ./internal/loadtest -ollama http://$(OLLAMA_ADDR)
	$(GO) run ./internal/loadtest -suite hop -rates 500,1000,2000 -duration 6s -rounds 3
	if [ "$$(nproc)" -ge 2 ]; then $(GO) run ./internal/loadtest -suite hop -pin 1 -rates 500,1000,2000 -duration 6s -rounds 3; fi
	$(GO) run ./internal/loadtest -suite pool -duration 10s -rounds 3 \
		-ollama-bin $(AURAX_CACHE)/ollama/bin/ollama -ollama-models $(AURAX_CACHE)/ollama/models

clean:
	rm -rf bin
