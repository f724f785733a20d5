// Package obs is ocrflow's observability: the Prometheus metrics one
// process exports (Metrics, on a registry of its own, never the global
// one), the OpenTelemetry traces that follow a job across stages through
// the CloudEvents traceparent extension (Tracing, Extract, Inject,
// Sender), the stage middleware that times every handling and counts jobs
// and pages from the terminal events the stages reply (Stage), and the
// slog handler that puts the trace id into every log line of a job
// (LogHandler). docs/observability.md lists every metric and log field.
//
// The recording methods of *Metrics are safe on a nil receiver, so a
// transport or a test that is given no Metrics records nothing.
package obs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// Metric names (docs/observability.md). Histograms are exported with the
// _bucket, _sum and _count series Prometheus derives from these names.
const (
	MetricJobs           = "ocrflow_jobs_total"
	MetricPages          = "ocrflow_pages_total"
	MetricStageDuration  = "ocrflow_stage_duration_seconds"
	MetricEventAge       = "ocrflow_event_age_seconds"
	MetricEngineDuration = "ocrflow_engine_request_duration_seconds"
	MetricEngineInflight = "ocrflow_engine_inflight"
	MetricEngineTokens   = "ocrflow_engine_tokens_total"
	MetricEngineSteps    = "ocrflow_engine_loop_steps_total"
	MetricDeliveries     = "ocrflow_deliveries_total"
	MetricDeadLetters    = "ocrflow_dead_letters_total"
	MetricContentBytes   = "ocrflow_content_bytes_total"
	MetricPending        = "ocrflow_consumer_pending"
	MetricAckPending     = "ocrflow_consumer_ack_pending"
)

// Label values shared by recorders and the documentation.
const (
	// OutcomeOK is the outcome label of a handling or engine call that
	// succeeded; a failed one is labelled with its failure class
	// (validation, permanent, transient).
	OutcomeOK = "ok"
	// OutcomeFallback is the outcome label of an engine call the fallback
	// engine (OCR_FALLBACK_ENGINE) answered because the configured one
	// could not.
	OutcomeFallback = "fallback"
	// DirectionDownload labels the bytes of fetched sources.
	DirectionDownload = "download"
	// DirectionUpload labels the bytes of stored results.
	DirectionUpload = "upload"
)

// Job outcomes (the outcome label of ocrflow_jobs_total).
const (
	JobCompleted = "completed"
	JobReused    = "reused"
	JobFailed    = "failed"
)

// Metrics holds every collector one ocrflow process exports, on a
// registry of its own (with the Go runtime and process collectors).
type Metrics struct {
	reg *prometheus.Registry

	jobs           *prometheus.CounterVec
	pages          *prometheus.CounterVec
	stageDuration  *prometheus.HistogramVec
	eventAge       *prometheus.HistogramVec
	engineDuration *prometheus.HistogramVec
	engineInflight *prometheus.GaugeVec
	engineTokens   *prometheus.CounterVec
	engineSteps    *prometheus.CounterVec
	deliveries     *prometheus.CounterVec
	deadLetters    *prometheus.CounterVec
	contentBytes   *prometheus.CounterVec

	queueOnce sync.Once
}

// durationBuckets span a text page (milliseconds) to a slow engine call
// or a long convert slice (a minute).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}

