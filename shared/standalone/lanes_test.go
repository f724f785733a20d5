package standalone_test

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// lanePage is a page event of job on the given lane.
func lanePage(t *testing.T, job string, page int, priority string) event.Event {
	t.Helper()
	e := pageEvent(t, job, page)
	e.SetExtension(events.ExtPriority, priority)
	return e
}

// gatedRecognize is a one-worker recognize stage that reports each event
// it starts and holds it until released.
func gatedRecognize(started chan<- string, release <-chan struct{}) stage.Stage {
	return stage.Stage{Name: stage.Recognize, Workers: 1, Handler: func(_ context.Context, e event.Event) (*event.Event, error) {
		started <- e.ID()
		<-release
		return nil, nil
	}}
}

func TestSubjectOf_puts_each_priority_on_its_lane(t *testing.T) {
	for _, tc := range []struct {
		name, typ, priority, want string
	}{
		{"normal_page_on_the_type_subject", events.TypePageRendered, events.PriorityNormal, "ocr.page.rendered"},
		{"no_priority_is_normal", events.TypePageRendered, "", "ocr.page.rendered"},
		{"high_page", events.TypePageRendered, events.PriorityHigh, "ocr.page.rendered.high"},
		{"low_job", events.TypeJob, events.PriorityLow, "ocr.jobs.low"},
		{"lifecycle_has_no_lanes", events.TypeJobCompleted, events.PriorityLow, "ocr.job.completed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := event.New()
			e.SetType(tc.typ)
			if tc.priority != "" {
				e.SetExtension(events.ExtPriority, tc.priority)
			}
			assert.Equal(t, tc.want, standalone.SubjectOf(standalone.DefaultJobSubject, e))
		})
	}
}

// Live work goes first: with a bulk backlog waiting, pages of a live job
// that arrive later are started before the backlog's, save the share the
// round robin gives bulk work.
func TestRuntime_live_lane_goes_before_a_bulk_backlog(t *testing.T) {
	rt := newRuntime(t, "")
	started := make(chan string, 64)
	release := make(chan struct{})
	require.NoError(t, rt.Serve(t.Context(), gatedRecognize(started, release)))
	for i := 1; i <= 20; i++ {
		require.NoError(t, rt.Send(t.Context(), lanePage(t, "bulk", i, events.PriorityLow)))
	}
	first := recv(t, started) // the worker is busy with bulk page 1
	assert.Equal(t, events.PageRenderedID("bulk", 1), first)
	for i := 1; i <= 3; i++ {
		require.NoError(t, rt.Send(t.Context(), lanePage(t, "live", i, events.PriorityHigh)))
	}
	var order []string
	for range 6 {
		release <- struct{}{}
		order = append(order, recv(t, started))
	}
	close(release)
	live := 0
	for _, id := range order[:4] {
		if id == events.PageRenderedID("live", 1) || id == events.PageRenderedID("live", 2) || id == events.PageRenderedID("live", 3) {
			live++
		}
	}
	assert.Equal(t, 3, live, "the live pages come within the next four starts: %v", order)
}

// Bulk work is never starved: while live work keeps coming, bulk pages
// still get about a tenth of the starts.
func TestRuntime_bulk_lane_is_not_starved(t *testing.T) {
	rt := newRuntime(t, "")
	for i := 1; i <= 60; i++ {
		require.NoError(t, rt.Send(t.Context(), lanePage(t, "live", i, events.PriorityHigh)))
	}
	for i := 1; i <= 10; i++ {
		require.NoError(t, rt.Send(t.Context(), lanePage(t, "bulk", i, events.PriorityLow)))
	}
	started := make(chan string, 64)
	release := make(chan struct{})
	require.NoError(t, rt.Serve(t.Context(), gatedRecognize(started, release)))
	bulk := 0
	for n := 0; n < 40; n++ {
		id := recv(t, started)
		if id[:4] == "bulk" {
			bulk++
		}
		release <- struct{}{}
	}
	close(release)
	assert.GreaterOrEqual(t, bulk, 2, "bulk pages among the first 40 starts")
	assert.LessOrEqual(t, bulk, 8, "bulk pages among the first 40 starts (live work first)")
	t.Logf("%d of the first 40 starts were bulk pages", bulk)
}
