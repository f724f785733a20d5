package engine

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Backoff after a 429 that names no Retry-After: it doubles per refusal of
// the same call, within these bounds.
const (
	overloadBackoffMin = 100 * time.Millisecond
	overloadBackoffMax = 5 * time.Second
)

// Limit returns a wrapper that lets at most n Recognize calls of the
// wrapped engine run at once (OCR_MAX_INFLIGHT), so one process cannot
// flood the model server. Calls beyond the limit wait, in arrival order,
// for a slot or for their context to end (then they return its error,
// which the recognize stage treats as a transient deadline).
//
// A call that fails with ErrOverloaded (HTTP 429) is not an error for the
// page: it gives its slot back, waits for the server's Retry-After (or a
// doubling backoff), and tries again while its context allows. Each 429
// also halves the number of concurrent calls (at least 1); each run of
// successes as long as the current limit raises it by one, up to n
// (additive increase, multiplicative decrease). n < 1 means 1.
func Limit(n int) func(Engine) Engine {
	n = max(n, 1)
	return func(e Engine) Engine {
		return &limited{next: e, max: n, limit: n}
	}
}

type limited struct {
	next Engine
	max  int

	mu       sync.Mutex
	limit    int
	inflight int
	streak   int
	waiters  []chan struct{}
}

// Name returns the wrapped engine's name.
func (l *limited) Name() string { return l.next.Name() }

// Recognize runs the wrapped engine within the limit.
func (l *limited) Recognize(ctx context.Context, p Page) (Result, error) {
	backoff := overloadBackoffMin
	for {
		if err := l.acquire(ctx); err != nil {
			return Result{}, err
		}
		res, err := l.next.Recognize(ctx, p)
		var over *OverloadedError
		if !errors.As(err, &over) {
			l.release(err == nil)
			return res, err
		}
		l.shrink()
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
	if l.inflight < l.limit && len(l.waiters) == 0 {
		l.inflight++
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil // release handed its slot over
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

// release gives a slot back; ok records a success for the increase.
func (l *limited) release(ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	if ok && l.limit < l.max {
		l.streak++
		if l.streak >= l.limit {
			l.limit++
			l.streak = 0
		}
	}
	l.wakeLocked()
}

// shrink releases the caller's slot and halves the limit.
func (l *limited) shrink() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	l.limit = max(1, l.limit/2)
	l.streak = 0
	l.wakeLocked()
}

// wakeLocked hands free slots to waiters, oldest first.
func (l *limited) wakeLocked() {
	for l.inflight < l.limit && len(l.waiters) > 0 {
		ch := l.waiters[0]
		l.waiters = l.waiters[1:]
		l.inflight++
		close(ch)
	}
}

// Stats reports the current limit and calls in flight (for tests and
// diagnostics).
func (l *limited) stats() (limit, inflight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit, l.inflight
}
