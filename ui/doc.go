// Package ui is the status page at /ui: one page, served from files
// embedded in the binary (hand-written HTML, CSS and JavaScript, no CDN,
// no build step), that says what this AURAX is doing and why without
// Prometheus or Grafana.
//
// The page polls two JSON endpoints next to it every two seconds:
// api/state (status and why, engines, queue, traffic totals, scaling and
// its decisions, RAG collections, GPUs) and api/history (the points of the
// last 15 minutes newer than ?since=, for the charts). It reads the server
// through Source, declared here; the engines are the engine pool's, from
// /health's engines list as the server renders it (a single Ollama is a
// pool of one), so that the page says what probes and operators see.
// History is a metrics.Tap: it keeps
// the charts' points in a fixed ring, sampled by Run. The page's buttons
// call the scaling admin endpoints (../v1/scaling/...) with the admin key
// typed into the page, which keeps keys in memory only.
package ui
