// Package inproc is ocrflow's third transport: the stages run in one
// process and events travel between them over in-memory queues. It routes
// by the same Trigger manifests (eventing.Routing) as the standalone
// JetStream runtime and the Knative broker, with the same delivery
// semantics — failure.Decide picks ack, retry (after the Trigger's backoff,
// times Config.BackoffScale), dead-letter (to the Trigger's dead-letter
// sink stage, with Knative's knativeerror* extensions) or discard — so a
// document takes exactly the path it takes in a deployment.
//
// Its limit is durability: nothing survives the process. Events queued or
// waiting for a retry when the transport closes are dropped. It serves
// synchronous OCR (`POST /v1/ocr`), where the caller waits for the answer
// and a lost job is simply a failed request.
package inproc

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// ErrClosed is returned by Send once the transport is closing.
var ErrClosed = errors.New("inproc: transport closed")

// deadLetterDelivery is how the dead-letter sink itself is retried, as in
// the standalone runtime (Knative has no delivery spec for a sink).
var deadLetterDelivery = eventing.Delivery{Retry: 5, BackoffPolicy: "exponential", BackoffDelay: time.Second, Timeout: 30 * time.Second}

// Config configures a Transport.
type Config struct {
	// Triggers route events to stages (eventing.Routing).
	Triggers []eventing.Trigger
	// BackoffScale multiplies every retry backoff (default 1). A caller
	// that waits for its answer can shorten the Triggers' ladders.
	BackoffScale float64
	// Observe, when set, sees every event sent through the transport
	// (replies included), before it is routed. It is called on the
	// sender's goroutine and must not block.
	Observe func(event.Event)
	// Drop, when set, reports whether an event is no longer worth
	// delivering (its job is over). It is asked when the event is sent and
	// again before each delivery attempt; a dropped event is forgotten.
	Drop func(event.Event) bool
	// Log receives delivery problems; nil discards them.
	Log *slog.Logger
}

// ConfigFrom returns the transport configuration cfg describes: the
// routing of eventing/, with the optional autoocr Trigger when OCR_STAGES
// serves that stage.
func ConfigFrom(cfg config.Config, log *slog.Logger) (Config, error) {
	triggers, err := eventing.Routing(cfg.Serves(stage.AutoOCR), cfg.AutoOCRType)
	if err != nil {
		return Config{}, err
	}
	return Config{Triggers: triggers, Log: log}, nil
}

// Transport delivers events between stages in one process. It implements
// app.Transport. It is safe for concurrent use.
type Transport struct {
	cfg Config
	log *slog.Logger
	// metrics records deliveries and dead letters (nil records nothing).
	metrics *obs.Metrics

	mu     sync.Mutex
	closed bool
	subs   []*subscription
	// sinks maps a dead-letter sink's Service name to the subscription
	// that delivers dead letters to it (served sinks only).
	sinks  map[string]*subscription
	timers map[*time.Timer]struct{}

	stop    chan struct{}
	workers sync.WaitGroup
	work    context.Context
	abort   context.CancelFunc
	once    sync.Once
}

// subscription is a Trigger (or, with trigger nil, a dead-letter sink)
// whose subscriber is served here.
type subscription struct {
	name     string
	stage    string // the stage served
	trigger  *eventing.Trigger
	delivery eventing.Delivery
	handler  stage.Handler
	queue    *queue
}

// delivery is one attempt to hand an event to a subscription.
type delivery struct {
	sub     *subscription
	event   event.Event
	attempt int
}

// New returns a transport for cfg. It starts nothing: Serve does.
func New(cfg Config) *Transport {
	if cfg.BackoffScale <= 0 {
		cfg.BackoffScale = 1
	}
	t := &Transport{cfg: cfg, log: cfg.Log, sinks: map[string]*subscription{}, timers: map[*time.Timer]struct{}{}, stop: make(chan struct{})}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.work, t.abort = context.WithCancel(context.Background())
	return t
}

// Instrument makes the transport record every delivery's disposition and
// every dead letter on m. Call it before Serve.
func (t *Transport) Instrument(m *obs.Metrics) { t.metrics = m }

