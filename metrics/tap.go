package metrics

import "time"

// Tap sees every model result and queue wait as Metrics records them, on
// the request's goroutine: its methods must be quick, must not block, must
// not allocate on the hot path, and must not call back into Metrics. The
// status page's history (package ui) is one.
type Tap interface {
	ObserveModel(ModelResult)
	ObserveQueueWait(time.Duration)
}

// SetTap installs t (nil removes it). Results recorded before it was set
// are not replayed.
func (m *Metrics) SetTap(t Tap) {
	if t == nil {
		m.tap.Store(nil)
		return
	}
	m.tap.Store(&t)
}

// tapped returns the installed Tap, or nil.
func (m *Metrics) tapped() Tap {
	if p := m.tap.Load(); p != nil {
		return *p
	}
	return nil
}
