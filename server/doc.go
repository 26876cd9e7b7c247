// Package server is AURAX's HTTP API on Fiber: the OpenAI-compatible (/v1)
// and Ollama-compatible (/api) adapters, health and metrics endpoints, the
// admission queue in front of inference, auth, one error type rendered in
// each wire format, and graceful drain on shutdown.
package server
