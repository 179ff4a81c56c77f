package nodetest

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
)

// Logs records what is logged through its [Logs.Logger], every level
// included, for tests of what a broker logs. Its methods are safe for
// concurrent use.
type Logs struct {
	mu      sync.Mutex
	records []string // "LEVEL message", in the order logged
}

// Logger returns a logger whose records l keeps.
func (l *Logs) Logger() *slog.Logger {
	return slog.New(logHandler{l})
}

// Await waits until a record of level with message msg has been logged,
// and fails the test if none is within [Timeout], listing those that were.
func (l *Logs) Await(t testing.TB, level slog.Level, msg string) {
	t.Helper()
	want := level.String() + " " + msg
	if !poll(Timeout, func() bool { return slices.Contains(l.Records(), want) }) {
		t.Fatalf("no log record %q within %v; logged: %s", want, Timeout, quoted(l.Records()))
	}
}

// Records returns the records logged so far, as "LEVEL message", oldest
// first.
func (l *Logs) Records() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records)
}

// logHandler is the slog.Handler of [Logs.Logger]. Attributes and groups
// are dropped: tests match on level and message.
type logHandler struct{ l *Logs }

func (logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h logHandler) Handle(_ context.Context, r slog.Record) error {
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	h.l.records = append(h.l.records, r.Level.String()+" "+r.Message)
	return nil
}

func (h logHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h logHandler) WithGroup(string) slog.Handler { return h }