// ageBuckets span an event picked up at once to one that waited through
// the retry ladder (an hour).
var ageBuckets = []float64{0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// NewMetrics returns the collectors of one process on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		m.reg.MustRegister(h)
		return h
	}
	m.jobs = counter(MetricJobs, "Jobs ended, by outcome (completed, reused, failed) and error type (failed jobs).", "outcome", "error_type")
	m.pages = counter(MetricPages, "Pages of ended jobs, by route (gpu, text) and outcome (ok, failed).", "route", "outcome")
	m.stageDuration = histogram(MetricStageDuration, "Time one stage took to handle one event, by stage and outcome (ok or the error's class).",
		durationBuckets, "stage", "outcome")
	m.eventAge = histogram(MetricEventAge, "Age of an event (now minus its CloudEvents time) when a stage starts handling it: queue wait plus retry backoff.",
		ageBuckets, "stage")
	m.engineDuration = histogram(MetricEngineDuration, "Duration of one engine call for one page (all its requests), by engine and outcome.",
		durationBuckets, "engine", "outcome")
	m.engineInflight = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricEngineInflight, Help: "Engine calls in flight in this process."}, []string{"engine"})
	m.reg.MustRegister(m.engineInflight)
	m.engineTokens = counter(MetricEngineTokens, "Tokens the model server reported, by engine and kind (prompt, completion).", "engine", "kind")
	m.engineSteps = counter(MetricEngineSteps, "Extra requests the engine made for a page, by the answer that caused them (loop, empty, rotate).", "engine", "step")
	m.deliveries = counter(MetricDeliveries, "Event deliveries a transport finished, by stage and disposition (ack, retry, dead-letter, discard).", "stage", "disposition")
	m.deadLetters = counter(MetricDeadLetters, "Events dead-lettered, by the stage that gave up and reason (transient: retries exhausted; permanent: refused at once).", "stage", "reason")
	m.contentBytes = counter(MetricContentBytes, "Bytes moved through the content store, by direction (download: sources, upload: results).", "direction")
	return m
}

// Registry returns the registry the collectors are on (tests gather it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format (the
// /metrics endpoint).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Names lists every ocrflow metric family this package exports, as
// PromQL sees them (histograms with _bucket, _sum and _count), sorted.
func Names() []string {
	out := []string{MetricJobs, MetricPages, MetricEngineInflight, MetricEngineTokens, MetricEngineSteps,
		MetricDeliveries, MetricDeadLetters, MetricContentBytes, MetricPending, MetricAckPending}
	for _, h := range []string{MetricStageDuration, MetricEventAge, MetricEngineDuration} {
		out = append(out, h+"_bucket", h+"_sum", h+"_count")
	}
	slices.Sort(out)
	return out
}

// Outcome is the outcome label of a call that returned err: OutcomeOK,
// or err's failure class.
func Outcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	return string(failure.Classify(err))
}

// Job counts one ended job.
func (m *Metrics) Job(outcome, errorType string) {
	if m == nil {
		return
	}
	m.jobs.WithLabelValues(outcome, errorType).Inc()
}

// Pages counts n pages of an ended job.
func (m *Metrics) Pages(route, outcome string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.pages.WithLabelValues(route, outcome).Add(float64(n))
}

// StageHandled records one handling by stage.
func (m *Metrics) StageHandled(stage, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.stageDuration.WithLabelValues(stage, outcome).Observe(d.Seconds())
}

// EventAge records the age of an event a stage starts handling.
func (m *Metrics) EventAge(stage string, age time.Duration) {
	if m == nil || age < 0 {
		return
	}
	m.eventAge.WithLabelValues(stage).Observe(age.Seconds())
}

// EngineCall records the start of one engine call and returns the
// function that records its end.
func (m *Metrics) EngineCall(engine string) func(outcome string) {
	if m == nil {
		return func(string) {}
	}
	start := time.Now()
	g := m.engineInflight.WithLabelValues(engine)
	g.Inc()
	return func(outcome string) {
		g.Dec()
		m.engineDuration.WithLabelValues(engine, outcome).Observe(time.Since(start).Seconds())
	}
}

// EngineTokens counts n tokens of kind (prompt, completion).
func (m *Metrics) EngineTokens(engine, kind string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.engineTokens.WithLabelValues(engine, kind).Add(float64(n))
}

// EngineStep counts one extra engine request caused by step (loop, empty,
// rotate).
func (m *Metrics) EngineStep(engine, step string) {
	if m == nil {
		return
	}
	m.engineSteps.WithLabelValues(engine, step).Inc()
}

// Delivery counts one finished delivery by its disposition.
func (m *Metrics) Delivery(stage string, d failure.Disposition) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(stage, d.String()).Inc()
}

