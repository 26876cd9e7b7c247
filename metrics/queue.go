package metrics

import "github.com/prometheus/client_golang/prometheus"

// queueCollector reports the admission queue as gauges read at scrape time,
// from one call of the queue source so that the gauges agree with each other.
type queueCollector struct {
	m     *Metrics
	descs queueDescs
}

type queueDescs struct {
	inProgress, depth, inFlight, slots *prometheus.Desc
}

func newQueueDescs(ns string) queueDescs {
	return queueDescs{
		inProgress: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "inprogress_requests"),
			"Model requests inside AURAX: waiting for a slot plus holding one.", nil, nil),
		depth: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "queue_depth"),
			"Model requests admitted and waiting for an inference slot.", nil, nil),
		inFlight: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "queue_in_flight"),
			"Model requests holding an inference slot.", nil, nil),
		slots: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "queue_slots"),
			"Inference slots of this replica.", nil, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.descs.inProgress
	ch <- c.descs.depth
	ch <- c.descs.inFlight
	ch <- c.descs.slots
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	q := c.m.queue()
	ch <- prometheus.MustNewConstMetric(c.descs.inProgress, prometheus.GaugeValue, float64(q.Waiting+q.InFlight))
	ch <- prometheus.MustNewConstMetric(c.descs.depth, prometheus.GaugeValue, float64(q.Waiting))
	ch <- prometheus.MustNewConstMetric(c.descs.inFlight, prometheus.GaugeValue, float64(q.InFlight))
	ch <- prometheus.MustNewConstMetric(c.descs.slots, prometheus.GaugeValue, float64(q.Slots))
}
