package obs

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	otelce "github.com/cloudevents/sdk-go/observability/opentelemetry/v2/client"
	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/ocrflow/ocrflow/shared/events"
)

// ServiceName is the service.name of ocrflow's spans unless
// OTEL_SERVICE_NAME says otherwise.
const ServiceName = "ocrflow"

// envTracesEndpoint is the OTLP variable for a traces-only endpoint (a
// full URL, used as it is); when it is set the exporter reads it itself.
const envTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"

// Tracing is a process's tracer provider and how to flush it.
type Tracing struct {
	provider *sdktrace.TracerProvider
	// Exporting reports whether spans leave the process (an OTLP endpoint
	// is configured).
	Exporting bool
}

// NewTracing returns the tracer provider of one process. With an OTLP
// endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, the collector's base URL such as
// http://otel-collector:4318) spans are batched to its /v1/traces over
// OTLP/HTTP; the exporter reads the other OTEL_EXPORTER_OTLP_* variables
// (headers, timeout, compression) from the environment, and
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the resource.
//
// Without an endpoint nothing is recorded or exported, but spans still
// get ids, so every log line of a job carries its trace id and the ids
// still travel in the events' traceparent.
//
// Either way a job whose event carries no traceparent gets a trace id
// derived from its job id (JobIDs), so every delivery of it lands in the
// same trace.
func NewTracing(ctx context.Context, endpoint string) (*Tracing, error) {
	if endpoint == "" {
		return &Tracing{provider: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithIDGenerator(JobIDs()))}, nil
	}
	var opts []otlptracehttp.Option
	if os.Getenv(envTracesEndpoint) == "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimRight(endpoint, "/")+"/v1/traces"))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", ServiceName)),
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithIDGenerator(JobIDs()))
	return &Tracing{provider: tp, Exporting: true}, nil
}

// Provider returns the tracer provider.
func (t *Tracing) Provider() trace.TracerProvider { return t.provider }

// Shutdown flushes the spans not exported yet and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("trace shutdown: %w", err)
	}
	return nil
}

// ShutdownTimeout bounds the final flush of Shutdown callers that have no
// deadline of their own.
const ShutdownTimeout = 5 * time.Second

// Extract returns ctx carrying the span context of e's traceparent (as a
// remote parent), or ctx itself when e has none.
func Extract(ctx context.Context, e event.Event) context.Context {
	if _, ok := e.Extensions()[events.ExtTraceparent]; !ok {
		return ctx
	}
	return otelce.ExtractDistributedTracingExtension(ctx, e)
}

// Inject sets e's traceparent (and tracestate) to the span context of
// ctx, so the stage that handles e continues the trace there. It changes
// nothing when ctx carries no span context.
func Inject(ctx context.Context, e *event.Event) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	otelce.InjectDistributedTracingExtension(ctx, *e)
}

// Sender is what publishes events (a transport's Send).
type Sender interface {
	Send(ctx context.Context, e event.Event) error
}

// TracingSender wraps s so that every event it publishes carries the
// span context of the Send call's ctx as its traceparent: a stage's
// fan-out (convert's page events) continues the trace under the span
// that produced it.
func TracingSender(s Sender) Sender { return tracingSender{next: s} }

type tracingSender struct{ next Sender }

// Send publishes e with the span context of ctx as its traceparent.
func (t tracingSender) Send(ctx context.Context, e event.Event) error {
	if trace.SpanContextFromContext(ctx).IsValid() {
		e = e.Clone()
		Inject(ctx, &e)
	}
	return t.next.Send(ctx, e)
}

type seedKey struct{}

// withJobSeed makes the next root span started from ctx take a trace id
// derived from job (JobIDs).
func withJobSeed(ctx context.Context, job string) context.Context {
	return context.WithValue(ctx, seedKey{}, job)
}

// JobIDs returns the span id generator ocrflow's tracer providers use:
// random ids, except that a root span started for a job whose event
// carried no traceparent gets a trace id derived from the job id. Every
// delivery of a job event published without trace context (a retry, a
// second convert slice) thus lands in the job's one trace, and the trace
// id of a job can be computed from its id (TraceIDOf).
func JobIDs() sdktrace.IDGenerator { return jobIDs{} }

type jobIDs struct{}

// NewIDs returns the ids of a root span: the trace id derived from the
// job ctx is seeded with, else random ones.
func (jobIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if job, ok := ctx.Value(seedKey{}).(string); ok && job != "" {
		return TraceIDOf(job), randomSpanID()
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
		binary.BigEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid, randomSpanID()
}

// NewSpanID returns a random span id.
func (jobIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return randomSpanID() }

func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.BigEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}

// TraceIDOf is the trace id of a job whose event carried no traceparent:
// the first 16 bytes of the SHA-256 of its id.
func TraceIDOf(job string) trace.TraceID {
	sum := sha256.Sum256([]byte("ocrflow job " + job))
	var tid trace.TraceID
	copy(tid[:], sum[:16])
	return tid
}
