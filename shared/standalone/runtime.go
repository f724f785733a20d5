// Package standalone runs the stage handlers on NATS JetStream without
// Kubernetes, with the routing and delivery semantics of the Knative
// Triggers in eventing/:
//
//   - one stream holds every event; each Trigger is a durable pull consumer
//     shared by every process that serves its stage (that is how it scales
//     out);
//   - a message is acked only after its handler succeeded and its reply was
//     published; a transient failure is Nak'ed with the Trigger's backoff;
//   - when retries are exhausted the event, with Knative's knativeerror*
//     extensions, goes to the subject ocr.dlq and from there to the Trigger's
//     dead-letter sink stage;
//   - events are published on subjects named after their type, so
//     lifecycle events are also plain NATS subjects ocr.job.*.
package standalone

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// Subject names.
const (
	// DefaultJobSubject is where jobs are published. It is not
	// simple-process.jobs on purpose: the thumbnailer treats every job on
	// that subject as its own.
	DefaultJobSubject = "ocr.jobs"
	// DeadLetterSubject receives events whose retries ran out.
	DeadLetterSubject = "ocr.dlq"
	// LifecycleSubjects matches every lifecycle event.
	LifecycleSubjects = "ocr.job.>"
	// DefaultStream is the JetStream stream name.
	DefaultStream = "OCRFLOW"

	headerDeadLetterSink = "Ocrflow-Dead-Letter-Sink"
)

// deadLetterDelivery is how the dead-letter sink itself is retried (Knative
// has no delivery spec for a sink; its failures are only logged there).
var deadLetterDelivery = eventing.Delivery{Retry: 5, BackoffPolicy: "exponential", BackoffDelay: time.Second, Timeout: 30 * time.Second}

