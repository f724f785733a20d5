package standalone_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

func newRuntime(t *testing.T, url string) *standalone.Runtime {
	t.Helper()
	triggers, err := eventing.Triggers()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := standalone.New(t.Context(), standalone.Config{
		URL: url, Server: standalone.ServerConfig{StoreDir: filepath.Join(t.TempDir(), "js")},
		Triggers: triggers, BackoffScale: 0.001, FetchWait: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func jobEvent(t *testing.T, id, uow string) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetType(events.TypeJob)
	e.SetSource("/test")
	if err := e.SetData(event.ApplicationJSON, map[string]any{"job_id": id, "uow": uow}); err != nil {
		t.Fatal(err)
	}
	return e
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a delivery")
		return ""
	}
}

// TestRuntime_routing_equals_the_trigger_manifests checks that the durable
// consumers are exactly what eventing/*.yaml says.
func TestRuntime_routing_equals_the_trigger_manifests(t *testing.T) {
	triggers, err := eventing.Triggers()
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, "")
	var services []stage.Stage
	for _, tr := range triggers {
		services = append(services, stage.Stage{Name: eventing.StageOf(tr.Subscriber), Handler: func(context.Context, event.Event) (*event.Event, error) { return nil, nil }})
	}
	services = append(services, stage.Stage{Name: "deadletter", Handler: func(context.Context, event.Event) (*event.Event, error) { return nil, nil }})
	if err := rt.Serve(t.Context(), services...); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(rt.Conn())
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range triggers {
		c, err := js.Consumer(t.Context(), standalone.DefaultStream, tr.Name)
		if err != nil {
			t.Fatalf("trigger %s has no consumer: %v", tr.Name, err)
		}
		info := c.CachedInfo()
		if want := rt.Subject(tr.Exact["type"]); info.Config.FilterSubject != want {
			t.Errorf("%s filters %q, want %q", tr.Name, info.Config.FilterSubject, want)
		}
		if info.Config.MaxDeliver != tr.Delivery.Retry+2 {
			t.Errorf("%s MaxDeliver %d, want retry+2 = %d", tr.Name, info.Config.MaxDeliver, tr.Delivery.Retry+2)
		}
		if info.Config.AckWait <= tr.Delivery.Timeout {
			t.Errorf("%s AckWait %s does not exceed the delivery timeout %s", tr.Name, info.Config.AckWait, tr.Delivery.Timeout)
		}
		if info.Config.AckPolicy != jetstream.AckExplicitPolicy {
			t.Errorf("%s acks %v, want explicit", tr.Name, info.Config.AckPolicy)
		}
	}
	if _, err := js.Consumer(t.Context(), standalone.DefaultStream, "ocrflow-dead-letters"); err != nil {
		t.Errorf("no dead-letter consumer: %v", err)
	}
}

func TestRuntime_filters_on_every_trigger_attribute(t *testing.T) {
	rt := newRuntime(t, "")
	got := make(chan string, 4)
	if err := rt.Serve(t.Context(), stage.Stage{Name: "convert", Handler: func(_ context.Context, e event.Event) (*event.Event, error) {
		got <- e.ID()
		return nil, nil
	}}); err != nil {
		t.Fatal(err)
	}
	// A family producer's job without a uow extension is routed by data.uow.
	for _, e := range []event.Event{jobEvent(t, "thumb-job", "thumbnail"), jobEvent(t, "ocr-job", "ocr")} {
		if err := rt.Send(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if id := recv(t, got); id != "ocr-job" {
		t.Fatalf("convert received %s, want only ocr-job", id)
	}
	select {
	case id := <-got:
		t.Fatalf("convert also received %s", id)
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
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Send(t.Context(), pageEvent(t, "perm", 1)); err != nil {
		t.Fatal(err)
	}
	if id := recv(t, dead); id != events.PageRenderedID("perm", 1)+"-dead-ocrflow-recognize" {
		t.Fatalf("dead letter id %s", id)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler called %d times, want 1 (no retries for a permanent error)", n)
	}
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
			if err != nil {
				t.Fatal(err)
			}
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
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Send(t.Context(), pageEvent(t, "shut", 1)); err != nil {
				t.Fatal(err)
			}
			<-started
			closed := make(chan error, 1)
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			go func() { closed <- a.Close(ctx) }()
			if !tc.wantRedeliv {
				close(release)
			}
			if err := <-finished; (err != nil) != tc.wantRedeliv {
				t.Fatalf("handler ended with %v", err)
			}
			if err := <-closed; (err != nil) != tc.wantRedeliv {
				t.Fatalf("Close = %v", err)
			}

			b := newRuntime(t, srv.ClientURL())
			again := make(chan string, 1)
			if err := b.Serve(t.Context(), stage.Stage{Name: "recognize", Handler: func(_ context.Context, e event.Event) (*event.Event, error) {
				again <- e.ID()
				return nil, nil
			}}); err != nil {
				t.Fatal(err)
			}
			select {
			case id := <-again:
				if !tc.wantRedeliv {
					t.Fatalf("%s was redelivered although it had been acked", id)
				}
			case <-time.After(time.Second):
				if tc.wantRedeliv {
					t.Fatal("cancelled work was not redelivered to the other runtime")
				}
			}
		})
	}
}
