package load

import (
	"fmt"
	"sync"
	"time"
)

// rssSampleInterval is how often the server's VmRSS is read for its peak.
const rssSampleInterval = 50 * time.Millisecond

// serverSampler follows a server process's memory and CPU time over a run.
type serverSampler struct {
	pid       int
	rssBefore int64
	cpuBefore float64
	err       error

	stop    chan struct{}
	stopped sync.WaitGroup
	mu      sync.Mutex
	peak    int64
}

func startServerSampler(pid int) *serverSampler {
	s := &serverSampler{pid: pid, stop: make(chan struct{})}
	rss, err := procRSS(pid)
	if err == nil {
		s.cpuBefore, err = procCPUSeconds(pid)
	}
	if err != nil {
		s.err = fmt.Errorf("server pid %d: %w", pid, err)
		return s
	}
	s.rssBefore, s.peak = rss, rss
	s.stopped.Go(s.sample)
	return s
}

func (s *serverSampler) sample() {
	ticker := time.NewTicker(rssSampleInterval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
		}
		rss, err := procRSS(s.pid)
		if err != nil {
			return // the server is gone; finish reports it
		}
		s.mu.Lock()
		s.peak = max(s.peak, rss)
		s.mu.Unlock()
	}
}

// finish takes the last samples and fills the server fields of res.
func (s *serverSampler) finish(res *Result) error {
	if s.err != nil {
		return s.err
	}
	close(s.stop)
	s.stopped.Wait()
	rss, err := procRSS(s.pid)
	if err != nil {
		return fmt.Errorf("server pid %d: %w", s.pid, err)
	}
	cpu, err := procCPUSeconds(s.pid)
	if err != nil {
		return fmt.Errorf("server pid %d: %w", s.pid, err)
	}
	peak := max(s.peak, rss)
	cpuUsed := cpu - s.cpuBefore
	res.ServerRSSBefore, res.ServerRSSAfter, res.ServerRSSPeak = &s.rssBefore, &rss, &peak
	res.ServerCPU = &cpuUsed
	if res.Connected > 0 {
		perConn := float64(rss-s.rssBefore) * 1024 / float64(res.Connected)
		res.ServerRSSPerConn = &perConn
	}
	return nil
}
