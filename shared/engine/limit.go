package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// In-flight policies (OCR_INFLIGHT_POLICY).
const (
	// InflightAdaptive finds the in-flight limit from the model server's
	// queue, up to the maximum (the default).
	InflightAdaptive = "adaptive"
	// InflightFixed keeps the maximum as the limit (lowered only for a
	// while after overload answers).
	InflightFixed = "fixed"
)

// DefaultMaxInflight is the default OCR_MAX_INFLIGHT: the ceiling of the
// adaptive limit, room for one process to keep a large server (vLLM's
// max_num_seqs is 256 by default) full with a short queue.
const DefaultMaxInflight = 512

// Backoff after a 429 that names no Retry-After: it doubles per refusal of
// the same call, within these bounds.
const (
	overloadBackoffMin = 100 * time.Millisecond
	overloadBackoffMax = 5 * time.Second
)

// Gauge polling: every quarter of the lowest call latency, within these
// bounds; after failures the wait doubles up to gaugeBackoffMax.
const (
	gaugePollMin    = 100 * time.Millisecond
	gaugePollMax    = 2 * time.Second
	gaugePollFirst  = 250 * time.Millisecond
	gaugeBackoffMax = 30 * time.Second
)

// LimitConfig configures NewLimit.
type LimitConfig struct {
	// Max is the most calls in flight (OCR_MAX_INFLIGHT); < 1 means 1.
	Max int
	// Adaptive makes the limit follow the model server's queue (up to
	// Max); otherwise it stays at Max.
	Adaptive bool
	// Gauges reads the server's queue (VLLMGauges); nil, or a reader that
	// fails, leaves the adaptive limit to the calls' latency.
	Gauges GaugeReader
	// Log reports which signal the adaptive limit follows (nil: none).
	Log *slog.Logger

	// now is the clock (tests).
	now func() time.Time
}

// Limit returns a wrapper that lets at most n Recognize calls of the
// wrapped engine run at once: NewLimit with a fixed limit.
func Limit(n int) func(Engine) Engine {
	return NewLimit(LimitConfig{Max: n})
}

// NewLimit returns a wrapper that limits how many Recognize calls of the
// wrapped engine run at once, so that one process neither floods the model
// server nor leaves it idle. Calls beyond the limit wait, in arrival
// order, for a slot or for their context to end (then they return its
// error, which the recognize stage treats as a transient deadline).
//
// With cfg.Adaptive the limit starts at 8 and follows the server's queue:
// it keeps a few requests waiting there — max(2, 1/16 of those running) —
// so a finished request's slot is refilled at once, whatever the server's
// capacity and however many processes share it (limit_control.go has the
// rules; docs/performance.md the measurements). Otherwise the limit is
// cfg.Max.
//
// A call that fails with ErrOverloaded (HTTP 429) is not an error for the
// page: it gives its slot back, waits for the server's Retry-After (or a
// doubling backoff), and tries again while its context allows. A 429 or a
// 503 (ErrUnavailable, returned to the caller) halves the limit, at most
// once per call latency; the fixed policy then comes back by one per run
// of successes as long as the limit, the adaptive one as its signal says.
//
// The wrapper implements Demander: the runtime pulls no more pages than
// the limit plus a few waiting for a slot.
func NewLimit(cfg LimitConfig) func(Engine) Engine {
	if cfg.now == nil {
		cfg.now = time.Now
	}
	return func(e Engine) Engine {
		return &limited{next: e, cfg: cfg, ctl: newControl(cfg.Max, cfg.Adaptive), idle: make(chan struct{}, 1)}
	}
}

// Demander is implemented by an engine whose useful number of pages in
// hand changes at run time (an adaptive limit): Demand is how many pages
// the caller should hold at once now — the calls it will let run plus a
// few waiting to take a slot the moment one frees. The standalone runtime
// pulls no more than that for the recognize stage (stage.Stage.Demand).
type Demander interface {
	Demand() int
}

// DemandOf returns the Demand method of e, or of the engine it wraps
// (Fallback), or nil when none has one.
func DemandOf(e Engine) func() int {
	for e != nil {
		if d, ok := e.(Demander); ok {
			return d.Demand
		}
		u, ok := e.(interface{ Unwrap() Engine })
		if !ok {
			return nil
		}
		e = u.Unwrap()
	}
	return nil
}

// Workers returns the most pages a process holds for an engine limited to
// maxInflight calls: the limit's Demand at its ceiling.
func Workers(maxInflight int) int { return demandFor(max(maxInflight, 1)) }

// demandFor is the pages to hold for a limit: the limit plus an eighth
// (at least 2) waiting for a slot — ready when one frees, and never
// waiting long for it (an eighth of a call's latency when the server is
// full).
func demandFor(limit int) int { return limit + max(2, limit/8) }

// pollPeriod is how often the server's gauges are read, given the lowest
// call latency seen (0 = none yet).
func pollPeriod(base time.Duration) time.Duration {
	if base <= 0 {
		return gaugePollFirst
	}
	return min(max(base/4, gaugePollMin), gaugePollMax)
}

