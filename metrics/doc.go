// Package metrics owns AURAX's Prometheus registry contents: HTTP metrics,
// model and admission-queue metrics, GPU metrics through NVML, process and
// cgroup sampling, and the Signals snapshot the scaling controller reads.
//
// Metrics, with the default namespace "aurax":
//
//	aurax_requests_total{status_code,method,path}            HTTP, by route template (fiberprometheus)
//	aurax_request_duration_seconds{status_code,method,path}  HTTP, until the handler returns: for
//	  a stream that is its time to first byte; a model request's whole
//	  duration is aurax_model_processing_duration_seconds (what the
//	  alerts, the dashboard and the scaling observers read)
//	aurax_requests_in_progress_total{method}                 HTTP
//	  (fastapi_* instead of aurax_* for these three with Options.SeedNames)
//	aurax_inprogress_requests                                model requests inside AURAX: waiting + in flight
//	aurax_queue_depth, aurax_queue_in_flight, aurax_queue_slots
//	aurax_queue_wait_seconds                                 histogram
//	aurax_queue_rejected_total{reason}                       queue_full, wait_timeout, draining
//	aurax_model_arrivals_total{model_type}
//	aurax_model_requests_total{model_type,status}            status: HTTP code, 499 when the client left
//	aurax_model_processing_duration_seconds{model_type}      buckets to 120 s
//	aurax_model_time_to_first_token_seconds{model_type}
//	aurax_model_tokens_total{model_type,kind}                kind: prompt, completion
//	aurax_overhead_seconds                                   10 µs to 1 s
//	nvidia_gpu_utilization_percent{gpu}, nvidia_gpu_memory_used_bytes{gpu},
//	nvidia_gpu_memory_total_bytes{gpu}                       only when NVML initialised
//	go_*, process_*                                          Go and process collectors
//
// model_type is the name the client asked for; after 100 distinct names,
// new ones are counted as "other".
//
// Signals' p95, error rate and request rate come from a fixed ring of 60
// time slots with a log-linear histogram each (about 43 KiB whatever the
// load; quantiles within 12.5 %). CPU and memory come from /proc and the
// cgroup (v2, else v1) files; GPU from NVML. NVML is a process-wide C
// library: after a failed Init nothing else in it may be called, so every
// GPU reading goes through a backend that exists only after Init succeeded
// and is dropped by Close.
package metrics