// Serve starts delivering to the given stages: every Trigger whose
// subscriber is a stage's Service (eventing.ServiceName) feeds that
// stage's queue, and a stage that is some Trigger's dead-letter sink gets
// the events whose retries ran out. Each stage has Workers goroutines, of
// which as many take events as its Demand wants (when it has one).
// It returns at once; delivery goes on until Close.
func (t *Transport) Serve(_ context.Context, stages ...stage.Stage) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	queues := map[string]*queue{}
	byService := map[string]stage.Stage{}
	for _, s := range stages {
		if s.Handler == nil {
			return fmt.Errorf("inproc: stage %s has no handler", s.Name)
		}
		if s.Workers < 1 {
			s.Workers = 1
		}
		svc := eventing.ServiceName(s.Name)
		if _, dup := byService[svc]; dup {
			return fmt.Errorf("inproc: stage %s served twice", s.Name)
		}
		byService[svc] = s
		queues[svc] = newQueue()
	}
	for i := range t.cfg.Triggers {
		tr := &t.cfg.Triggers[i]
		if sink, ok := byService[tr.Delivery.DeadLetterSink]; ok && t.sinks[tr.Delivery.DeadLetterSink] == nil {
			t.sinks[tr.Delivery.DeadLetterSink] = &subscription{
				name: "dead-letters-" + sink.Name, stage: sink.Name, delivery: deadLetterDelivery, handler: sink.Handler, queue: queues[tr.Delivery.DeadLetterSink],
			}
		}
		// A stage's bulk lane (ocrflow-recognize-bulk) is the stage too.
		svc := eventing.ServiceName(eventing.StageOf(tr.Subscriber))
		s, ok := byService[svc]
		if !ok {
			continue
		}
		t.subs = append(t.subs, &subscription{name: tr.Name, stage: s.Name, trigger: tr, delivery: tr.Delivery, handler: s.Handler, queue: queues[svc]})
	}
	for svc, s := range byService {
		q, gate := queues[svc], stage.NewGate(s)
		for range s.Workers {
			t.workers.Go(func() { t.serve(q, gate) })
		}
		t.log.Info("serving in process", "stage", s.Name, "workers", s.Workers)
	}
	return nil
}

// Send routes e to every subscription whose Trigger it matches (none is
// fine: lifecycle events are for observers). It fails only once the
// transport is closing.
func (t *Transport) Send(_ context.Context, e event.Event) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return fmt.Errorf("send %s %s: %w", e.Type(), e.ID(), ErrClosed)
	}
	subs := t.subs
	t.mu.Unlock()
	if t.cfg.Observe != nil {
		t.cfg.Observe(e)
	}
	if t.dropped(e) {
		return nil
	}
	attr := eventing.Attributes(e)
	for _, s := range subs {
		if s.trigger.Matches(attr) {
			s.queue.push(delivery{sub: s, event: e.Clone(), attempt: 1})
		}
	}
	return nil
}

// serve is one worker of a stage: it handles the stage's deliveries in
// order until the transport closes, taking one only while the stage's
// Demand wants it (gate).
func (t *Transport) serve(q *queue, gate *stage.Gate) {
	for gate.Acquire(t.stop) {
		d, ok := q.pop(t.stop)
		if !ok {
			gate.Release()
			return
		}
		t.handle(d)
		gate.Release()
	}
}

// handle makes one delivery attempt and acts on failure.Decide's verdict.
func (t *Transport) handle(d delivery) {
	sub, e := d.sub, d.event
	if t.dropped(e) {
		return
	}
	maxAttempts := sub.delivery.Retry + 1
	ctx := stage.WithMaxAttempts(stage.WithAttempt(t.work, d.attempt), maxAttempts)
	cancel := context.CancelFunc(func() {})
	if sub.delivery.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, sub.delivery.Timeout)
	}
	reply, herr := sub.handler(ctx, e)
	cancel()
	if herr == nil && reply != nil {
		if err := t.Send(t.work, *reply); err != nil {
			herr = fmt.Errorf("publish reply: %w", err)
		}
	}
	disposition := failure.Decide(herr, d.attempt, maxAttempts)
	t.metrics.Delivery(sub.stage, disposition)
	switch disposition {
	case failure.Ack:
	case failure.Retry:
		delay := time.Duration(float64(sub.delivery.Backoff(d.attempt)) * t.cfg.BackoffScale)
		t.log.Info("retrying", "trigger", sub.name, "id", e.ID(), "attempt", d.attempt, "of", maxAttempts, "in", delay, "error", herr)
		d.attempt++
		t.later(delay, d)
	case failure.Discard:
		t.log.Error("event not served here; discarding it", "trigger", sub.name, "id", e.ID(), "error", herr)
	default:
		t.giveUp(d, herr)
	}
}

