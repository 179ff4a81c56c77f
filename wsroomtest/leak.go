package wsroomtest

import (
	"bytes"
	"runtime"
	"strings"
	"time"
)

// VerifyNoLeaks checks, when the test ends, that every goroutine started
// during the test has ended, waiting up to the timeout for them; it fails
// the test listing those that are left. Call it first in a test, before
// anything starts goroutines (servers, clients), so that its check runs
// after their cleanups. Tests that run in parallel share the process, so
// it is for tests that do not.
func VerifyNoLeaks(t TB) {
	t.Helper()
	before := goroutines()
	t.Cleanup(func() {
		deadline := time.Now().Add(DefaultTimeout)
		for {
			var leaked []string
			for id, stack := range goroutines() {
				if _, ok := before[id]; !ok && !ignorable(stack) {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("wsroomtest: %d goroutines started during the test are still running:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// goroutines returns the stack of every goroutine, by its ID.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	all := map[string]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		header, _, _ := bytes.Cut(g, []byte("\n"))
		fields := strings.Fields(string(header)) // goroutine N [state]:
		if len(fields) >= 2 && fields[0] == "goroutine" {
			all[fields[1]] = string(g)
		}
	}
	return all
}

// ignorable reports the test runner's goroutines: those testing started.
func ignorable(stack string) bool {
	_, created, ok := strings.Cut(stack, "\ncreated by ")
	return ok && strings.HasPrefix(created, "testing.")
}
