package knative_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/knative"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/obs/obstest"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// TestTransport_metrics_count_deliveries_and_arriving_dead_letters: the
// transport records the disposition each answer asks the channel for, and
// counts a dead letter where it arrives, by the stage that gave up on it.
func TestTransport_metrics_count_deliveries_and_arriving_dead_letters(t *testing.T) {
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	dead := func(code int32, dest string) event.Event {
		e := newEvent(events.TypePageRendered)
		e.SetExtension(events.ExtErrorCode, code)
		e.SetExtension(events.ExtErrorDest, dest)
		e.SetExtension(events.ExtErrorData, base64.StdEncoding.EncodeToString([]byte("engine unavailable")))
		return e
	}
	for _, tc := range []struct {
		name string
		in   event.Event
		// recognizeErr is what the recognize stage answers.
		recognizeErr error
		deliveries   map[[2]string]float64 // (stage, disposition) → count
		deadLetters  map[[2]string]float64 // (stage, reason) → count
	}{
		{name: "handled_event_is_acked", in: newEvent(events.TypePageRendered),
			deliveries: map[[2]string]float64{{stage.Recognize, "ack"}: 1}},
		{name: "transient_error_asks_for_a_retry", in: newEvent(events.TypePageRendered), recognizeErr: failure.Transient("busy"),
			deliveries: map[[2]string]float64{{stage.Recognize, "retry"}: 1, {stage.Recognize, "ack"}: 0}},
		{name: "permanent_error_asks_for_a_dead_letter", in: newEvent(events.TypePageRendered), recognizeErr: failure.Permanent("malformed"),
			deliveries: map[[2]string]float64{{stage.Recognize, "dead-letter"}: 1}},
		{name: "dead_letter_after_retries_counts_for_the_stage_that_gave_up", in: dead(503, "http://ocrflow-recognize.ocrflow.svc.cluster.local"),
			deliveries:  map[[2]string]float64{{stage.DeadLetter, "ack"}: 1, {stage.Recognize, "ack"}: 0},
			deadLetters: map[[2]string]float64{{stage.Recognize, obs.ReasonTransient}: 1}},
		{name: "dead_letter_refused_at_once_is_permanent", in: dead(500, "ocrflow://ocrflow-finalize"),
			deadLetters: map[[2]string]float64{{stage.Finalize, obs.ReasonPermanent}: 1, {stage.Finalize, obs.ReasonTransient}: 0}},
		{name: "unroutable_event_is_discarded", in: newEvent("com.example.unrelated"),
			deliveries: map[[2]string]float64{{"unrouted", "discard"}: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := knative.New(knative.Config{Triggers: triggers})
			require.NoError(t, err)
			m := obs.NewMetrics()
			tr.Instrument(m)
			ok := func(context.Context, event.Event) (*event.Event, error) { return nil, nil }
			require.NoError(t, tr.Serve(t.Context(),
				stage.Stage{Name: stage.Recognize, Handler: func(context.Context, event.Event) (*event.Event, error) { return nil, tc.recognizeErr }},
				stage.Stage{Name: stage.Finalize, Handler: ok},
				stage.Stage{Name: stage.DeadLetter, Handler: ok},
			))
			_, _ = tr.Handle(t.Context(), tc.in)
			got := obstest.ScrapeHandler(t, m.Handler())
			for k, want := range tc.deliveries {
				assert.InDelta(t, want, got.Value(obs.MetricDeliveries, map[string]string{"stage": k[0], "disposition": k[1]}), 0, "deliveries %v", k)
			}
			for k, want := range tc.deadLetters {
				assert.InDelta(t, want, got.Value(obs.MetricDeadLetters, map[string]string{"stage": k[0], "reason": k[1]}), 0, "dead letters %v", k)
			}
			if tc.deadLetters == nil {
				assert.InDelta(t, 0, got.Value(obs.MetricDeadLetters, nil), 0, "dead letters")
			}
		})
	}
}
