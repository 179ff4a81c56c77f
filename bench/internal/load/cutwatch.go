package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cutProbeInterval is how often a cutWatch reads the TCP states.
const cutProbeInterval = 20 * time.Millisecond

// cutWatch follows client connections, without reading from them, until
// the server cut each (see tcpProbe) or the watch stopped. A reader that
// sees its connection end may tell the watch first (ended).
type cutWatch struct {
	probe    *tcpProbe   // used under mu
	stopping func() bool // the run closes the connections itself
	errs     *errorLog

	mu     sync.Mutex
	conns  []*watchedConn
	allCut chan struct{} // closed when every watched connection was cut
	cutAll bool
	over   bool // finish was called: the probe is closed
	stop   chan struct{}
	done   sync.WaitGroup
}

// watchedConn is one connection under watch, guarded by cutWatch.mu.
type watchedConn struct {
	id        string
	nc        *net.TCPConn
	peerKnown bool      // the server's end was seen established
	cutAt     time.Time // zero while not cut
	how       string    // cutFIN or cutRST
	gone      bool      // no longer watched: not a server cut, or probing failed
}

// newCutWatch starts a watch; add connections to it with add.
func newCutWatch(stopping func() bool, errs *errorLog) (*cutWatch, error) {
	probe, err := newTCPProbe()
	if err != nil {
		return nil, err
	}
	w := &cutWatch{probe: probe, stopping: stopping, errs: errs, allCut: make(chan struct{}), stop: make(chan struct{})}
	w.done.Go(w.loop)
	return w, nil
}

// add watches nc, which must be a *net.TCPConn. It looks at it at once,
// so that a server's end seen established now makes its later absence
// count as a cut.
func (w *cutWatch) add(id string, nc net.Conn) *watchedConn {
	wc := &watchedConn{id: id}
	// The probe's netlink socket serves one question at a time: w.mu
	// guards it too.
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.over {
		wc.gone = true
		return wc
	}
	w.conns = append(w.conns, wc)
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		wc.gone = true
		w.errs.record(fmt.Errorf("%s: not a TCP connection, its cut is not watched", id))
		return wc
	}
	wc.nc = tc
	if res, err := w.probe.look(tc); err == nil {
		wc.peerKnown = res.local == tcpEstablished && res.peerExists && res.peer == tcpEstablished
	}
	return wc
}

func (w *cutWatch) loop() {
	ticker := time.NewTicker(cutProbeInterval)
	defer ticker.Stop()
	for {
		w.poll()
		select {
		case <-w.stop:
			return
		case <-ticker.C:
		}
	}
}

// poll looks at every connection not yet cut.
func (w *cutWatch) poll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	left := 0
	for _, wc := range w.conns {
		if !wc.cutAt.IsZero() || wc.gone {
			continue
		}
		res, err := w.probe.look(wc.nc)
		now := time.Now()
		// Once the run closes the connections, what the probe saw may be
		// that close.
		if w.stopping() {
			return
		}
		switch {
		case errors.Is(err, net.ErrClosed):
			// Closed by this side after its reader saw the end; the
			// reader reports it through ended.
			left++
			continue
		case err != nil:
			wc.gone = true
			w.errs.record(fmt.Errorf("%s: %w", wc.id, err))
			continue
		}
		if res.local == tcpEstablished && res.peerExists && res.peer == tcpEstablished {
			wc.peerKnown = true
		}
		if how := res.cut(wc.peerKnown); how != "" {
			wc.cutAt, wc.how = now, how
			continue
		}
		left++
	}
	if left == 0 && len(w.conns) > 0 && !w.cutAll {
		w.cutAll = true
		close(w.allCut)
	}
}

// ended tells the watch that wc's reader saw its connection end with err
// (nil: the client is done and closes it itself). A server's close frame,
// EOF or reset counts as a cut now, unless the probe saw it earlier.
func (w *cutWatch) ended(wc *watchedConn, err error) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !wc.cutAt.IsZero() || wc.gone || w.over || w.stopping() {
		return
	}
	if err == nil {
		wc.gone = true
		return
	}
	switch kind, _ := classifyEnd(err); kind {
	case endClosed:
		wc.cutAt, wc.how = now, cutFIN
	case endReset:
		wc.cutAt, wc.how = now, cutFIN
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			wc.how = cutRST
		}
	default:
		wc.gone = true
	}
}

// wait returns once every watched connection was cut, after d, or when
// ctx ends, whichever comes first.
func (w *cutWatch) wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-w.allCut:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// cutSummary is what a watch found.
type cutSummary struct {
	watched, cut int
	// longest is the longest time from start to a cut, in ms; -1 when
	// nothing was cut; allCutMs is the same but -1 unless all were cut.
	longest, allCutMs float64
	by                string // "fin", "rst", "fin+rst" or ""
}

// finish stops the watch and sums it up, with times counted from start
// (a cut before start counts 0).
func (w *cutWatch) finish(start time.Time) cutSummary {
	close(w.stop)
	w.done.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.over = true
	_ = w.probe.Close()
	s := cutSummary{longest: -1}
	var kinds []string
	for _, wc := range w.conns {
		s.watched++
		if wc.cutAt.IsZero() {
			continue
		}
		s.cut++
		s.longest = max(s.longest, max(float64(wc.cutAt.Sub(start).Microseconds())/1e3, 0))
		if !slices.Contains(kinds, wc.how) {
			kinds = append(kinds, wc.how)
		}
	}
	s.allCutMs = -1
	if s.watched > 0 && s.cut == s.watched {
		s.allCutMs = s.longest
	}
	slices.Sort(kinds)
	s.by = strings.Join(kinds, "+")
	return s
}
