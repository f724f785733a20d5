package standalone_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

func newRuntime(t *testing.T, url string) *standalone.Runtime {
	t.Helper()
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	rt, err := standalone.New(t.Context(), standalone.Config{
		URL: url, Server: standalone.ServerConfig{StoreDir: filepath.Join(t.TempDir(), "js")},
		Triggers: triggers, BackoffScale: 0.001, FetchWait: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.Close(ctx)
	})
	return rt
}

func pageEvent(t *testing.T, job string, page int) event.Event {
	t.Helper()
	e, err := events.New(nil, events.PageRenderedID(job, page), events.TypePageRendered, "/test", page, job,
		events.PageRendered{JobID: job, Page: page, Pages: 1})
	require.NoError(t, err)
	return e
}

func jobEvent(t *testing.T, id, uow string) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetType(events.TypeJob)
	e.SetSource("/test")
	require.NoError(t, e.SetData(event.ApplicationJSON, map[string]any{"job_id": id, "uow": uow}))
	return e
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		require.FailNow(t, "timed out waiting for a delivery")
		return ""
	}
}

// TestRuntime_routing_equals_the_trigger_manifests checks that the durable
// consumers are exactly what eventing/*.yaml says.
func TestRuntime_routing_equals_the_trigger_manifests(t *testing.T) {
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	rt := newRuntime(t, "")
	var services []stage.Stage
	for _, tr := range triggers {
		services = append(services, stage.Stage{Name: eventing.StageOf(tr.Subscriber), Handler: func(context.Context, event.Event) (*event.Event, error) { return nil, nil }})
	}
	services = append(services, stage.Stage{Name: "deadletter", Handler: func(context.Context, event.Event) (*event.Event, error) { return nil, nil }})
	require.NoError(t, rt.Serve(t.Context(), services...))
	js, err := jetstream.New(rt.Conn())
	require.NoError(t, err)
	for _, tr := range triggers {
		// A Trigger that names a lane (ocrpriority) gets that lane's
		// consumer; any other gets one per lane, normal under its own name.
		consumers := map[string]string{tr.Name: events.PriorityNormal}
		if p, ok := tr.Exact[events.ExtPriority]; ok {
			consumers = map[string]string{tr.Name: p}
		} else {
			consumers[tr.Name+"-high"], consumers[tr.Name+"-low"] = events.PriorityHigh, events.PriorityLow
		}
		for name, lane := range consumers {
			c, err := js.Consumer(t.Context(), standalone.DefaultStream, name)
			require.NoError(t, err, "trigger %s has no consumer %s", tr.Name, name)
			info := c.CachedInfo()
			assert.Equal(t, standalone.LaneSubject(rt.Subject(tr.Exact["type"]), tr.Exact["type"], lane), info.Config.FilterSubject, "%s filter subject", name)
			assert.Equal(t, tr.Delivery.Retry+2, info.Config.MaxDeliver, "%s MaxDeliver, want retry+2", name)
			assert.Greater(t, info.Config.AckWait, tr.Delivery.Timeout, "%s AckWait does not exceed the delivery timeout", name)
			assert.Equal(t, jetstream.AckExplicitPolicy, info.Config.AckPolicy, "%s ack policy, want explicit", name)
		}
	}
	_, err = js.Consumer(t.Context(), standalone.DefaultStream, "ocrflow-dead-letters")
	assert.NoError(t, err, "no dead-letter consumer")
}