type limited struct {
	next Engine
	cfg  LimitConfig

	mu       sync.Mutex
	ctl      *control
	inflight int
	waiters  []chan struct{}
	polling  bool
	// idle wakes the poller when the last call ends, so it stops at once.
	idle chan struct{}
	// signal is what the adaptive limit followed last ("" before any).
	signal string
}

// Name returns the wrapped engine's name.
func (l *limited) Name() string { return l.next.Name() }

// Unwrap returns the wrapped engine.
func (l *limited) Unwrap() Engine { return l.next }

// Demand returns the pages worth holding now: the limit plus an eighth of
// it (at least 2) waiting for a slot.
func (l *limited) Demand() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return demandFor(l.ctl.current())
}

// Limit returns the current limit (diagnostics, the bench).
func (l *limited) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctl.current()
}

// Recognize runs the wrapped engine within the limit.
func (l *limited) Recognize(ctx context.Context, p Page) (Result, error) {
	backoff := overloadBackoffMin
	for {
		if err := l.acquire(ctx); err != nil {
			return Result{}, err
		}
		start := l.cfg.now()
		res, err := l.next.Recognize(ctx, p)
		var over *OverloadedError
		switch {
		case err == nil:
			// A call that climbed the retry ladder made several
			// requests: its time says nothing about the queue.
			l.release(len(res.Steps) == 0, l.cfg.now().Sub(start), false)
			return res, nil
		case errors.As(err, &over):
		case errors.Is(err, ErrUnavailable):
			l.release(false, 0, true)
			return res, err
		default:
			l.release(false, 0, false)
			return res, err
		}
		l.release(false, 0, true)
		wait := over.RetryAfter
		if wait <= 0 {
			wait = backoff
			backoff = min(2*backoff, overloadBackoffMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Result{}, err
		case <-t.C:
		}
	}
}

// acquire takes a slot, waiting in arrival order.
func (l *limited) acquire(ctx context.Context) error {
	l.mu.Lock()
	l.startPollLocked()
	if l.inflight < l.ctl.current() && len(l.waiters) == 0 {
		l.inflight++
		l.ctl.acquired(false, l.inflight)
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil // wakeLocked handed a slot over
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, w := range l.waiters {
			if w == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				return ctx.Err()
			}
		}
		// Handed a slot just as the context ended: pass it on.
		l.inflight--
		l.wakeLocked()
		return ctx.Err()
	}
}

// release gives a slot back: sample says the call succeeded with one
// request that took rtt; overloaded that the server shed it (429, 503).
func (l *limited) release(sample bool, rtt time.Duration, overloaded bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case overloaded:
		l.ctl.overloaded(l.cfg.now())
	case sample:
		l.ctl.succeeded(rtt, l.inflight)
	}
	l.inflight--
	l.wakeLocked()
	if l.inflight == 0 && len(l.waiters) == 0 {
		select {
		case l.idle <- struct{}{}:
		default:
		}
	}
}

// wakeLocked hands free slots to waiters, oldest first.
func (l *limited) wakeLocked() {
	for l.inflight < l.ctl.current() && len(l.waiters) > 0 {
		ch := l.waiters[0]
		l.waiters = l.waiters[1:]
		l.inflight++
		l.ctl.acquired(true, l.inflight)
		close(ch)
	}
}

// startPollLocked starts reading the server's gauges while calls are
// made (an idle process reads nothing).
func (l *limited) startPollLocked() {
	if l.polling || l.cfg.Gauges == nil || !l.cfg.Adaptive {
		return
	}
	l.polling = true
	go l.poll()
}

// poll reads the gauges every pollPeriod until no call is in flight or
// waiting; failures back off and hand the decisions to latency.
func (l *limited) poll() {
	failures := 0
	for {
		l.mu.Lock()
		if l.inflight == 0 && len(l.waiters) == 0 {
			l.polling = false
			l.mu.Unlock()
			return
		}
		period := pollPeriod(l.ctl.base)
		l.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), max(period, time.Second))
		g, err := l.cfg.Gauges(ctx)
		cancel()

		l.mu.Lock()
		if err == nil {
			failures = 0
			l.ctl.observed(g.Running, g.Waiting, l.inflight)
			l.wakeLocked()
			l.follow("gauges", nil)
		} else {
			failures++
			period = min(period<<min(failures, 10), gaugeBackoffMax)
			l.ctl.stale()
			l.follow("latency", err)
		}
		l.mu.Unlock()

		t := time.NewTimer(period)
		select {
		case <-t.C:
		case <-l.idle:
			t.Stop()
		}
	}
}

// follow logs a change of the signal the adaptive limit follows.
func (l *limited) follow(signal string, err error) {
	if l.signal == signal || l.cfg.Log == nil {
		l.signal = signal
		return
	}
	l.signal = signal
	if err != nil {
		l.cfg.Log.Warn("cannot read the model server's queue gauges: the in-flight limit follows call latency", "error", err)
		return
	}
	l.cfg.Log.Info("the in-flight limit follows the model server's queue gauges")
}

// stats reports the current limit and calls in flight (tests).
func (l *limited) stats() (limit, inflight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctl.current(), l.inflight
}