// dropped reports whether Config.Drop drops e.
func (t *Transport) dropped(e event.Event) bool { return t.cfg.Drop != nil && t.cfg.Drop(e) }

// later queues d again after delay, unless the transport closes first.
func (t *Transport) later(delay time.Duration, d delivery) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	var tm *time.Timer
	tm = time.AfterFunc(delay, func() {
		t.mu.Lock()
		_, pending := t.timers[tm]
		delete(t.timers, tm)
		closed := t.closed
		t.mu.Unlock()
		if pending && !closed {
			d.sub.queue.push(d)
		}
	})
	t.timers[tm] = struct{}{}
}

// giveUp hands an event whose retries ran out to its Trigger's dead-letter
// sink, carrying Knative's knativeerror* extensions as the broker would.
// A dead-letter delivery that fails for good is logged and dropped.
func (t *Transport) giveUp(d delivery, cause error) {
	sub, e := d.sub, d.event
	if sub.trigger == nil {
		t.log.Error("dead-letter sink failed for good; dropping the event", "id", e.ID(), "error", cause)
		return
	}
	t.mu.Lock()
	sink := t.sinks[sub.trigger.Delivery.DeadLetterSink]
	closed := t.closed
	t.mu.Unlock()
	if sink == nil || closed {
		t.log.Error("retries exhausted and no dead-letter sink is served here; dropping the event",
			"trigger", sub.name, "sink", sub.trigger.Delivery.DeadLetterSink, "id", e.ID(), "error", cause)
		return
	}
	dead := e.Clone()
	code := failure.Status(cause)
	dead.SetExtension(events.ExtErrorCode, int32(code))
	dead.SetExtension(events.ExtErrorDest, "ocrflow://"+sub.trigger.Subscriber)
	dead.SetExtension(events.ExtErrorData, base64.StdEncoding.EncodeToString([]byte(failure.Text(cause))))
	dead.SetID(e.ID() + "-dead-" + sub.trigger.Name)
	t.metrics.DeadLetter(sub.stage, cause)
	t.log.Warn("dead-lettered", "trigger", sub.name, "id", e.ID(), "code", code, "error", cause)
	sink.queue.push(delivery{sub: sink, event: dead, attempt: 1})
}

// Close stops delivering: Send fails from now on, retries waiting for
// their backoff are dropped, and Close waits for the handlers in flight
// until ctx is done (then cancels their context and waits for them to
// return). Events still queued are dropped: the transport keeps nothing.
func (t *Transport) Close(ctx context.Context) error {
	var err error
	t.once.Do(func() {
		t.mu.Lock()
		t.closed = true
		for tm := range t.timers {
			tm.Stop()
		}
		clear(t.timers)
		t.mu.Unlock()
		close(t.stop)
		done := make(chan struct{})
		go func() {
			t.workers.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			t.abort()
			<-done
			err = fmt.Errorf("inproc: shutdown: in-flight work cancelled: %w", ctx.Err())
		}
		t.abort()
	})
	return err
}

// queue is an unbounded FIFO of deliveries: a handler that sends (convert
// fans out every page of a document) never blocks on a stage that is busy.
type queue struct {
	mu    sync.Mutex
	items []delivery
	// ready holds a token while items may be waiting; a worker that takes
	// an item and leaves others passes the token on.
	ready chan struct{}
}

func newQueue() *queue { return &queue{ready: make(chan struct{}, 1)} }

func (q *queue) push(d delivery) {
	q.mu.Lock()
	q.items = append(q.items, d)
	q.mu.Unlock()
	q.signal()
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop returns the oldest delivery, waiting for one until stop is closed.
func (q *queue) pop(stop <-chan struct{}) (delivery, bool) {
	for {
		select {
		case <-stop:
			return delivery{}, false
		default:
		}
		q.mu.Lock()
		if len(q.items) > 0 {
			d := q.items[0]
			q.items[0] = delivery{}
			q.items = q.items[1:]
			more := len(q.items) > 0
			q.mu.Unlock()
			if more {
				q.signal()
			}
			return d, true
		}
		q.mu.Unlock()
		select {
		case <-stop:
			return delivery{}, false
		case <-q.ready:
		}
	}
}
