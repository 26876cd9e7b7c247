package compose

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the provider leaves no goroutine behind: drains are
// waited for by Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The Engine client's idle keep-alive connections, closed by Close
		// but reaped asynchronously.
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	)
}
