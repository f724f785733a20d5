// Package knative is ocrflow's Knative transport: the stages run as
// Knative Services behind func-go's CloudEvents HTTP server. Events arrive
// as HTTP requests the broker's Triggers route to the Service, a stage's
// reply goes back in the response, and fan-out (convert's one
// ocr.page.rendered per page, which cannot be a single reply) is posted to
// the broker ingress named by K_SINK — never straight onto the NATS stream:
// the broker filter drops events that lack the TTL extension the ingress
// adds.
//
// The Transport routes by the same Trigger manifests (eventing/) the
// broker applies, so one Service can serve several stages (OCR_STAGES),
// and answers every outcome with the HTTP status failure.Status gives it.
package knative

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// EnvSink names the variable holding the sink URL (the broker ingress)
// that convert publishes its fan-out to. Knative sets it for sources and
// SinkBindings; the ocrflow manifests set it explicitly.
const EnvSink = "K_SINK"

// Config configures a Transport.
type Config struct {
	// Sink is the broker ingress URL fan-out is posted to (K_SINK). It is
	// required when the convert stage is served, the only stage that
	// publishes more than its reply.
	Sink string
	// Triggers route event types to stages (eventing.Routing).
	Triggers []eventing.Trigger
	// Log receives routing problems; nil discards.
	Log *slog.Logger
}

// ConfigFrom returns the transport configuration cfg describes: K_SINK and
// the routing of eventing/, with the optional autoocr Trigger when
// OCR_STAGES serves that stage.
func ConfigFrom(cfg config.Config, log *slog.Logger) (Config, error) {
	triggers, err := eventing.Routing(cfg.Serves(stage.AutoOCR), cfg.AutoOCRType)
	if err != nil {
		return Config{}, err
	}
	return Config{Sink: cfg.Sink, Triggers: triggers, Log: log}, nil
}

// Transport delivers HTTP-borne CloudEvents to the stages it serves. It is
// safe for concurrent use: func-go calls Handle from many goroutines.
type Transport struct {
	cfg    Config
	sink   *Sink // nil without Config.Sink
	log    *slog.Logger
	routes atomic.Pointer[routes]
	// metrics records deliveries and dead letters (nil records nothing).
	metrics atomic.Pointer[obs.Metrics]
}

// routes is what Serve set up.
type routes struct {
	byType     map[string]route
	deadLetter stage.Handler // nil unless the deadletter stage is served
	stages     []string
}

// route is the stage an event type goes to.
type route struct {
	stage   string
	handler stage.Handler
}

// New returns a transport for cfg. It does no I/O.
func New(cfg Config) (*Transport, error) {
	t := &Transport{cfg: cfg, log: cfg.Log}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Sink != "" {
		s, err := NewSink(cfg.Sink)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvSink, err)
		}
		t.sink = s
	}
	return t, nil
}

// Send posts e to the broker ingress (the stages' Sender).
func (t *Transport) Send(ctx context.Context, e event.Event) error {
	if t.sink == nil {
		return failure.Permanent("send %s %s: %s is empty, so this Service cannot publish events", e.Type(), e.ID(), EnvSink)
	}
	return t.sink.Send(ctx, e)
}

// Sink returns the broker ingress URL ("" when none is configured).
func (t *Transport) Sink() string {
	if t.sink == nil {
		return ""
	}
	return t.sink.Target()
}

// Serve routes the event types the Triggers send to each stage's Service
// to that stage; a served deadletter stage also gets every event carrying
// Knative's knativeerrorcode extension. Convert needs the sink. Handle
// answers 503 until Serve has been called.
func (t *Transport) Serve(_ context.Context, stages ...stage.Stage) error {
	r := &routes{byType: map[string]route{}}
	for _, s := range stages {
		if s.Name == stage.Convert && t.sink == nil {
			return fmt.Errorf("%s is empty: the convert stage fans pages out through the broker, so set %s to the broker ingress URL, or drop convert from OCR_STAGES",
				EnvSink, EnvSink)
		}
		r.stages = append(r.stages, s.Name)
		if s.Name == stage.DeadLetter {
			r.deadLetter = s.Handler
		}
		for _, tr := range t.cfg.Triggers {
			if eventing.StageOf(tr.Subscriber) == s.Name {
				r.byType[tr.Exact["type"]] = route{stage: s.Name, handler: s.Handler}
			}
		}
	}
	t.routes.Store(r)
	return nil
}

// Instrument makes the transport record on m the disposition of every
// event it answers (the one the answer's status asks the channel for) and
// every dead letter that reaches the deadletter stage it serves: in
// Knative the channel, not ocrflow, dead-letters an event, so a dead
// letter is counted where it arrives, by the stage that gave up on it
// (knativeerrordest) and its last status (knativeerrorcode).
func (t *Transport) Instrument(m *obs.Metrics) { t.metrics.Store(m) }

