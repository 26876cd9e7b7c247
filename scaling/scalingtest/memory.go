// Package scalingtest has the test doubles of the scaling path: an
// in-memory Provider that can fail its calls as a platform does.
package scalingtest

import (
	"context"
	"sync"

	"github.com/aurax/aurax/scaling"
)

// Memory is an in-memory Provider: it can fail calls, and fail after
// applying (as a timeout after the platform accepted the change). It is
// safe for concurrent use.
type Memory struct {
	mu       sync.Mutex
	n        int
	sets     []int
	failures []failure
}

type failure struct {
	err     error
	applied bool
}

var _ scaling.Provider = (*Memory)(nil)

// NewMemory starts at n replicas.
func NewMemory(n int) *Memory { return &Memory{n: n} }

// FailNext makes the next SetReplicas return err; when applied is true the
// count changes anyway. Calls queue up: each fails one SetReplicas.
func (m *Memory) FailNext(err error, applied bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures = append(m.failures, failure{err, applied})
}

// Sets returns every count SetReplicas was called with, in order.
func (m *Memory) Sets() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.sets...)
}

// Replicas implements scaling.Provider.
func (m *Memory) Replicas(ctx context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n, ctx.Err()
}

// SetReplicas implements scaling.Provider.
func (m *Memory) SetReplicas(ctx context.Context, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sets = append(m.sets, n)
	if len(m.failures) > 0 {
		f := m.failures[0]
		m.failures = m.failures[1:]
		if f.applied {
			m.n = n
		}
		return f.err
	}
	m.n = n
	return nil
}
