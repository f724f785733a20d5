package app_test

// End-to-end tests of the vllm engine: the whole pipeline (convert →
// recognize → finalize, on embedded NATS with the Trigger manifests'
// retries) against the fake vLLM server of shared/engine/vllmtest, which
// refuses any request vLLM or the model's recipe would not accept.

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/contentdir"
	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/engine/vllmtest"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// vllmRun is one pipeline on embedded NATS whose engine is built from
// configuration (OCR_ENGINE=vllm) exactly as `ocrflow serve` builds it.
type vllmRun struct {
	t       testing.TB
	rt      *standalone.Runtime
	blobs   *blob.Dir
	docs    string // content root: generated documents go here
	journal *journal
}

// newVLLMRun starts a pipeline with env on top of OCR_ENGINE=vllm.
func newVLLMRun(t testing.TB, env map[string]string) *vllmRun {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	vars := map[string]string{"OCR_ENGINE": "vllm", "CONVERT_WORKERS": "2", "MAX_PAGE_ERROR_RATE": "1"}
	maps.Copy(vars, env)
	cfg, err := config.FromLookup(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	require.NoError(t, err)
	eng, err := app.OpenEngine(ctx, cfg)
	require.NoError(t, err)
	blobs, err := blob.NewDir(filepath.Join(dir, "blobs"))
	require.NoError(t, err)
	docs := filepath.Join(dir, "docs")
	require.NoError(t, os.MkdirAll(docs, 0o755))
	store, err := contentdir.New([]string{docs}, filepath.Join(dir, "out"))
	require.NoError(t, err)
	sv := serve(t, cfg, app.Options{Scratch: blobs, Content: store, Engine: eng}, "")
	return &vllmRun{t: t, rt: sv.rt, blobs: blobs, docs: docs, journal: sv.journal}
}

// submit writes a document of n marked pages (document tag) and submits it.
func (r *vllmRun) submit(id string, tag, n int, hints map[string]string) {
	r.t.Helper()
	pdf, err := vllmtest.Document(tag, n, 566, 800)
	require.NoError(r.t, err)
	name := id + ".pdf"
	require.NoError(r.t, os.WriteFile(filepath.Join(r.docs, name), pdf, 0o644))
	e, err := job.NewEvent(job.Spec{ID: id, Location: name, Hints: hints})
	require.NoError(r.t, err)
	require.NoError(r.t, r.rt.Send(context.Background(), e))
}

// wait returns the job's completed event (failing on anything else).
func (r *vllmRun) wait(id string, within time.Duration) events.JobCompleted {
	r.t.Helper()
	evs := r.journal.until(r.t, id, within)
	last := evs[len(evs)-1]
	require.Equal(r.t, events.TypeJobCompleted, last.Type(), "job %s ended with %s: %s", id, last.Type(), last.Data())
	var c events.JobCompleted
	require.NoError(r.t, events.Decode(last, &c))
	return c
}

// record returns page n's record.
func (r *vllmRun) record(id string, n int) scratch.PageRecord {
	r.t.Helper()
	rec, ok, err := scratch.GetRecord(context.Background(), r.blobs, id, n)
	require.NoError(r.t, err, "record of page %d of %s", n, id)
	require.True(r.t, ok, "page %d of %s has no record", n, id)
	return rec
}

// pagesInOrderOnce checks that every page's text is in md exactly once
// and in page order, except the pages in skip.
func pagesInOrderOnce(t *testing.T, md string, tag, n int, skip ...int) {
	t.Helper()
	pos := -1
	for p := 1; p <= n; p++ {
		tok := vllmtest.Token(tag, p)
		if slices.Contains(skip, p) {
			assert.NotContains(t, md, tok, "page %d should be a placeholder but its text is there", p)
			continue
		}
		if !assert.Equal(t, 1, strings.Count(md, tok), "times page %d (%s) appears", p, tok) {
			continue
		}
		at := strings.Index(md, tok)
		assert.GreaterOrEqual(t, at, pos, "page %d is out of order", p)
		pos = at
	}
}

func readResult(t *testing.T, c events.JobCompleted) string {
	t.Helper()
	md, err := os.ReadFile(c.DerivedContentID)
	require.NoError(t, err)
	return string(md)
}

func newFake(t testing.TB, cfg vllmtest.Config) *vllmtest.Server {
	t.Helper()
	srv, err := vllmtest.New(cfg)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return srv
}

func fakeViolations(t *testing.T, srv *vllmtest.Server) {
	t.Helper()
	v := srv.Violations()
	assert.Empty(t, v, "the fake vLLM refused %d request(s):\n%s", len(v), strings.Join(v, "\n"))
}

// TestVLLM_twenty_page_document_completes_in_order_without_tags: every
// page reaches the model once, sized for the mode, and comes back cleaned.
func TestVLLM_twenty_page_document_completes_in_order_without_tags(t *testing.T) {
	srv := newFake(t, vllmtest.Config{Mode: "base", Capacity: 4})
	run := newVLLMRun(t, map[string]string{"OCR_ENGINE_URL": srv.URL(), "OCR_MODE": "base"})
	run.submit("twenty", 1, 20, nil)
	c := run.wait("twenty", 3*time.Minute)
	fakeViolations(t, srv)
	assert.Equal(t, 20, c.PageCount, "completed = %+v, want 20 recognized pages", c)
	assert.Empty(t, c.FailedPages, "completed = %+v, want 20 recognized pages", c)
	assert.Equal(t, 20, c.PagesByRoute["gpu"], "completed = %+v, want 20 recognized pages", c)
	md := readResult(t, c)
	pagesInOrderOnce(t, md, 1, 20)
	assert.False(t, engine.HasGroundingTags(md), "grounding tags left in the result:\n%s", md)
	st := srv.Stats()
	for p := 1; p <= 20; p++ {
		assert.Equal(t, 1, st.Answered[vllmtest.Token(1, p)], "times page %d was answered", p)
		assert.Equal(t, engine.NameVLLM, run.record("twenty", p).Engine, "page %d engine_used", p)
	}
	var side document.Layout
	require.NoError(t, scratch.GetJSON(context.Background(), run.blobs, scratch.BlocksKey("twenty", 7), &side))
	var labels, engineLabels []string
	for _, b := range side.Blocks {
		labels, engineLabels = append(labels, b.Label), append(engineLabels, b.EngineLabel)
	}
	assert.Equal(t, 7, side.Page, "page 7 sidecar = %+v", side)
	assert.Equal(t, document.SourceGrounding, side.Source, "page 7 sidecar = %+v", side)
	assert.Equal(t, "title,text,table,formula,figure,caption", strings.Join(labels, ","), "page 7 sidecar = %+v", side)
	assert.Equal(t, ",,,equation,image,image_caption", strings.Join(engineLabels, ","), "page 7 sidecar: the model's own labels")
	if assert.Len(t, side.Blocks, 6, "page 7 sidecar = %+v", side) && assert.NotNil(t, side.Blocks[1].BBox, "page 7 sidecar = %+v", side) {
		assert.True(t, side.Blocks[1].BBox.Inside(side.WidthPt, side.HeightPt), "page 7 text box %v inside the %v×%v pt page", *side.Blocks[1].BBox, side.WidthPt, side.HeightPt)
	}
	raw, err := scratch.GetBytes(context.Background(), run.blobs, scratch.PageKey("twenty", 7, "raw"))
	if assert.NoError(t, err, "raw model output not kept beside the page") {
		assert.Contains(t, string(raw), "<|ref|>text<|/ref|>", "raw model output not kept beside the page")
	}
}

// TestVLLM_jobs_complete_through_503s_and_timeouts: with 30 % of requests
// answered 503 and 10 % hanging past the page deadline, the broker's
// retries still bring every page through exactly once.
func TestVLLM_jobs_complete_through_503s_and_timeouts(t *testing.T) {
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	attempts := 0
	for _, tr := range triggers {
		if tr.Subscriber == eventing.ServiceName(stage.Recognize) {
			attempts = tr.Delivery.Retry + 1
		}
	}
	const seed, pages = 7, 20
	faults := vllmtest.Mix{vllmtest.FaultUnavailable: 0.3, vllmtest.FaultTimeout: 0.1}.Faults(seed)
	// The faults depend only on (page, attempt), so the seed can be
	// checked up front: every page must have a clean attempt in time.
	for _, tag := range []int{2, 3} {
		for p := 1; p <= pages; p++ {
			ok := false
			for a := 1; a <= attempts && !ok; a++ {
				ok = faults(vllmtest.Call{Marked: true, Tag: tag, Page: p, Attempt: a}) == vllmtest.FaultNone
			}
			require.True(t, ok, "seed %d fails page %d of document %d on all %d attempts; pick another seed", seed, p, tag, attempts)
		}
	}
	srv := newFake(t, vllmtest.Config{Mode: "small", Fault: faults})
	run := newVLLMRun(t, map[string]string{
		"OCR_ENGINE_URL": srv.URL(), "OCR_MODE": "small", "OCR_PAGE_TIMEOUT": "1s", "OCR_MAX_INFLIGHT": "8",
	})
	run.submit("faulty-a", 2, pages, nil)
	run.submit("faulty-b", 3, pages, nil)
	for _, j := range []struct {
		id  string
		tag int
	}{{"faulty-a", 2}, {"faulty-b", 3}} {
		c := run.wait(j.id, 3*time.Minute)
		assert.Equal(t, pages, c.PageCount, "%s completed = %+v", j.id, c)
		assert.Empty(t, c.FailedPages, "%s completed = %+v", j.id, c)
		pagesInOrderOnce(t, readResult(t, c), j.tag, pages)
	}
	fakeViolations(t, srv)
	st := srv.Stats()
	assert.NotZero(t, st.Faults[vllmtest.FaultUnavailable], "faults injected: %v; the test did not exercise both", st.Faults)
	assert.NotZero(t, st.Faults[vllmtest.FaultTimeout], "faults injected: %v; the test did not exercise both", st.Faults)
	t.Logf("%d requests for %d pages; faults %v; statuses %v", st.Requests, 2*pages, st.Faults, st.Statuses)
}

// TestVLLM_page_that_always_loops_fails_with_repetition: the ladder runs
// within one delivery; the page ends failed with reason repetition and a
// placeholder, the job completes and lists it.
func TestVLLM_page_that_always_loops_fails_with_repetition(t *testing.T) {
	const loopPage = 4
	srv := newFake(t, vllmtest.Config{Mode: "small", Fault: func(c vllmtest.Call) vllmtest.Fault {
		if c.Page == loopPage {
			return vllmtest.FaultLoop
		}
		return vllmtest.FaultNone
	}})
	run := newVLLMRun(t, map[string]string{"OCR_ENGINE_URL": srv.URL(), "OCR_MODE": "small"})
	run.submit("loops", 5, 6, nil)
	c := run.wait("loops", 2*time.Minute)
	fakeViolations(t, srv)
	if assert.Len(t, c.FailedPages, 1, "failed pages = %+v, want page %d with reason repetition", c.FailedPages, loopPage) {
		assert.Equal(t, loopPage, c.FailedPages[0].Page, "failed pages = %+v", c.FailedPages)
		assert.True(t, strings.HasPrefix(c.FailedPages[0].Reason, "repetition: "), "failed pages = %+v, want reason repetition", c.FailedPages)
	}
	md := readResult(t, c)
	assert.Contains(t, md, fmt.Sprintf("page %d could not be recognized", loopPage), "no placeholder for page %d", loopPage)
	assert.Contains(t, md, "reason: repetition: ", "no placeholder for page %d", loopPage)
	pagesInOrderOnce(t, md, 5, 6, loopPage)
	assert.Equal(t, 3, srv.Stats().Attempts[vllmtest.Token(5, loopPage)],
		"times page %d was requested, want the 3 rungs of one ladder (a permanent failure is not redelivered)", loopPage)
	raw, err := scratch.GetBytes(context.Background(), run.blobs, scratch.PageKey("loops", loopPage, "raw"))
	if assert.NoError(t, err, "the looping answer was not kept for inspection") {
		assert.Contains(t, string(raw), "again and again", "the looping answer was not kept for inspection")
	}
}

// TestVLLM_page_failure_policy: under the default MAX_PAGE_ERROR_RATE
// (0.05) a job of 20 pages completes with one looping page as a
// placeholder, fails as pages_failed with two, and completes again when
// its max_page_error_rate hint allows them.
func TestVLLM_page_failure_policy(t *testing.T) {
	srv := newFake(t, vllmtest.Config{Mode: "small", Fault: func(c vllmtest.Call) vllmtest.Fault {
		if (c.Tag == 7 && c.Page == 3) || (c.Tag >= 8 && (c.Page == 3 || c.Page == 17)) {
			return vllmtest.FaultLoop
		}
		return vllmtest.FaultNone
	}})
	run := newVLLMRun(t, map[string]string{"OCR_ENGINE_URL": srv.URL(), "OCR_MODE": "small", "MAX_PAGE_ERROR_RATE": "0.05"})
	run.submit("policy-one", 7, 20, nil)
	run.submit("policy-two", 8, 20, nil)
	run.submit("policy-hint", 9, 20, map[string]string{"max_page_error_rate": "0.1"})

	c := run.wait("policy-one", 2*time.Minute)
	assert.Len(t, c.FailedPages, 1, "one page in twenty is at the rate: the job completes")
	c = run.wait("policy-hint", 2*time.Minute)
	assert.Len(t, c.FailedPages, 2, "the hint allows two pages in twenty")

	evs := run.journal.until(t, "policy-two", 2*time.Minute)
	last := evs[len(evs)-1]
	require.Equal(t, events.TypeJobFailed, last.Type(), "two pages in twenty are above the rate")
	var f events.JobFailed
	require.NoError(t, events.Decode(last, &f))
	assert.Equal(t, events.ErrorTypePagesFailed, f.ErrorType)
	assert.Len(t, f.FailedPages, 2)
	assert.Contains(t, f.Message, "2 of 20 pages failed")
	assert.Contains(t, f.Message, "page 3: repetition")
}

// TestVLLM_engine_down_for_the_whole_run_uses_the_fallback: each page's
// last delivery falls back to OCR_FALLBACK_ENGINE, recorded as engine_used.
func TestVLLM_engine_down_for_the_whole_run_uses_the_fallback(t *testing.T) {
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	attempts := 0
	for _, tr := range triggers {
		if tr.Subscriber == eventing.ServiceName(stage.Recognize) {
			attempts = tr.Delivery.Retry + 1
		}
	}
	// Nothing listens on port 1 (a closed test server's port could be
	// handed to the next one).
	const refusedURL = "http://127.0.0.1:1/v1"
	cold := newFake(t, vllmtest.Config{Mode: "small", Fault: func(vllmtest.Call) vllmtest.Fault { return vllmtest.FaultUnavailable }})
	for _, tc := range []struct {
		name, url string
		fake      *vllmtest.Server // counts requests when set
	}{
		{"connection_refused", refusedURL, nil},
		{"always_503", cold.URL(), cold},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := newVLLMRun(t, map[string]string{
				"OCR_ENGINE_URL": tc.url, "OCR_MODE": "small", "OCR_FALLBACK_ENGINE": "fake",
			})
			id := "down-" + strings.ReplaceAll(tc.name, "_", "-")
			run.submit(id, 6, 3, nil)
			c := run.wait(id, 2*time.Minute)
			assert.Equal(t, 3, c.PageCount, "completed = %+v, want 3 pages from the fallback", c)
			assert.Empty(t, c.FailedPages, "completed = %+v, want 3 pages from the fallback", c)
			md := readResult(t, c)
			assert.Equal(t, 3, strings.Count(md, "fake-ocr "), "pages carrying the fallback's text:\n%s", md)
			for p := 1; p <= 3; p++ {
				assert.Equal(t, engine.NameFake, run.record(id, p).Engine, "page %d engine_used", p)
				assert.Equal(t, engine.NameFake, c.EngineUsed[strconv.Itoa(p)], "completed event: page %d engine_used", p)
				if tc.fake != nil {
					assert.Equal(t, attempts, tc.fake.Stats().Attempts[vllmtest.Token(6, p)], "times page %d reached the model, want one per delivery", p)
				}
			}
		})
	}
}

