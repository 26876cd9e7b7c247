// Package runpod is the scaling Provider and Observer for RunPod Serverless,
// on RunPod's REST API v2.
//
// # What "replicas" means on RunPod
//
// RunPod runs its own scaler: between an endpoint's workers.min and
// workers.max it adds flex workers within seconds when jobs queue
// (QUEUE_DELAY or REQUEST_COUNT) and removes them after their idle timeout.
// AURAX's controller does not fight it. It owns the slow-moving floor:
// Replicas is the endpoint's workers.min (the always-on, pre-warmed
// workers) and SetReplicas(n) sets workers.min = n, keeping workers.max at
// the configured budget (Config.MaxWorkers, restored when the platform
// lowered it after idle days). The controller's policy thus raises the floor
// ahead of predicted load (no cold starts for the base load) and lowers it
// when idle, and RunPod's scaler absorbs the bursts above it.
//
// Replicas is not the number of running workers: that number moves with
// RunPod's scaler between ticks, and a controller comparing its wish with it
// would "apply" the same floor again on every tick. The running count is
// what the Observer reports (Observation.Replicas, from /health), so the
// policies see the real capacity while they size the floor.
//
// # Wire
//
// Management: GET and PATCH {BaseURL}/serverless/{id} and GET
// {BaseURL}/serverless/{id}/workers, Bearer auth. PATCH sends only the
// fields that differ, and only fields the API knows (it rejects unknown
// ones). Queue signal: GET {QueueURL}/{id}/health. Each call is one try:
// the controller's apply is the one retry loop (internal/retry). A 429 is
// returned with the wait its Retry-After or X-RateLimit-Reset asks for, 5xx
// and network errors as retryable, other 4xx and undecodable answers as
// terminal *APIError or decode errors. An answer saying the rate limit is
// spent (X-RateLimit-Remaining: 0) delays the next call until its reset
// (at most Config.Timeout). The API key is never logged and never part of
// an error.
package runpod