// Dead-letter reasons (the reason label of ocrflow_dead_letters_total).
const (
	// ReasonTransient: the event's retries ran out.
	ReasonTransient = "transient"
	// ReasonPermanent: the stage refused the event at once (a permanent
	// or validation error no reply event could carry).
	ReasonPermanent = "permanent"
)

// DeadLetter counts one dead-lettered event of stage for cause.
func (m *Metrics) DeadLetter(stage string, cause error) {
	if m == nil {
		return
	}
	reason := ReasonPermanent
	if failure.Retryable(cause) {
		reason = ReasonTransient
	}
	m.deadLetters.WithLabelValues(stage, reason).Inc()
}

// DeadLetterCode counts one dead-lettered event of stage whose last
// answer had HTTP status code (Knative's knativeerrorcode): failure.Status
// answers 500 for an event refused at once and a retryable status for
// one whose retries ran out.
func (m *Metrics) DeadLetterCode(stage string, code int) {
	if m == nil {
		return
	}
	reason := ReasonTransient
	if code == http.StatusInternalServerError {
		reason = ReasonPermanent
	}
	m.deadLetters.WithLabelValues(stage, reason).Inc()
}

// ContentBytes counts n bytes moved through the content store.
func (m *Metrics) ContentBytes(direction string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.contentBytes.WithLabelValues(direction).Add(float64(n))
}

// QueueStat is one consumer's backlog (JetStream consumer info).
type QueueStat struct {
	// Consumer is the durable consumer's name (the Trigger's).
	Consumer string
	// Pending is how many messages the consumer has not delivered yet.
	Pending uint64
	// AckPending is how many were delivered and not acknowledged yet.
	AckPending uint64
}

// Queue registers read as the source of ocrflow_consumer_pending and
// ocrflow_consumer_ack_pending: it is called on every scrape (with a
// deadline) and its stats are exported as they are. Only the first call
// registers; a read error drops the series from that scrape.
func (m *Metrics) Queue(read func(ctx context.Context) ([]QueueStat, error)) {
	if m == nil {
		return
	}
	m.queueOnce.Do(func() { m.reg.MustRegister(&queueCollector{read: read}) })
}

var (
	pendingDesc = prometheus.NewDesc(MetricPending,
		"Messages a JetStream consumer has not delivered yet (standalone runtime; every process serving the consumer reports the same value).",
		[]string{"consumer"}, nil)
	ackPendingDesc = prometheus.NewDesc(MetricAckPending,
		"Messages a JetStream consumer delivered that are not acknowledged yet (in handling or waiting for a retry).",
		[]string{"consumer"}, nil)
)

// queueTimeout bounds the consumer info requests of one scrape.
const queueTimeout = 3 * time.Second

// queueCollector exports consumer backlogs read at scrape time.
type queueCollector struct {
	read func(ctx context.Context) ([]QueueStat, error)
}

// Describe sends the descriptors of the backlog gauges.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- ackPendingDesc
}

// Collect reads the consumers' backlog and sends it as gauges.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), queueTimeout)
	defer cancel()
	stats, err := c.read(ctx)
	if err != nil {
		return // no backlog series this scrape: the broker did not answer
	}
	for _, s := range stats {
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(s.Pending), s.Consumer)
		ch <- prometheus.MustNewConstMetric(ackPendingDesc, prometheus.GaugeValue, float64(s.AckPending), s.Consumer)
	}
}

// MetricsPath is where the metrics are served.
const MetricsPath = "/metrics"

// MetricsServer serves a Metrics handler at MetricsPath on its own
// listener (METRICS_ADDR).
type MetricsServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// ServeMetrics listens on addr and serves m at MetricsPath until Close.
func ServeMetrics(addr string, m *Metrics) (*MetricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, m.Handler())
	s := &MetricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *MetricsServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server, waiting for scrapes in progress until ctx ends.
func (s *MetricsServer) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}
