package wsprom_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: a manager,
// a client or a scrape that did not end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
