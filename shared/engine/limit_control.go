package engine

import (
	"math"
	"time"
)

// control is the decision core of a limiter: it holds the in-flight limit
// and moves it on what the calls and the model server report. It has no
// clock, no lock and no goroutine of its own — the limiter (limit.go)
// feeds it under its mutex, and the simulation tests feed it in virtual
// time.
//
// The adaptive policy keeps a short queue at the model server: a few
// requests waiting, so that a finished request's slot is taken at once
// instead of after ocrflow's round trip (storing the page, acknowledging,
// fetching and preparing the next one), and not more, so that pages do not
// wait there for nothing. Its measure of that queue is
//
//   - the server's own gauges (vLLM's /metrics num_requests_waiting and
//     num_requests_running), read every quarter of a call's latency when
//     they can be — exact, global over every process that shares the
//     server, and current at once; the target is max(2, running/32);
//   - otherwise the calls' latency, as TCP Vegas reads a network path:
//     with base the lowest latency of a round of calls (no queue), a call
//     that started with sent calls in flight and took rtt says the server
//     serves sent·base/rtt of them and queues the rest; decided once per
//     round (as many calls as the limit); the target is max(2, limit/16).
//
// Each decision then
//
//   - cuts, when the queue is longer than twice the target: with gauges,
//     this process's share of the excess comes off its calls in flight
//     (the others take theirs, so together they remove it once, and a
//     queue that has not drained yet is not cut twice); with latency, to
//     the estimate of what the server serves plus the target;
//   - grows, when the queue is below the target and calls waited for the
//     limit: ×1.5 per poll (gauges) or ×2 per round (latency) in slow
//     start (from 8, until the first queue), else by
//     the queue missing; after three such decisions in a row slow start
//     comes back with gauges, ×1.25 steps with latency (which sees an
//     overshoot only a latency later);
//   - holds in between.
//
// An overload answer (429, 503) halves the limit, at most once per base
// latency, and leaves a ceiling where it came: growth doubles back to just
// below it, and passes it one call at a time.
//
// The fixed policy keeps the configured maximum and only halves on an
// overload answer, coming back by one per run of successes as long as the
// limit (additive increase, multiplicative decrease).
type control struct {
	max   float64
	limit float64
	fixed bool

	// slow is true while probing multiplicatively.
	slow bool
	// under counts decisions in a row that found too short a queue while
	// the limit held calls back.
	under int
	// limited is set when a call had to wait for a slot, or took the last
	// one, since the last decision: only then does more room help.
	limited bool

	// base is the lowest latency of a successful call (0 = none yet).
	base time.Duration
	// lastCut is when an overload last halved the limit.
	lastCut time.Time
	// ceiling is the limit an overload answer last came at (0 = none):
	// probing doubles up to it, and grows additively beyond.
	ceiling float64
	// streak counts successes since the fixed policy's last increase.
	streak int

	// The latency policy decides once per round: as many completed calls
	// as the limit was at the round's start.
	round roundStats

	// gauges is true while fresh server gauges drive the limit.
	gauges bool
}

type roundStats struct {
	want   int
	n      int
	rtt    time.Duration
	sent   float64 // calls in flight at each call's start, summed
	served float64 // estimates of the calls the server served, summed
}

// Tuning of the adaptive policy (docs/performance.md: how they were chosen).
const (
	// adaptiveStart is where an adaptive limit starts (when the maximum
	// allows): enough for a small server at once, and log2(C/8) doublings
	// from any other.
	adaptiveStart = 8
	// queueFloor is the least queue aimed at, in requests.
	queueFloor = 2
	// gaugeQueueShare is the queue aimed at as a share of the requests
	// the server runs, read from its gauges; latencyQueueShare as a share
	// of this process's limit, estimated from latency — larger, as pages'
	// own variation in latency reads as a little queue.
	gaugeQueueShare   = 1.0 / 32
	latencyQueueShare = 1.0 / 16
	// reprobe is how many short-queue decisions in a row bring slow
	// start back (the server has room again, e.g. after a 429 halved the
	// limit or another process left).
	reprobe = 3
	// gaugeSlowStart is the factor slow start grows the limit by per poll
	// of the gauges (latency doubles once per round): at most half the
	// server's capacity overshoots into its queue, for about one latency,
	// when the probe finds its end.
	gaugeSlowStart = 1.5
	// roundEarly is how many calls of a round may show a queue long
	// enough to cut before the round is complete.
	roundEarly = 8
)

func newControl(maxInflight int, adaptive bool) *control {
	m := float64(max(maxInflight, 1))
	c := &control{max: m, limit: m, fixed: !adaptive}
	if adaptive {
		c.limit = min(m, adaptiveStart)
		c.slow = true
	}
	c.round.want = int(c.limit)
	return c
}

// current is the number of calls allowed in flight.
func (c *control) current() int { return max(1, int(c.limit)) }

// acquired records an admission: waited says the call had to wait for its
// slot; inflight counts the calls in flight with it.
func (c *control) acquired(waited bool, inflight int) {
	if waited || inflight >= c.current() {
		c.limited = true
	}
}

