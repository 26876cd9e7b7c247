package metrics

import "github.com/prometheus/client_golang/prometheus"

// memoryOf is what MemoryPercent divides: the cgroup's working set over its
// limit (at most the host's memory) when the cgroup has a limit, else the
// process's resident set over the host's memory. limit is 0 when unknown.
func memoryOf(sys sysSample) (used, limit uint64) {
	used, limit = sys.rss, sys.hostMem
	if sys.cg.memLimit > 0 && sys.cg.memUsage > 0 {
		used, limit = sys.cg.memUsage, sys.cg.memLimit
		if sys.hostMem > 0 && sys.hostMem < limit {
			limit = sys.hostMem
		}
	}
	return used, limit
}

// resources exports the denominators of the CPU and memory signals, so a
// Prometheus query can compute what the local signals do:
// rate(process_cpu_seconds_total) / aurax_cpu_cores, and
// aurax_memory_bytes / aurax_memory_limit_bytes. One read of the process
// and its cgroup per scrape.
type resources struct {
	m                  *Metrics
	cores, used, limit *prometheus.Desc
}

func newResources(m *Metrics, ns string) *resources {
	return &resources{m: m,
		cores: prometheus.NewDesc(ns+"_cpu_cores", "CPU cores this process may use (its cgroup's quota, at most the machine's): the denominator of the CPU signal.", nil, nil),
		used:  prometheus.NewDesc(ns+"_memory_bytes", "Memory the memory signal counts: the cgroup's working set when it has a limit, else the resident set.", nil, nil),
		limit: prometheus.NewDesc(ns+"_memory_limit_bytes", "The memory signal's denominator: the cgroup's limit (at most the host's memory), else the host's memory.", nil, nil),
	}
}

func (r *resources) Describe(ch chan<- *prometheus.Desc) { ch <- r.cores; ch <- r.used; ch <- r.limit }

func (r *resources) Collect(ch chan<- prometheus.Metric) {
	sys, err := r.m.sys.sample()
	if err != nil {
		return // Signals logs the error once
	}
	ch <- prometheus.MustNewConstMetric(r.cores, prometheus.GaugeValue, r.m.sys.cpuCores(sys.cg))
	if used, limit := memoryOf(sys); limit > 0 {
		ch <- prometheus.MustNewConstMetric(r.used, prometheus.GaugeValue, float64(used))
		ch <- prometheus.MustNewConstMetric(r.limit, prometheus.GaugeValue, float64(limit))
	}
}
