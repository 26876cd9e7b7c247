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
// ones). Queue signal: GET {QueueURL}/{id}/health. 429 is retried after the
// server's Retry-After or X-RateLimit-Reset (or exponential backoff), 5xx
// and network errors are retried with backoff, all within
// Config.MaxAttempts; other 4xx are returned at once as *APIError. The API
// key is never logged and never part of an error.
package runpod
