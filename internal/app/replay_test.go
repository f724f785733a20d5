package app_test

// Acceptance tests of dead-letter replay (shared/dlq) on the whole
// pipeline: embedded NATS with the Trigger manifests' retries, the real
// simple-content handlers with faults injected at their HTTP boundary, and
// the fake vLLM counting the requests for each page.

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/dlq"
	"github.com/ocrflow/ocrflow/shared/engine/vllmtest"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
	"github.com/ocrflow/ocrflow/shared/status"
)

// current returns the parent's derived contents that are current results
// (state completed), and the state of every derived content by id.
func (h *scHarness) current(parent string) (current []string, states map[string]any) {
	h.t.Helper()
	list, metas := h.derived(parent)
	states = map[string]any{}
	for i, c := range list {
		states[c.ID] = metas[i].Custom[simplecontent.MetaState]
		if metas[i].Custom[simplecontent.MetaState] == simplecontent.StateCompleted {
			current = append(current, c.ID)
		}
	}
	return current, states
}

// replayAll replays every dead letter onto the harness's runtime.
func (h *scHarness) replayAll() dlq.Report {
	h.t.Helper()
	rep, err := dlq.Replay(h.t.Context(), h.blobs, h.rt, dlq.Request{All: true})
	require.NoError(h.t, err)
	require.True(h.t, rep.OK(), "replay report: %+v", rep)
	return rep
}

// TestReplay_job_dead_in_a_content_outage_completes_as_a_new_attempt: every
// source download fails (503) while the job converts, so its deliveries run
// out and it is dead-lettered and fails; after the outage, replaying the
// dead letters completes it as <job>.r1 with exactly one current derived
// content, and replaying again publishes nothing.
func TestReplay_job_dead_in_a_content_outage_completes_as_a_new_attempt(t *testing.T) {
	h := newSCHarness(t, scOpts{env: map[string]string{"SIMPLE_CONTENT_ATTEMPTS": "1"}})
	ctx := t.Context()
	parent := h.upload("report.pdf", tenantA, ownerA, true, true)
	var downloads atomic.Int32
	h.traffic.setFault("S3", func(_ http.Handler, w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet {
			return false
		}
		downloads.Add(1)
		http.Error(w, "content service outage", http.StatusServiceUnavailable)
		return true
	})
	const id = "sc-outage"
	h.submit(jobSpec{id: id, contentID: parent, tenant: tenantA, owner: ownerA, hints: offHints})
	f := h.failed(id)
	assert.Equal(t, string(failure.TypeTransient), f.ErrorType, "failed = %+v", f)
	assert.Contains(t, f.Message, "retries exhausted", "failed = %+v", f)
	assert.Positive(t, downloads.Load(), "the outage was never hit")

	list, err := dlq.List(ctx, h.blobs, time.Now())
	require.NoError(t, err)
	require.Len(t, list, 1, "dead letters: %+v", list)
	assert.Equal(t, id, list[0].Job, "dead letter %+v", list[0])
	assert.Equal(t, "convert", list[0].Stage, "dead letter %+v", list[0])
	assert.Equal(t, events.TypeJob, list[0].Type, "dead letter %+v", list[0])
	assert.Equal(t, http.StatusServiceUnavailable, list[0].Code, "dead letter %+v", list[0])
	assert.Empty(t, list[0].ReplayedAs, "dead letter %+v", list[0])
	current, _ := h.current(parent)
	assert.Empty(t, current, "a failed job left a result")

	h.traffic.reset() // the outage is over
	rep := h.replayAll()
	require.Len(t, rep.Attempts, 1, "attempts: %+v", rep.Attempts)
	assert.Equal(t, id+".r1", rep.Attempts[0].As)
	assert.Equal(t, "submitted", rep.Attempts[0].From, "convert kept the job before fetching it")
	evs := h.wait(id + ".r1")
	c := completed(t, evs[len(evs)-1])
	assert.Equal(t, 6, c.PageCount, "completed = %+v", c)
	assert.Empty(t, c.FailedPages, "completed = %+v", c)
	current, states := h.current(parent)
	assert.Equal(t, []string{c.DerivedContentID}, current, "current derived contents (states %v)", states)
	// Besides the result: the failure trace the dead job left.
	assert.Len(t, states, 2, "derived contents: %v", states)
	failedTraces := 0
	for _, st := range states {
		if st == "failed" {
			failedTraces++
		}
	}
	assert.Equal(t, 1, failedTraces, "the job that died in the dead-letter stage left its failure trace: %v", states)
	assertInOrderOnce(t, h.download(c.DerivedContentID), expectedPages(t, "report.pdf"))

	// The original keeps its outcome and links to the attempt.
	orig, err := status.Read(ctx, h.blobs, id, time.Now())
	require.NoError(t, err)
	assert.Equal(t, status.Failed, orig.State)
	assert.Equal(t, id+".r1", orig.ReplayedAs)
	attempt, err := status.Read(ctx, h.blobs, id+".r1", time.Now())
	require.NoError(t, err)
	assert.Equal(t, status.Completed, attempt.State)
	assert.Equal(t, id, attempt.ReplayOf)
	assert.Equal(t, c.DerivedContentID, attempt.DerivedContentID)
	list, err = dlq.List(ctx, h.blobs, time.Now())
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, id+".r1", list[0].ReplayedAs, "the dead letter is marked")

	again := &countingSender{}
	rep, err = dlq.Replay(ctx, h.blobs, again, dlq.Request{All: true})
	require.NoError(t, err)
	assert.Empty(t, rep.Attempts, "a second replay started attempts")
	assert.Zero(t, again.n.Load(), "a second replay published")
}

