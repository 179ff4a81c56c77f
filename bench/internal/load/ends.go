package load

import (
	"maps"
	"slices"
	"sync"
)

// endCounter counts reading clients whose connection ended while the run
// still needed it, by how it ended. It is safe for concurrent use.
type endCounter struct {
	mu       sync.Mutex
	closed   map[int]int64 // close code -> clients
	reset    int64
	failed   int64
	disconns int64
}

func (e *endCounter) add(err error) {
	kind, code := classifyEnd(err)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.disconns++
	switch kind {
	case endClosed:
		if e.closed == nil {
			e.closed = map[int]int64{}
		}
		e.closed[code]++
	case endReset:
		e.reset++
	default:
		e.failed++
	}
}

// fill sets the disconnect fields of res.
func (e *endCounter) fill(res *Result) {
	e.mu.Lock()
	defer e.mu.Unlock()
	res.Disconnected = e.disconns
	res.ClosedByServer = map[int]int64{}
	maps.Copy(res.ClosedByServer, e.closed)
	res.ResetByServer = e.reset
	res.ClientFailures = e.failed
}

// errorLog counts errors and keeps the first maxRecordedErrors. It is safe
// for concurrent use.
type errorLog struct {
	mu    sync.Mutex
	first []string
	count int64
}

func (l *errorLog) record(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count++
	if len(l.first) < maxRecordedErrors {
		l.first = append(l.first, err.Error())
	}
}

func (l *errorLog) snapshot() (int64, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count, slices.Clone(l.first)
}
