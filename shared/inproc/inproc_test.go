package inproc_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/inproc"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/obs/obstest"
	"github.com/ocrflow/ocrflow/shared/stage"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// call is one handler invocation a stub stage saw.
type call struct {
	stage   string
	event   event.Event
	attempt int
	last    bool
}

// rig is a transport serving stub stages on the real Trigger routing.
type rig struct {
	t        *testing.T
	tr       *inproc.Transport
	metrics  *obs.Metrics
	calls    chan call
	observed chan event.Event
}

// behaviour answers one delivery of a stub stage.
type behaviour func(e event.Event, attempt int) (*event.Event, error)

func newRig(t *testing.T, stages map[string]behaviour) *rig {
	t.Helper()
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	r := &rig{t: t, metrics: obs.NewMetrics(), calls: make(chan call, 64), observed: make(chan event.Event, 64)}
	r.tr = inproc.New(inproc.Config{Triggers: triggers, BackoffScale: 1e-6, Observe: func(e event.Event) { r.observed <- e }})
	r.tr.Instrument(r.metrics)
	var ss []stage.Stage
	for name, b := range stages {
		ss = append(ss, stage.Stage{Name: name, Workers: 2, Handler: func(ctx context.Context, e event.Event) (*event.Event, error) {
			r.calls <- call{stage: name, event: e, attempt: stage.Attempt(ctx), last: stage.LastAttempt(ctx)}
			return b(e, stage.Attempt(ctx))
		}})
	}
	require.NoError(t, r.tr.Serve(t.Context(), ss...))
	t.Cleanup(func() { assert.NoError(t, r.tr.Close(context.Background())) })
	return r
}

// next returns the next handler call, failing after a timeout.
func (r *rig) next() call {
	r.t.Helper()
	select {
	case c := <-r.calls:
		return c
	case <-time.After(10 * time.Second):
		require.FailNow(r.t, "no handler call within 10s")
	}
	return call{}
}

// observedUntil returns the types of the events observed up to and
// including the one with id, failing after a timeout.
func (r *rig) observedUntil(id string) []string {
	r.t.Helper()
	var types []string
	for {
		select {
		case e := <-r.observed:
			types = append(types, e.Type())
			if e.ID() == id {
				return types
			}
		case <-time.After(10 * time.Second):
			require.FailNow(r.t, "event not observed within 10s", "want %s, saw %v", id, types)
		}
	}
}

func newEvent(t *testing.T, id, typ string) event.Event {
	t.Helper()
	e, err := events.New(nil, id, typ, "/test", 0, "job-1", map[string]string{"job_id": "job-1"})
	require.NoError(t, err)
	if typ == events.TypeJob {
		e.SetExtension(events.ExtUoW, events.UoW)
	}
	return e
}

func reply(t *testing.T, id, typ string) *event.Event {
	e := newEvent(t, id, typ)
	return &e
}

func TestTransport_routes_by_the_triggers_and_publishes_replies(t *testing.T) {
	r := newRig(t, map[string]behaviour{
		stage.Convert:   func(event.Event, int) (*event.Event, error) { return reply(t, "p1", events.TypePageRendered), nil },
		stage.Recognize: func(event.Event, int) (*event.Event, error) { return reply(t, "p1r", events.TypePageRecognized), nil },
		stage.Finalize:  func(event.Event, int) (*event.Event, error) { return reply(t, "done", events.TypeJobCompleted), nil },
	})
	require.NoError(t, r.tr.Send(t.Context(), newEvent(t, "job-1", events.TypeJob)))
	assert.Equal(t, []string{events.TypeJob, events.TypePageRendered, events.TypePageRecognized, events.TypeJobCompleted}, r.observedUntil("done"))
	var stages []string
	for range 3 {
		c := r.next()
		stages = append(stages, c.stage)
		assert.Equal(t, 1, c.attempt, "%s attempt", c.stage)
	}
	assert.Equal(t, []string{stage.Convert, stage.Recognize, stage.Finalize}, stages)
}