// countingSender counts what it is asked to publish and publishes nothing.
type countingSender struct{ n atomic.Int32 }

func (c *countingSender) Send(context.Context, event.Event) error {
	c.n.Add(1)
	return nil
}

// TestReplay_dead_page_is_recognized_again_and_its_result_supersedes: the
// engine answers 503 for one page through every delivery, so the page is
// dead-lettered and the job completes with it failed; after the fault is
// gone, the replay completes <job>.r1 with every page recognized, its
// result supersedes the first (one current derived content), and the
// engine saw requests for the replayed page only.
func TestReplay_dead_page_is_recognized_again_and_its_result_supersedes(t *testing.T) {
	const (
		tag, pages, deadPage = 11, 3, 2
		id                   = "sc-dead-page"
	)
	var broken atomic.Bool
	broken.Store(true)
	srv := newFake(t, vllmtest.Config{Mode: "small", Fault: func(c vllmtest.Call) vllmtest.Fault {
		if broken.Load() && c.Page == deadPage {
			return vllmtest.FaultUnavailable
		}
		return vllmtest.FaultNone
	}})
	ecfg, err := config.FromLookup(func(k string) (string, bool) {
		v, ok := map[string]string{"OCR_ENGINE": "vllm", "OCR_ENGINE_URL": srv.URL(), "OCR_MODE": "small"}[k]
		return v, ok
	})
	require.NoError(t, err)
	eng, err := app.OpenEngine(t.Context(), ecfg)
	require.NoError(t, err)
	h := newSCHarness(t, scOpts{engine: eng})
	ctx := t.Context()
	pdf, err := vllmtest.Document(tag, pages, 566, 800)
	require.NoError(t, err)
	parent := h.uploadBytes("scan.pdf", pdf, tenantA, ownerA, true, true)

	h.submit(jobSpec{id: id, contentID: parent, tenant: tenantA, owner: ownerA, hints: offHints})
	evs := h.wait(id)
	first := completed(t, evs[len(evs)-1])
	require.Len(t, first.FailedPages, 1, "completed = %+v", first)
	assert.Equal(t, deadPage, first.FailedPages[0].Page, "completed = %+v", first)
	assert.Contains(t, first.FailedPages[0].Reason, "retries exhausted", "completed = %+v", first)
	before := srv.Stats().Attempts
	list, err := dlq.List(ctx, h.blobs, time.Now())
	require.NoError(t, err)
	require.Len(t, list, 1, "dead letters: %+v", list)
	assert.Equal(t, id, list[0].Job, "dead letter %+v", list[0])
	assert.Equal(t, "recognize", list[0].Stage, "dead letter %+v", list[0])
	assert.Equal(t, events.TypePageRendered, list[0].Type, "dead letter %+v", list[0])

	broken.Store(false) // the fault is gone
	rep := h.replayAll()
	require.Len(t, rep.Attempts, 1, "attempts: %+v", rep.Attempts)
	assert.Equal(t, id+".r1", rep.Attempts[0].As)
	evs = h.wait(id + ".r1")
	c := completed(t, evs[len(evs)-1])
	assert.Equal(t, pages, c.PageCount, "completed = %+v", c)
	assert.Empty(t, c.FailedPages, "completed = %+v", c)
	assert.Equal(t, pages, c.PagesByRoute["gpu"], "completed = %+v", c)
	pagesInOrderOnce(t, h.download(c.DerivedContentID), tag, pages)
	fakeViolations(t, srv)

	// Only the replayed page went to the engine again.
	after := srv.Stats().Attempts
	for p := 1; p <= pages; p++ {
		want := before[vllmtest.Token(tag, p)]
		if p == deadPage {
			want++
		}
		assert.Equal(t, want, after[vllmtest.Token(tag, p)], "requests for page %d (before the replay %d)", p, before[vllmtest.Token(tag, p)])
	}

	// The corrected result supersedes the first: one current result.
	current, states := h.current(parent)
	assert.Equal(t, []string{c.DerivedContentID}, current, "current derived contents (states %v)", states)
	assert.Equal(t, simplecontent.StateSuperseded, states[first.DerivedContentID], "the first result (states %v)", states)
	_, metas := h.derived(parent)
	for _, m := range metas {
		if m.Custom[simplecontent.MetaState] == simplecontent.StateSuperseded {
			assert.Equal(t, c.DerivedContentID, m.Custom[simplecontent.MetaSupersededBy], "superseded_by")
		}
	}

	st, err := status.Read(ctx, h.blobs, id+".r1", time.Now())
	require.NoError(t, err)
	assert.Equal(t, status.Pages{Total: pages, Rendered: pages, Done: pages, ByRoute: map[string]int{
		status.RouteText: 0, status.RouteGPU: pages, status.RouteFallback: 0,
	}}, st.Pages)
	assert.Equal(t, id, st.ReplayOf)
}
