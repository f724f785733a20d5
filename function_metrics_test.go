package ocrflow

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/obs/obstest"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// TestFunction_serves_metrics_on_METRICS_ADDR: the function serves its
// metrics on a port of its own; a dead letter that reaches its deadletter
// stage counts for the stage that gave up on it.
func TestFunction_serves_metrics_on_METRICS_ADDR(t *testing.T) {
	f := started(t, testEnv(t, "finalize,deadletter", ""))
	require.NotNil(t, f.metrics, "METRICS_ADDR is set: the metrics are served")
	dead := deadLetter(testEvent(t, events.PageRenderedID("j-metrics", 1), events.TypePageRendered, "j-metrics", 1, events.PageRendered{
		JobID: "j-metrics", Page: 1, Pages: 1, Route: events.RouteOCR, ImageKey: "jobs/j-metrics/pages/1.jpg",
	}), 503, "engine unavailable")
	reply, err := f.Handle(t.Context(), dead)
	require.NoError(t, err)
	require.NotNil(t, reply, "the dead page becomes a failed page")

	got := obstest.Scrape(t, "http://"+f.metrics.Addr()+obs.MetricsPath)
	assert.InDelta(t, 1, got.Value(obs.MetricDeadLetters, map[string]string{"stage": stage.Recognize, "reason": obs.ReasonTransient}), 0, "dead letters")
	assert.InDelta(t, 1, got.Value(obs.MetricDeliveries, map[string]string{"stage": stage.DeadLetter, "disposition": "ack"}), 0, "deliveries")
	assert.InDelta(t, 1, got.Value(obs.MetricStageDuration, map[string]string{"stage": stage.DeadLetter, "outcome": obs.OutcomeOK}), 0, "handlings")
}
