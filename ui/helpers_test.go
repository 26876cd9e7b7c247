package ui

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/scaling"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testenv.LeakOptions()...)
}

// fakeSource is an in-memory Source.
type fakeSource struct {
	mu          sync.Mutex
	health      []byte
	healthErr   error
	queue       metrics.QueueStats
	status      *scaling.Status // nil: no controller
	collections []rag.CollectionInfo
	collErr     error
}

var _ Source = (*fakeSource)(nil)

func (f *fakeSource) Health(ctx context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.health, f.healthErr
}

func (f *fakeSource) Queue() metrics.QueueStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queue
}

func (f *fakeSource) Scaling() (scaling.Status, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status == nil {
		return scaling.Status{}, false
	}
	st := *f.status
	st.Decisions = append([]scaling.Record(nil), st.Decisions...)
	return st, true
}

func (f *fakeSource) Collections(context.Context) ([]rag.CollectionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.collections, f.collErr
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
