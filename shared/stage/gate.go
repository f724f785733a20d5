package stage

import (
	"sync"
	"time"
)

// DemandPoll is how often a transport waiting on a Stage's Demand checks
// whether it grew (it also checks whenever an event is done).
const DemandPoll = 50 * time.Millisecond

// Gate counts the events a transport holds for a stage: at most Workers,
// and no more than the stage's Demand while it has one. It is safe for
// concurrent use.
type Gate struct {
	workers int
	demand  func() int

	mu      sync.Mutex
	used    int
	changed chan struct{} // closed (and replaced) when room may have appeared
	polling bool          // a waiter is watching Demand grow
}

// NewGate returns the gate of s.
func NewGate(s Stage) *Gate {
	return &Gate{workers: max(s.Workers, 1), demand: s.Demand, changed: make(chan struct{})}
}

// Allowed returns how many events may be held now.
func (g *Gate) Allowed() int {
	if g.demand == nil {
		return g.workers
	}
	return min(g.workers, max(1, g.demand()))
}

// TryAcquire takes a place if one is free.
func (g *Gate) TryAcquire() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.takeLocked()
}

// Acquire waits for a place; false means stop closed first. While every
// place is taken one waiter checks every DemandPoll whether Demand grew;
// the others wait for a Release.
func (g *Gate) Acquire(stop <-chan struct{}) bool {
	for {
		g.mu.Lock()
		if g.takeLocked() {
			g.mu.Unlock()
			return true
		}
		ch := g.changed
		lead := !g.polling
		g.polling = g.polling || lead
		g.mu.Unlock()

		var tick <-chan time.Time
		var t *time.Timer
		if lead {
			t = time.NewTimer(DemandPoll)
			tick = t.C
		}
		stopped := false
		select {
		case <-stop:
			stopped = true
		case <-ch:
		case <-tick:
		}
		if lead {
			t.Stop()
			g.mu.Lock()
			g.polling = false
			g.mu.Unlock()
		}
		if stopped {
			return false
		}
	}
}

// Release gives a place back.
func (g *Gate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.used--
	g.broadcastLocked()
}

// takeLocked takes a place if one is free and wakes the other waiters
// when more are (Demand grew).
func (g *Gate) takeLocked() bool {
	allowed := g.Allowed()
	if g.used >= allowed {
		return false
	}
	g.used++
	if g.used < allowed {
		g.broadcastLocked()
	}
	return true
}

func (g *Gate) broadcastLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}