// Config configures a Runtime.
type Config struct {
	// URL of the NATS cluster; empty starts an embedded server.
	URL string
	// Server configures the embedded server (when URL is empty).
	Server ServerConfig
	// Stream names the JetStream stream (default OCRFLOW).
	Stream string
	// JobSubject is where simpleprocess.job events live (default ocr.jobs).
	JobSubject string
	// Triggers route events to stages (usually eventing.Triggers()).
	Triggers []eventing.Trigger
	// BackoffScale multiplies every backoff (default 1). Tests shrink it to
	// run full retry ladders in milliseconds.
	BackoffScale float64
	// FetchWait bounds one pull; it is the worst-case shutdown latency of a
	// consumer loop (default 500ms).
	FetchWait time.Duration
	Log       *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.JobSubject == "" {
		c.JobSubject = DefaultJobSubject
	}
	if c.BackoffScale <= 0 {
		c.BackoffScale = 1
	}
	if c.FetchWait <= 0 {
		c.FetchWait = 500 * time.Millisecond
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Runtime connects stages to JetStream.
type Runtime struct {
	cfg    Config
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger
	// metrics records deliveries, dead letters and the consumers' backlog
	// (nil records nothing).
	metrics *obs.Metrics

	stop     chan struct{}
	loops    sync.WaitGroup
	inflight sync.WaitGroup
	work     context.Context
	abort    context.CancelFunc
	once     sync.Once
}

// New connects to NATS (starting the embedded server when cfg.URL is
// empty) and makes sure the stream exists. Events can be sent at once;
// call Serve to start consuming.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	cfg.setDefaults()
	r := &Runtime{cfg: cfg, log: cfg.Log, stop: make(chan struct{})}
	r.work, r.abort = context.WithCancel(context.WithoutCancel(ctx))
	var err error
	if cfg.URL == "" {
		if r.srv, err = StartServer(cfg.Server); err != nil {
			return nil, err
		}
		r.nc, err = nats.Connect("", nats.InProcessServer(r.srv), nats.Name("ocrflow"))
	} else {
		r.nc, err = nats.Connect(cfg.URL, nats.Name("ocrflow"), nats.MaxReconnects(-1), nats.ReconnectWait(2*time.Second), nats.Timeout(5*time.Second))
	}
	if err != nil {
		r.shutdownServer()
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	if r.js, err = jetstream.New(r.nc); err != nil {
		r.closeConn()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	subjects := []string{"ocr.>"}
	if !strings.HasPrefix(cfg.JobSubject, "ocr.") {
		subjects = append(subjects, cfg.JobSubject, cfg.JobSubject+".>") // and its lanes
	}
	r.stream, err = r.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: cfg.Stream, Subjects: subjects, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
		MaxAge: 72 * time.Hour, MaxMsgSize: 1 << 20, Duplicates: 2 * time.Minute, Discard: jetstream.DiscardOld,
	})
	if err != nil {
		r.closeConn()
		return nil, fmt.Errorf("stream %s: %w", cfg.Stream, err)
	}
	return r, nil
}

// Instrument makes the runtime record on m every delivery's disposition
// and every dead letter, and export the backlog of the consumers Serve
// creates (read from JetStream on each scrape). Call it before Serve.
func (r *Runtime) Instrument(m *obs.Metrics) { r.metrics = m }

// Conn returns the NATS connection.
func (r *Runtime) Conn() *nats.Conn { return r.nc }

// ClientURL returns the embedded server's client URL ("" for an external
// cluster or an in-process-only server).
func (r *Runtime) ClientURL() string {
	if r.srv == nil || r.srv.Addr() == nil {
		return ""
	}
	return r.srv.ClientURL()
}

// Subject returns the subject an event of type t is published on.
func (r *Runtime) Subject(t string) string { return SubjectFor(r.cfg.JobSubject, t) }

// SubjectFor maps an event type to its subject: jobs to jobSubject, ocr.*
// types to themselves, anything else under ocr.events.
func SubjectFor(jobSubject, t string) string {
	switch {
	case t == events.TypeJob:
		return jobSubject
	case strings.HasPrefix(t, "ocr."):
		return t
	default:
		return "ocr.events." + t
	}
}

// Send publishes e on its lane's subject (SubjectOf) and waits for the
// stream's acknowledgement. It is the Sender port of the stages.
func (r *Runtime) Send(ctx context.Context, e event.Event) error {
	return r.publish(ctx, SubjectOf(r.cfg.JobSubject, e), e, nil)
}

func (r *Runtime) publish(ctx context.Context, subject string, e event.Event, hdr map[string]string) error {
	m, err := Encode(ctx, subject, e)
	if err != nil {
		return err
	}
	for k, v := range hdr {
		m.Header.Set(k, v)
	}
	if _, err := r.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}

// subscription is one stage's consumption of one event type (or of the
// dead letters): its handler, its workers, and its priority lanes.
type subscription struct {
	name    string // for logs: the stage's Trigger, or ocrflow-dead-letters
	stage   string // the stage served ("" for the dead-letter consumer)
	handler stage.Handler
	sinks   map[string]stage.Handler // dead-letter consumer: sink name → handler
	workers int
	// demand is the stage's Demand (nil: workers decide alone).
	demand func() int
	// lanes are the subscription's consumers, the most urgent first.
	lanes []*lane
	// wrr picks which lane a fetch tries first (lanes.go).
	wrr []int
	// bell rings when a message may have arrived on one of the lanes.
	bell chan struct{}
}

// Serve starts consuming for the given stages: every Trigger whose
// subscriber is one of the stages' Services (eventing.StageOf) gets
// durable consumers — one per priority lane it routes (all three, or the
// one its ocrpriority filter names) — and a stage that is some Trigger's
// dead-letter sink also consumes ocr.dlq. It returns once the consumers
// exist; work continues until Close.
func (r *Runtime) Serve(ctx context.Context, stages ...stage.Stage) error {
	byStage := map[string]stage.Stage{}
	for _, s := range stages {
		if s.Workers < 1 {
			s.Workers = 1
		}
		byStage[s.Name] = s
	}
	subs, err := r.subscriptions(byStage)
	if err != nil {
		return err
	}
	for _, sub := range subs {
		for _, ln := range sub.lanes {
			cons, err := r.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
				Durable:       ln.name,
				Description:   "ocrflow trigger " + ln.name,
				FilterSubject: ln.subject,
				DeliverPolicy: jetstream.DeliverAllPolicy,
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       ln.delivery.Timeout + 5*time.Second,
				// One more than the retries, so a message whose last attempt
				// crashed its process still reaches us to be dead-lettered.
				MaxDeliver: ln.delivery.Retry + 2,
			})
			if err != nil {
				return fmt.Errorf("consumer %s: %w", ln.name, err)
			}
			ln.cons = cons
			bell := sub.bell
			if _, err := r.nc.Subscribe(ln.subject, func(*nats.Msg) { ring(bell) }); err != nil {
				return fmt.Errorf("consumer %s: doorbell: %w", ln.name, err)
			}
		}
	}
	r.metrics.Queue(func(ctx context.Context) ([]obs.QueueStat, error) { return backlog(ctx, subs) })
	for _, sub := range subs {
		r.loops.Go(func() { r.consume(sub) })
		r.log.Info("consuming", "trigger", sub.name, "lanes", len(sub.lanes), "workers", sub.workers)
	}
	return nil
}