func TestRuntime_filters_on_every_trigger_attribute(t *testing.T) {
	rt := newRuntime(t, "")
	got := make(chan string, 4)
	require.NoError(t, rt.Serve(t.Context(), stage.Stage{Name: "convert", Handler: func(_ context.Context, e event.Event) (*event.Event, error) {
		got <- e.ID()
		return nil, nil
	}}))
	// A family producer's job without a uow extension is routed by data.uow.
	for _, e := range []event.Event{jobEvent(t, "thumb-job", "thumbnail"), jobEvent(t, "ocr-job", "ocr")} {
		require.NoError(t, rt.Send(t.Context(), e))
	}
	require.Equal(t, "ocr-job", recv(t, got), "convert received, want only ocr-job")
	select {
	case id := <-got:
		assert.Failf(t, "convert received more than ocr-job", "convert also received %s", id)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestRuntime_permanent_error_is_dead_lettered_at_once(t *testing.T) {
	rt := newRuntime(t, "")
	var calls atomic.Int32
	dead := make(chan string, 1)
	err := rt.Serve(t.Context(),
		stage.Stage{Name: "recognize", Handler: func(context.Context, event.Event) (*event.Event, error) {
			calls.Add(1)
			return nil, failure.Permanent("page event is malformed")
		}},
		stage.Stage{Name: "deadletter", Handler: func(_ context.Context, e event.Event) (*event.Event, error) {
			dead <- e.ID()
			return nil, nil
		}},
	)
	require.NoError(t, err)
	require.NoError(t, rt.Send(t.Context(), pageEvent(t, "perm", 1)))
	assert.Equal(t, events.PageRenderedID("perm", 1)+"-dead-ocrflow-recognize", recv(t, dead), "dead letter id")
	assert.Equal(t, int32(1), calls.Load(), "handler calls, want 1 (no retries for a permanent error)")
}

// TestRuntime_shutdown covers both halves of a graceful stop: in-flight work
// finishes when it can, and is handed back for redelivery when the deadline
// passes.
func TestRuntime_shutdown(t *testing.T) {
	for _, tc := range []struct {
		name        string
		deadline    time.Duration
		wantRedeliv bool
	}{
		{"in_flight_work_finishes", 10 * time.Second, false},
		{"cancelled_work_is_redelivered_elsewhere", 50 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := standalone.StartServer(standalone.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
			require.NoError(t, err)
			defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
			a := newRuntime(t, srv.ClientURL())
			started, release := make(chan struct{}), make(chan struct{})
			finished := make(chan error, 1)
			err = a.Serve(t.Context(), stage.Stage{Name: "recognize", Handler: func(ctx context.Context, e event.Event) (*event.Event, error) {
				close(started)
				select {
				case <-release:
					finished <- nil
					return nil, nil
				case <-ctx.Done():
					finished <- ctx.Err()
					return nil, failure.As(failure.ErrTransient, ctx.Err())
				}
			}})
			require.NoError(t, err)
			require.NoError(t, a.Send(t.Context(), pageEvent(t, "shut", 1)))
			<-started
			closed := make(chan error, 1)
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			go func() { closed <- a.Close(ctx) }()
			if !tc.wantRedeliv {
				close(release)
			}
			err = <-finished
			require.Equal(t, tc.wantRedeliv, err != nil, "handler ended with %v", err)
			err = <-closed
			require.Equal(t, tc.wantRedeliv, err != nil, "Close = %v", err)

			b := newRuntime(t, srv.ClientURL())
			again := make(chan string, 1)
			require.NoError(t, b.Serve(t.Context(), stage.Stage{Name: "recognize", Handler: func(_ context.Context, e event.Event) (*event.Event, error) {
				again <- e.ID()
				return nil, nil
			}}))
			select {
			case id := <-again:
				assert.True(t, tc.wantRedeliv, "%s was redelivered although it had been acked", id)
			case <-time.After(time.Second):
				assert.False(t, tc.wantRedeliv, "cancelled work was not redelivered to the other runtime")
			}
		})
	}
}

// TestRuntime_pulls_no_more_than_the_stage_demands: with 50 workers and a
// Demand of 3, three pages are in hand at once; as each is done the next
// is pulled, and when the Demand grows so do the pages in hand.
func TestRuntime_pulls_no_more_than_the_stage_demands(t *testing.T) {
	rt := newRuntime(t, "")
	var demand, cur, most atomic.Int32
	demand.Store(3)
	entered, release := make(chan string, 20), make(chan struct{})
	h := func(ctx context.Context, e event.Event) (*event.Event, error) {
		n := cur.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		entered <- e.ID()
		defer cur.Add(-1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	}
	require.NoError(t, rt.Serve(t.Context(), stage.Stage{
		Name: stage.Recognize, Handler: h, Workers: 50, Demand: func() int { return int(demand.Load()) },
	}))
	for p := 1; p <= 8; p++ {
		require.NoError(t, rt.Send(t.Context(), pageEvent(t, "demand", p)))
	}
	for range 3 {
		recv(t, entered)
	}
	release <- struct{}{} // one is done …
	recv(t, entered)      // … and one more is pulled
	assert.Equal(t, int32(3), most.Load(), "most pages in hand while the demand is 3")

	demand.Store(5) // the limit grew: two more are pulled
	recv(t, entered)
	recv(t, entered)
	assert.LessOrEqual(t, most.Load(), int32(5), "most pages in hand while the demand is 5")
	for range 5 {
		release <- struct{}{}
	}
	recv(t, entered) // the last two of the eight
	recv(t, entered)
	release <- struct{}{}
	release <- struct{}{}
}