func TestTransport_delivery_outcomes(t *testing.T) {
	for _, tc := range []struct {
		name string
		// fail is recognize's answer on each attempt.
		fail func(attempt int) error
		// attempts is how many times recognize must be called.
		attempts int
		// deadCode is the dead letter's knativeerrorcode; 0 = none.
		deadCode int32
		// deliveries counts recognize's deliveries by disposition;
		// reason is the dead-letter reason counted ("" = none).
		deliveries map[string]float64
		reason     string
	}{
		{"transient_error_is_retried_until_it_succeeds", func(a int) error {
			if a < 3 {
				return errors.New("engine busy")
			}
			return nil
		}, 3, 0, map[string]float64{"retry": 2, "ack": 1}, ""},
		{"transient_error_is_dead_lettered_after_the_last_retry", func(int) error { return errors.New("engine down") }, 7, 503,
			map[string]float64{"retry": 6, "dead-letter": 1}, obs.ReasonTransient},
		{"permanent_error_is_dead_lettered_at_once", func(int) error { return failure.Permanent("bad page") }, 1, 500,
			map[string]float64{"dead-letter": 1}, obs.ReasonPermanent},
		{"unroutable_event_is_discarded", func(int) error { return failure.As(failure.ErrUnroutable, errors.New("not here")) }, 1, 0,
			map[string]float64{"discard": 1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, map[string]behaviour{
				stage.Recognize: func(_ event.Event, a int) (*event.Event, error) {
					if err := tc.fail(a); err != nil {
						return nil, err
					}
					return reply(t, "p1r", events.TypePageRecognized), nil
				},
				stage.DeadLetter: func(event.Event, int) (*event.Event, error) { return reply(t, "dead-done", events.TypeJobFailed), nil },
				stage.Finalize:   func(event.Event, int) (*event.Event, error) { return nil, nil },
			})
			require.NoError(t, r.tr.Send(t.Context(), newEvent(t, "p1", events.TypePageRendered)))
			for n := 1; n <= tc.attempts; n++ {
				c := r.next()
				require.Equal(t, stage.Recognize, c.stage, "call %d", n)
				assert.Equal(t, n, c.attempt, "attempt")
				assert.Equal(t, n == 7, c.last, "last attempt flag on attempt %d of 7", n)
			}
			unroutable := tc.deadCode == 0 && tc.attempts == 1
			if unroutable {
				// A marker event proves nothing else was queued before it.
				require.NoError(t, r.tr.Send(t.Context(), newEvent(t, "marker", events.TypePageRecognized)))
			}
			c := r.next()
			switch {
			case tc.deadCode != 0:
				require.Equal(t, stage.DeadLetter, c.stage, "after the last attempt")
				ext := c.event.Extensions()
				assert.Equal(t, tc.deadCode, ext[events.ExtErrorCode], "knativeerrorcode")
				assert.Equal(t, "ocrflow://ocrflow-recognize", ext[events.ExtErrorDest], "knativeerrordest")
				data, err := base64.StdEncoding.DecodeString(ext[events.ExtErrorData].(string))
				require.NoError(t, err)
				assert.NotEmpty(t, string(data), "knativeerrordata")
				assert.Equal(t, "p1-dead-ocrflow-recognize", c.event.ID(), "dead letter id")
				r.observedUntil("dead-done")
			case !unroutable:
				assert.Equal(t, stage.Finalize, c.stage, "the reply goes on to finalize")
				assert.Equal(t, "p1r", c.event.ID())
			default:
				assert.Equal(t, stage.Finalize, c.stage, "the next call is the marker, not a retry or a dead letter")
				assert.Equal(t, "marker", c.event.ID())
			}
			// Close waits for every delivery to be counted.
			require.NoError(t, r.tr.Close(t.Context()))
			m := obstest.ScrapeHandler(t, r.metrics.Handler())
			for _, d := range []string{"ack", "retry", "dead-letter", "discard"} {
				assert.Equal(t, tc.deliveries[d], m.Value("ocrflow_deliveries_total", map[string]string{"stage": stage.Recognize, "disposition": d}), "recognize deliveries %s", d)
			}
			for _, reason := range []string{obs.ReasonTransient, obs.ReasonPermanent} {
				want := 0.0
				if reason == tc.reason {
					want = 1
				}
				assert.Equal(t, want, m.Value("ocrflow_dead_letters_total", map[string]string{"stage": stage.Recognize, "reason": reason}), "dead letters %s", reason)
			}
		})
	}
}

func TestTransport_Close_stops_delivery(t *testing.T) {
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	release := make(chan struct{})
	started := make(chan struct{})
	var once sync.Once
	tr := inproc.New(inproc.Config{Triggers: triggers})
	require.NoError(t, tr.Serve(t.Context(), stage.Stage{Name: stage.Recognize, Handler: func(ctx context.Context, e event.Event) (*event.Event, error) {
		once.Do(func() { close(started) })
		select {
		case <-release:
			return nil, errors.New("retry me later")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}))
	require.NoError(t, tr.Send(t.Context(), newEvent(t, "p1", events.TypePageRendered)))
	<-started

	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want func(t *testing.T, err error)
	}{
		{"in_flight_handler_cancelled_when_the_deadline_passes", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, func(t *testing.T, err error) { assert.ErrorIs(t, err, context.DeadlineExceeded) }},
		{"second_close_is_a_no_op", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			func(t *testing.T, err error) { assert.NoError(t, err) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			tc.want(t, tr.Close(ctx))
		})
	}
	close(release)
	err = tr.Send(t.Context(), newEvent(t, "p2", events.TypePageRendered))
	assert.ErrorIs(t, err, inproc.ErrClosed, "send after close")
}

// TestTransport_takes_no_more_than_the_stage_demands: of 40 workers, only
// as many take events as the stage's Demand says.
func TestTransport_takes_no_more_than_the_stage_demands(t *testing.T) {
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	tr := inproc.New(inproc.Config{Triggers: triggers})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tr.Close(ctx)
	})
	var cur, most atomic.Int32
	entered, release := make(chan struct{}, 10), make(chan struct{})
	require.NoError(t, tr.Serve(t.Context(), stage.Stage{Name: stage.Recognize, Workers: 40, Demand: func() int { return 2 },
		Handler: func(ctx context.Context, e event.Event) (*event.Event, error) {
			n := cur.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			entered <- struct{}{}
			defer cur.Add(-1)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		}}))
	for i := range 5 {
		require.NoError(t, tr.Send(t.Context(), newEvent(t, fmt.Sprintf("p%d", i), events.TypePageRendered)))
	}
	for i := range 5 {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			require.FailNow(t, "event not taken", "event %d", i)
		}
		if i >= 1 {
			release <- struct{}{}
		}
	}
	release <- struct{}{}
	assert.Equal(t, int32(2), most.Load(), "most events in hand with a demand of 2")
}