// Ready reports whether Serve has set up the routes (and Close has not
// removed them).
func (t *Transport) Ready() bool { return t.routes.Load() != nil }

// Stages returns the names of the stages served.
func (t *Transport) Stages() []string {
	if r := t.routes.Load(); r != nil {
		return slices.Clone(r.stages)
	}
	return nil
}

// Close stops routing (Handle answers 503 from now on) and drops the
// sink's idle connections.
func (t *Transport) Close() error {
	t.routes.Store(nil)
	if t.sink != nil {
		return t.sink.Close()
	}
	return nil
}

// Handle runs the stage e is routed to and returns its reply, or an error
// carrying the HTTP status (failure.Status) func-go answers with. Error
// bodies are cut to failure.MaxMessage bytes.
func (t *Transport) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	reply, err := t.handle(ctx, e)
	if err != nil {
		return nil, Result(err)
	}
	return reply, nil
}

func (t *Transport) handle(ctx context.Context, e event.Event) (*event.Event, error) {
	r := t.routes.Load()
	if r == nil {
		return nil, failure.Transient("ocrflow is not ready: the function has not started or is stopping")
	}
	m := t.metrics.Load()
	rt, err := t.route(r, e)
	if err != nil {
		t.log.WarnContext(obs.Extract(ctx, e), "event not served", "type", e.Type(), "id", e.ID(), "stages", r.stages)
		m.Delivery(unrouted, failure.Decide(err, stage.Attempt(ctx), stage.MaxAttempts(ctx)))
		return nil, err
	}
	if rt.stage == stage.DeadLetter {
		code, dest := deadLetterOf(e)
		m.DeadLetterCode(dest, code)
	}
	reply, err := rt.handler(ctx, e)
	defer func() { m.Delivery(rt.stage, failure.Decide(err, stage.Attempt(ctx), stage.MaxAttempts(ctx))) }()
	if err != nil {
		return nil, err // the stage's middleware has logged it
	}
	// func-go installs no defaulters: a reply without id, source or type
	// would go out as an empty 200 that the broker cannot route.
	if reply != nil {
		if verr := reply.Validate(); verr != nil {
			t.log.ErrorContext(obs.Extract(ctx, e), "invalid reply", "type", e.Type(), "id", e.ID(), "reply", reply.Type(), "error", verr)
			err = fmt.Errorf("%w: reply to %s %s is not a valid CloudEvent: %w", failure.ErrPermanent, e.Type(), e.ID(), verr)
			return nil, err
		}
	}
	return reply, nil
}

// unrouted is the stage label of an event no served stage takes.
const unrouted = "unrouted"

// deadLetterOf returns a dead letter's last status (knativeerrorcode, 0
// when absent) and the stage it was dead-lettered from (the Service of
// knativeerrordest: http://ocrflow-recognize.ns.svc…, or
// ocrflow://ocrflow-recognize from the standalone runtime).
func deadLetterOf(e event.Event) (code int, stageName string) {
	switch v := e.Extensions()[events.ExtErrorCode].(type) {
	case int32:
		code = int(v)
	case string:
		code, _ = strconv.Atoi(v)
	}
	dest, _ := e.Extensions()[events.ExtErrorDest].(string)
	if u, err := url.Parse(dest); err == nil && u.Host != "" {
		host, _, _ := strings.Cut(u.Hostname(), ".")
		stageName = eventing.StageOf(host)
	}
	return code, stageName
}

func (t *Transport) route(r *routes, e event.Event) (route, error) {
	if r.deadLetter != nil {
		if _, dead := e.Extensions()[events.ExtErrorCode]; dead {
			return route{stage: stage.DeadLetter, handler: r.deadLetter}, nil
		}
	}
	if rt, ok := r.byType[e.Type()]; ok {
		return rt, nil
	}
	want := "no stage"
	for _, tr := range t.cfg.Triggers {
		if tr.Exact["type"] == e.Type() {
			want = "stage " + eventing.StageOf(tr.Subscriber)
		}
	}
	return route{}, fmt.Errorf("%w: event %s of type %q is not served here: it needs %s; this instance serves %s (OCR_STAGES): check the Trigger filters",
		failure.ErrUnroutable, e.ID(), e.Type(), want, strings.Join(r.stages, ","))
}

// Result is the HTTP answer for a handler error: failure.Status(err) with
// err's message, cut to failure.MaxMessage bytes (the NATS channel
// dispatcher panics on longer bodies, knative-extensions/eventing-natss#434).
func Result(err error) protocol.Result {
	if err == nil {
		return nil
	}
	return cehttp.NewResult(failure.Status(err), "%s", failure.Text(err))
}
