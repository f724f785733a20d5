package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// Event overhead (target 6 of issue 14): events through the standalone
// runtime — publish, the stream's acknowledgement, the consumer's fetch,
// the handler, the double ack — with a handler that does nothing, so the
// figure is the runtime's own cost per event.

// eventsTarget is the least number of events per second the runtime must
// carry.
const eventsTarget = 5000

// EventConfig describes one event-overhead run.
type EventConfig struct {
	// Events is how many events are published.
	Events int
	// Publishers is how many goroutines publish at once (each waits for
	// the stream's acknowledgement of its event, as the stages do).
	Publishers int
	// Workers is the consuming stage's worker count.
	Workers int
}

// EventResult is what an event-overhead run measured.
type EventResult struct {
	// PerSecond is Events divided by Elapsed.
	PerSecond float64
	// Elapsed runs from the first publish to the last event's ack
	// confirmed by the server.
	Elapsed time.Duration
	// Handled counts handler calls (Events when nothing was redelivered).
	Handled int64
}

// EventThroughput runs cfg on an embedded JetStream server with file
// storage in dir: cfg.Events ocr.page.rendered events are published to
// the runtime while the recognize stage, served by a no-op handler,
// consumes them.
func EventThroughput(ctx context.Context, dir string, cfg EventConfig) (EventResult, error) {
	conf, err := config.FromLookup(func(string) (string, bool) { return "", false })
	if err != nil {
		return EventResult{}, fmt.Errorf("events: %w", err)
	}
	rcfg, err := standalone.ConfigFrom(conf, nil)
	if err != nil {
		return EventResult{}, fmt.Errorf("events: %w", err)
	}
	rcfg.URL, rcfg.Server = "", standalone.ServerConfig{StoreDir: filepath.Join(dir, "nats-events")}
	rt, err := standalone.New(ctx, rcfg)
	if err != nil {
		return EventResult{}, fmt.Errorf("events: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = rt.Close(cctx)
	}()

	// The events are built before the clock starts.
	evs := make([]event.Event, cfg.Events)
	for i := range evs {
		p := i + 1
		e, err := events.New(nil, events.PageRenderedID("events", p), events.TypePageRendered, "/ocrflow/bench", p, "events", events.PageRendered{
			JobID: "events", Page: p, Pages: cfg.Events, Route: events.RouteOCR, ImageKey: "unused", Width: 1, Height: 1,
		})
		if err != nil {
			return EventResult{}, fmt.Errorf("events: %w", err)
		}
		evs[i] = e
	}

	var handled atomic.Int64
	done := make(chan struct{})
	noop := func(context.Context, event.Event) (*event.Event, error) {
		if handled.Add(1) == int64(cfg.Events) {
			close(done)
		}
		return nil, nil
	}
	if err := rt.Serve(ctx, stage.Stage{Name: stage.Recognize, Handler: noop, Workers: cfg.Workers}); err != nil {
		return EventResult{}, fmt.Errorf("events: %w", err)
	}

	start := time.Now()
	next := atomic.Int64{}
	var g errgroup.Group
	for range cfg.Publishers {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(evs) {
					return nil
				}
				if err := rt.Send(ctx, evs[i]); err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return EventResult{}, fmt.Errorf("events: publish: %w", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return EventResult{}, ctx.Err()
	case <-time.After(2 * time.Minute):
		return EventResult{}, fmt.Errorf("events: %d of %d events handled in two minutes", handled.Load(), cfg.Events)
	}
	// The last handler returned; its ack is confirmed when the consumer
	// has nothing pending.
	if err := drained(ctx, rt, rcfg.Stream); err != nil {
		return EventResult{}, fmt.Errorf("events: %w", err)
	}
	elapsed := time.Since(start)
	return EventResult{PerSecond: float64(cfg.Events) / elapsed.Seconds(), Elapsed: elapsed, Handled: handled.Load()}, nil
}

// drained waits until no consumer of the runtime's stream has an event
// pending or awaiting its ack.
func drained(ctx context.Context, rt *standalone.Runtime, stream string) error {
	js, err := jetstream.New(rt.Conn())
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if stream == "" {
		stream = standalone.DefaultStream
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		busy := false
		for info := range st.ListConsumers(ctx).Info() {
			busy = busy || info.NumPending > 0 || info.NumAckPending > 0
		}
		if !busy {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("acks not confirmed within a minute")
		}
		time.Sleep(time.Millisecond)
	}
}

func eventRows(ctx context.Context, env *Env) ([]Row, error) {
	cfg := EventConfig{Events: 20000, Publishers: 32, Workers: 64}
	runs := 3
	if env.Quick {
		cfg.Events, runs = 3000, 1
	}
	var rates []float64
	var last EventResult
	for i := range runs {
		res, err := EventThroughput(ctx, filepath.Join(env.Dir, fmt.Sprint("events-", i)), cfg)
		if err != nil {
			return nil, err
		}
		rates, last = append(rates, res.PerSecond), res
	}
	row := Row{Name: "events_per_second", Value: Median(rates), Unit: "events/s"}.Judge(ValueAtLeast(eventsTarget, "events/s"))
	row.Note = fmt.Sprintf("median of %d runs of %d events (publish → stream ack → fetch → no-op handler → double ack), %d publishers, %d workers, embedded JetStream, file storage; last run %d handler calls in %.2f s",
		runs, cfg.Events, cfg.Publishers, cfg.Workers, last.Handled, last.Elapsed.Seconds())
	return []Row{row}, nil
}