// backlog reads the pending and ack-pending counts of subs' consumers.
func backlog(ctx context.Context, subs []*subscription) ([]obs.QueueStat, error) {
	var out []obs.QueueStat
	for _, sub := range subs {
		for _, ln := range sub.lanes {
			info, err := ln.cons.Info(ctx)
			if err != nil {
				return nil, fmt.Errorf("consumer %s info: %w", ln.name, err)
			}
			out = append(out, obs.QueueStat{Consumer: ln.name, Pending: info.NumPending, AckPending: uint64(max(info.NumAckPending, 0))})
		}
	}
	return out, nil
}

// consume runs one subscription: whenever a worker is free — and the
// stage's Demand, when it has one, wants another event (stage.Gate) — it
// fetches from the lanes, most urgent first but with a weighted share for
// the others (lanes.go), and when every lane is empty it waits for the
// doorbell.
func (r *Runtime) consume(sub *subscription) {
	gate := stage.NewGate(stage.Stage{Workers: sub.workers, Demand: sub.demand})
	for {
		if !gate.Acquire(r.stop) {
			return
		}
		n := 1
		for gate.TryAcquire() {
			n++
		}
		got, closed := 0, false
		for _, ln := range sub.order() {
			if got == n {
				break
			}
			batch, err := ln.cons.FetchNoWait(n - got)
			if err == nil {
				for msg := range batch.Messages() {
					got++
					r.inflight.Go(func() {
						defer gate.Release()
						r.handle(sub, ln, msg)
					})
				}
				err = batch.Error()
			}
			if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				if errors.Is(err, nats.ErrConnectionClosed) {
					closed = true
					break
				}
				r.log.Warn("fetch failed", "trigger", ln.name, "error", err)
			}
		}
		for range n - got {
			gate.Release()
		}
		if closed {
			return
		}
		if got == 0 {
			select {
			case <-r.stop:
				return
			case <-sub.bell:
			case <-time.After(r.cfg.FetchWait):
			}
		}
	}
}

func (r *Runtime) handle(sub *subscription, ln *lane, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		r.log.Error("message without metadata", "trigger", ln.name, "error", err)
		_ = msg.Term()
		return
	}
	attempt := int(md.NumDelivered)
	e, err := Decode(msg.Headers(), msg.Data())
	if err != nil {
		r.log.Error("undecodable message; terminating it", "trigger", ln.name, "subject", msg.Subject(), "seq", md.Sequence.Stream, "error", err)
		_ = msg.TermWithReason("not a CloudEvent")
		return
	}
	h, stageName := sub.handler, sub.stage
	if ln.trigger != nil && !ln.trigger.Accepts(e) {
		_ = msg.Ack()
		return
	}
	// Log lines about e carry its trace id (the span it was sent from).
	lctx := obs.Extract(r.work, e)
	if ln.trigger == nil {
		sink := msg.Headers().Get(headerDeadLetterSink)
		h, stageName = sub.sinks[sink], eventing.StageOf(sink)
		if h == nil {
			r.log.ErrorContext(lctx, "dead letter for an unknown sink", "sink", sink, "id", e.ID())
			_ = msg.TermWithReason("unknown dead-letter sink")
			return
		}
	}
	maxAttempts := ln.delivery.Retry + 1
	if attempt > maxAttempts {
		r.metrics.Delivery(stageName, failure.DeadLetter)
		r.giveUp(lctx, sub, ln, msg, e, failure.Transient("delivery attempts exhausted (the last attempt did not finish)"))
		return
	}

	ctx, cancel := context.WithTimeout(stage.WithMaxAttempts(stage.WithAttempt(r.work, attempt), maxAttempts), ln.delivery.Timeout)
	reply, herr := h(ctx, e)
	cancel()
	if herr == nil && reply != nil {
		if err := r.Send(r.work, *reply); err != nil {
			herr = fmt.Errorf("publish reply: %w", err)
		}
	}
	disposition := failure.Decide(herr, attempt, maxAttempts)
	r.metrics.Delivery(stageName, disposition)
	switch disposition {
	case failure.Ack:
		if err := msg.DoubleAck(r.work); err != nil {
			r.log.WarnContext(lctx, "ack failed; the event will be redelivered", "trigger", ln.name, "id", e.ID(), "error", err)
		}
	case failure.Retry:
		delay := time.Duration(float64(ln.delivery.Backoff(attempt)) * r.cfg.BackoffScale)
		r.log.InfoContext(lctx, "retrying", "trigger", ln.name, "id", e.ID(), "attempt", attempt, "of", maxAttempts, "in", delay, "error", herr)
		_ = msg.NakWithDelay(delay)
	case failure.Discard:
		r.log.ErrorContext(lctx, "event not served here; discarding it", "trigger", ln.name, "id", e.ID(), "error", herr)
		_ = msg.TermWithReason("unroutable")
	default:
		r.giveUp(lctx, sub, ln, msg, e, herr)
	}
}