// TestVLLM_resolution_hint_picks_the_mode: a job's resolution hint sizes
// its pages for that mode (the fake refuses anything larger).
func TestVLLM_resolution_hint_picks_the_mode(t *testing.T) {
	srv := newFake(t, vllmtest.Config{Mode: "tiny", Record: true})
	run := newVLLMRun(t, map[string]string{"OCR_ENGINE_URL": srv.URL(), "OCR_MODE": "small"})
	run.submit("tiny", 8, 2, map[string]string{"resolution": "tiny"})
	c := run.wait("tiny", 2*time.Minute)
	fakeViolations(t, srv)
	pagesInOrderOnce(t, readResult(t, c), 8, 2)
	assert.Len(t, srv.RequestBodies(), 2, "requests")
}

// BenchmarkVLLM_keeps_the_GPU_full measures GPU utilisation: a fake server
// that serves C = 8 requests at once with latency L = 250 ms (the GPU's
// batch) and the whole pipeline converting and recognizing 5 documents of
// 40 pages. It reports inflight_avg, the time-weighted mean number of
// requests in service in the steady state — from the moment the pipeline
// first fills the server to the start of the last request — and util_%,
// that mean over C. The architecture's budget is ≥ 95 %.
//
// Two caps are measured: OCR_MAX_INFLIGHT = C, and 1.25 × C, which keeps
// a request or two queued at the server so that it starts the next one the
// moment a slot frees, instead of waiting out ocrflow's round trip.
// docs/performance.md records the numbers.
//
//	go test -run '^$' -bench VLLM_keeps -benchtime 1x ./shared/pipeline/
func BenchmarkVLLM_keeps_the_GPU_full(b *testing.B) {
	const (
		capacity = 8
		latency  = 250 * time.Millisecond
		docs     = 5
		pages    = 40
	)
	for _, maxInflight := range []int{capacity, capacity * 5 / 4} {
		b.Run("max_inflight="+strconv.Itoa(maxInflight), func(b *testing.B) {
			srv := newFake(b, vllmtest.Config{Mode: "small", Capacity: capacity, Latency: latency})
			run := newVLLMRun(b, map[string]string{
				"OCR_ENGINE_URL": srv.URL(), "OCR_MODE": "small", "OCR_MAX_INFLIGHT": strconv.Itoa(maxInflight),
			})
			var avg float64
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				ids := make([]string, docs)
				for d := range docs {
					ids[d] = fmt.Sprintf("bench-%d-%d", i, d)
					run.submit(ids[d], d+1, pages, nil)
				}
				for _, id := range ids {
					run.wait(id, 5*time.Minute)
				}
				full := srv.FirstReach(capacity, start)
				_, last := srv.FirstLastStart(start)
				avg = srv.InFlightAverage(full, last)
			}
			b.ReportMetric(avg, "inflight_avg")
			b.ReportMetric(100*avg/capacity, "util_%")
			b.ReportMetric(float64(srv.Stats().MaxInFlight), "inflight_max")
		})
	}
}
