package standalone_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/obs/obstest"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// retries returns how often the Trigger serving stage retries an event.
func retries(t *testing.T, stageName string) int {
	t.Helper()
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	for _, tr := range triggers {
		if tr.Subscriber == eventing.ServiceName(stageName) {
			return tr.Delivery.Retry
		}
	}
	require.FailNow(t, "no trigger serves "+stageName)
	return 0
}

// TestRuntime_metrics_count_deliveries_and_dead_letters: every delivery's
// disposition and every dead letter move their counters.
func TestRuntime_metrics_count_deliveries_and_dead_letters(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		// retried is how often the event is retried before it is
		// dead-lettered; reason the dead letter's reason label.
		retried int
		reason  string
	}{
		{"transient_error_is_retried_then_dead_lettered", failure.Transient("engine unavailable"), retries(t, stage.Recognize), obs.ReasonTransient},
		{"permanent_error_is_dead_lettered_at_once", failure.Permanent("page event is malformed"), 0, obs.ReasonPermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRuntime(t, "")
			m := obs.NewMetrics()
			rt.Instrument(m)
			var calls atomic.Int32
			dead := make(chan string, 1)
			require.NoError(t, rt.Serve(t.Context(),
				stage.Stage{Name: stage.Recognize, Handler: func(context.Context, event.Event) (*event.Event, error) {
					calls.Add(1)
					return nil, tc.err
				}},
				stage.Stage{Name: stage.DeadLetter, Handler: func(_ context.Context, e event.Event) (*event.Event, error) {
					dead <- e.ID()
					return nil, nil
				}},
			))
			require.NoError(t, rt.Send(t.Context(), pageEvent(t, "metrics", 1)))
			assert.Equal(t, events.PageRenderedID("metrics", 1)+"-dead-ocrflow-recognize", recv(t, dead), "dead letter id")

			got := obstest.ScrapeHandler(t, m.Handler())
			recognize := func(disposition string) float64 {
				return got.Value(obs.MetricDeliveries, map[string]string{"stage": stage.Recognize, "disposition": disposition})
			}
			assert.Equal(t, int32(tc.retried+1), calls.Load(), "handler calls")
			assert.InDelta(t, float64(tc.retried), recognize(failure.Retry.String()), 0, "deliveries retried")
			assert.InDelta(t, 1, recognize(failure.DeadLetter.String()), 0, "deliveries dead-lettered")
			assert.InDelta(t, 0, recognize(failure.Ack.String()), 0, "deliveries acked")
			assert.InDelta(t, 1, got.Value(obs.MetricDeadLetters, map[string]string{"stage": stage.Recognize, "reason": tc.reason}), 0,
				"dead letters of recognize (%s)", tc.reason)
			assert.InDelta(t, 1, got.Value(obs.MetricDeadLetters, nil), 0, "dead letters in all")
		})
	}
}

// TestRuntime_exports_consumer_backlog: the pending and ack-pending counts
// of a consumer are read from JetStream on each scrape.
func TestRuntime_exports_consumer_backlog(t *testing.T) {
	rt := newRuntime(t, "")
	m := obs.NewMetrics()
	rt.Instrument(m)
	started, release := make(chan string, 3), make(chan struct{})
	require.NoError(t, rt.Serve(t.Context(), stage.Stage{Name: stage.Recognize, Workers: 1, Handler: func(ctx context.Context, e event.Event) (*event.Event, error) {
		started <- e.ID()
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	}}))
	for page := 1; page <= 3; page++ {
		require.NoError(t, rt.Send(t.Context(), pageEvent(t, "backlog", page)))
	}
	recv(t, started) // one in the handler, two waiting

	// JetStream updates a consumer's pending count asynchronously after a
	// publish is acknowledged, so the scrape is repeated until it settles.
	consumer := map[string]string{"consumer": "ocrflow-recognize"}
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		got := obstest.ScrapeHandler(t, m.Handler())
		assert.InDelta(c, 2, got.Value(obs.MetricPending, consumer), 0, "pending")
		assert.InDelta(c, 1, got.Value(obs.MetricAckPending, consumer), 0, "ack pending")
	}, 10*time.Second, 20*time.Millisecond)
	close(release)
	for range 2 {
		recv(t, started)
	}
}