// giveUp dead-letters e (or, for the dead-letter consumer itself, logs and
// terminates it; the event stays in the stream on ocr.dlq for replay).
func (r *Runtime) giveUp(ctx context.Context, sub *subscription, ln *lane, msg jetstream.Msg, e event.Event, cause error) {
	if ln.trigger == nil {
		r.log.ErrorContext(ctx, "dead-letter sink failed for good; event kept on "+DeadLetterSubject, "id", e.ID(), "error", cause)
		_ = msg.TermWithReason("dead-letter sink failed")
		return
	}
	dead := e.Clone()
	code := failure.Status(cause)
	dead.SetExtension(events.ExtErrorCode, int32(code))
	dead.SetExtension(events.ExtErrorDest, "ocrflow://"+ln.trigger.Subscriber)
	dead.SetExtension(events.ExtErrorData, base64.StdEncoding.EncodeToString([]byte(failure.Text(cause))))
	// A distinct Nats-Msg-Id: the stream would drop a copy under e's own id.
	dead.SetID(e.ID() + "-dead-" + ln.trigger.Name)
	// Counted when decided, before the sink can see it (a failed publish
	// decides again on the next delivery, and is counted again).
	r.metrics.DeadLetter(sub.stage, cause)
	err := r.publish(r.work, DeadLetterSubject, dead, map[string]string{headerDeadLetterSink: ln.trigger.Delivery.DeadLetterSink})
	if err != nil {
		r.log.ErrorContext(ctx, "dead-letter publish failed; retrying later", "id", e.ID(), "error", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	r.log.WarnContext(ctx, "dead-lettered", "trigger", ln.name, "id", e.ID(), "code", code, "error", cause)
	_ = msg.Term()
}

// Close stops pulling, waits for in-flight handlers until ctx is done
// (then cancels them; their unacked events are redelivered elsewhere), and
// disconnects.
func (r *Runtime) Close(ctx context.Context) error {
	var err error
	r.once.Do(func() {
		close(r.stop)
		done := make(chan struct{})
		go func() {
			r.loops.Wait()
			r.inflight.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			r.abort()
			<-done
			err = fmt.Errorf("shutdown: in-flight work cancelled: %w", ctx.Err())
		}
		r.abort()
		r.closeConn()
	})
	return err
}

func (r *Runtime) closeConn() {
	if r.nc != nil {
		r.nc.Close()
	}
	r.shutdownServer()
}

func (r *Runtime) shutdownServer() {
	if r.srv != nil {
		r.srv.Shutdown()
		r.srv.WaitForShutdown()
	}
}

// Follow delivers the events published on subjects (e.g.
// LifecycleSubjects) from now on, in stream order and deduplicated, until
// ctx is done; then the channel is closed.
func (r *Runtime) Follow(ctx context.Context, subjects ...string) (<-chan event.Event, error) {
	cons, err := r.js.OrderedConsumer(ctx, r.cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("follow %v: %w", subjects, err)
	}
	out := make(chan event.Event, 64)
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("follow %v: %w", subjects, err)
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	go func() {
		defer close(out)
		for {
			msg, err := it.Next()
			if err != nil {
				return
			}
			e, err := Decode(msg.Headers(), msg.Data())
			if err != nil {
				continue
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