// overloaded records a 429 or 503: halve, at most once per base latency
// (the answers of one burst all report the same overload).
func (c *control) overloaded(now time.Time) {
	gap := max(c.base, 100*time.Millisecond)
	if !c.lastCut.IsZero() && now.Sub(c.lastCut) < gap {
		return
	}
	c.lastCut = now
	c.ceiling = c.limit
	c.limit = max(1, c.limit/2)
	c.slow, c.under, c.streak = false, 0, 0
	c.resetRound()
}

// succeeded records a successful call that took rtt; sent is the number
// of calls that were in flight when it started (itself included).
//
// Latency: a request that found q requests ahead of it at a server
// serving C at once waits q/C of a service time, so rtt/base = 1 + q/C;
// with sent = C + q (one process) the server serves sent·base/rtt of
// this process's calls — an estimate that holds per call, in a transient
// as in the steady state. Several processes share the queue: each
// estimates its share.
func (c *control) succeeded(rtt time.Duration, sent int) {
	if c.fixed {
		c.base = minLatency(c.base, rtt)
		if c.limit < c.max {
			c.streak++
			if c.streak >= c.current() {
				c.limit++
				c.streak = 0
			}
		}
		return
	}
	r := &c.round
	r.n++
	r.rtt += rtt
	r.sent += float64(sent)
	r.served += float64(sent)
	if c.base > 0 && rtt > 0 {
		r.served -= float64(sent) * (1 - float64(c.base)/float64(rtt))
	}
	if c.gauges {
		if r.n >= r.want {
			c.base = minLatency(c.base, r.rtt/time.Duration(r.n))
			c.resetRound()
		}
		return
	}
	target := math.Max(queueFloor, latencyQueueShare*c.limit)
	in := r.sent / float64(r.n)
	queued := in - math.Min(in, r.served/float64(r.n))
	if r.n < r.want {
		// A queue that shows in the first calls of a round ends slow
		// start at once (HyStart): the round's end cuts it.
		if c.slow && r.n >= roundEarly && queued > 2*target {
			c.slow = false
		}
		return
	}
	// The base latency is the lowest mean of a round, not of a call: one
	// short answer (a blank page) says nothing about the queue, a round of
	// them averages the pages' own variation out.
	c.base = minLatency(c.base, r.rtt/time.Duration(r.n))
	c.resetRound()
	c.decide(queued, target, 2*target, in-queued+target)
}

func minLatency(base, d time.Duration) time.Duration {
	if base == 0 || d < base {
		return d
	}
	return base
}

// observed records the server's gauges: running and waiting requests over
// every client, mine of them this process's calls in flight.
func (c *control) observed(running, waiting float64, mine int) {
	if c.fixed {
		return
	}
	c.gauges = true
	share := 1.0
	if total := running + waiting; total > 0 {
		share = math.Min(1, float64(mine)/total)
	}
	target := math.Max(queueFloor, gaugeQueueShare*running)
	// This process's share of the excess comes off what it has in flight
	// (not off its limit: a queue that has not drained yet since the last
	// cut is not cut again); the others take theirs, so together they
	// remove it once.
	in := float64(mine)
	// Hold between half the target and one and a half: growth happens
	// only on an empty-ish queue, so the queue does not ratchet up to the
	// band's top.
	c.decide(waiting, target/2, 1.5*target, in-share*(waiting-target))
}

// stale says the gauges could not be read lately: latency decides again.
func (c *control) stale() {
	if c.gauges {
		c.gauges = false
		c.resetRound()
	}
}

// decide moves the limit for a queue of queued requests: it grows below
// low, holds up to high and cuts to cut beyond. It grows only when calls
// waited for the limit since the last decision (or took its last slot): a
// limit the calls have not caught up with does not grow.
func (c *control) decide(queued, low, high, cut float64) {
	switch {
	case queued > high:
		c.slow, c.under = false, 0
		c.limit = math.Max(1, math.Min(c.limit, cut))
	case queued < low && c.limited:
		grown := c.limit + math.Max(1, low-queued)
		switch {
		case c.ceiling > 0 && c.limit < c.ceiling-1:
			// Back quickly to just below where the server refused …
			grown = math.Min(2*c.limit, c.ceiling-1)
		case c.ceiling > 0:
			// … and beyond it one call at a time, until well past it:
			// then the refusal is history.
			grown = c.limit + 1
			if grown > c.ceiling*1.125+2 {
				c.ceiling = 0
			}
		case c.slow:
			grown = 2 * c.limit
			if c.gauges {
				grown = gaugeSlowStart * c.limit
			}
		case c.under >= reprobe && c.gauges:
			c.slow = true // the gauges see a queue at once: probe fast
		case c.under >= reprobe:
			grown = c.limit * 1.25 // latency sees it a call late: gently
		}
		c.under++
		c.limit = math.Min(c.max, math.Max(c.limit, grown))
	case queued >= low:
		c.slow, c.under = false, 0
	}
	c.limited = false
}

func (c *control) resetRound() {
	c.round = roundStats{want: c.current()}
}
