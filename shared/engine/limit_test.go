package engine_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/failure"
)

// stub is an engine with a func field (nil-safe: nil answers "ok").
type stub struct {
	name string
	fn   func(ctx context.Context, p engine.Page) (engine.Result, error)
}

func (s *stub) Name() string { return s.name }

func (s *stub) Recognize(ctx context.Context, p engine.Page) (engine.Result, error) {
	if s.fn == nil {
		return engine.Result{Markdown: "ok"}, nil
	}
	return s.fn(ctx, p)
}

// gate holds calls until released and records the most at once.
type gate struct {
	entered chan struct{}
	release chan struct{}
	cur     atomic.Int32
	max     atomic.Int32
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 100), release: make(chan struct{})} }

func (g *gate) engine() *stub {
	return &stub{name: "gated", fn: func(ctx context.Context, _ engine.Page) (engine.Result, error) {
		n := g.cur.Add(1)
		for m := g.max.Load(); n > m && !g.max.CompareAndSwap(m, n); m = g.max.Load() {
		}
		g.entered <- struct{}{}
		defer g.cur.Add(-1)
		select {
		case <-g.release:
			return engine.Result{Markdown: "ok"}, nil
		case <-ctx.Done():
			return engine.Result{}, ctx.Err()
		}
	}}
}

func TestLimit_caps_calls_in_flight(t *testing.T) {
	g := newGate()
	e := engine.Limit(3)(g.engine())
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			_, err := e.Recognize(t.Context(), engine.Page{})
			assert.NoError(t, err)
		})
	}
	for range 3 {
		<-g.entered // the first three start at once
	}
	for range 12 - 3 {
		require.Equal(t, int32(3), g.cur.Load(), "calls in flight, want the limit")
		g.release <- struct{}{} // one ends …
		<-g.entered             // … and the next waiting call takes its slot
	}
	for range 3 {
		g.release <- struct{}{}
	}
	wg.Wait()
	assert.Equal(t, int32(3), g.max.Load(), "most calls at once; want exactly the limit")
	assert.Equal(t, "gated", e.Name(), "Name")
}

func TestLimit_waiting_caller_leaves_with_its_context(t *testing.T) {
	g := newGate()
	e := engine.Limit(1)(g.engine())
	done := make(chan error, 1)
	go func() { _, err := e.Recognize(t.Context(), engine.Page{}); done <- err }()
	<-g.entered // the one slot is taken
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := e.Recognize(ctx, engine.Page{})
	require.ErrorIs(t, err, context.Canceled, "waiting call")
	g.release <- struct{}{}
	require.NoError(t, <-done)
	// The abandoned wait did not leak the slot.
	go func() { _, err := e.Recognize(t.Context(), engine.Page{}); done <- err }()
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the slot leaked: a new call never started")
	}
	g.release <- struct{}{}
	assert.NoError(t, <-done)
}

func TestLimit_429_is_backoff_not_an_error(t *testing.T) {
	for _, tc := range []struct {
		name      string
		refusals  int
		deadline  time.Duration
		wantErr   bool
		wantCalls int32
	}{
		{name: "two_429s_then_served", refusals: 2, deadline: 10 * time.Second, wantCalls: 3},
		{name: "429_until_the_deadline_is_transient", refusals: 1 << 30, deadline: 100 * time.Millisecond, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			inner := &stub{name: "vllm", fn: func(context.Context, engine.Page) (engine.Result, error) {
				if int(calls.Add(1)) <= tc.refusals {
					return engine.Result{}, &engine.OverloadedError{RetryAfter: 10 * time.Millisecond, Message: "busy"}
				}
				return engine.Result{Markdown: "ok"}, nil
			}}
			ctx, cancel := context.WithTimeout(t.Context(), tc.deadline)
			defer cancel()
			r, err := engine.Limit(4)(inner).Recognize(ctx, engine.Page{})
			if tc.wantErr {
				assert.ErrorIs(t, err, engine.ErrOverloaded, "want a transient overload")
				assert.True(t, failure.Retryable(err), "err = %v, want a transient overload", err)
				return
			}
			require.NoError(t, err, "Recognize")
			require.Equal(t, "ok", r.Markdown, "Recognize")
			assert.Equal(t, tc.wantCalls, calls.Load(), "calls")
		})
	}
}
