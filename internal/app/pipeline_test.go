package app_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/contentdir"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/render"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

const testdata = "../../testdata"

// countingStore counts Store calls per job (assembly must happen once).
type countingStore struct {
	dir    *contentdir.Store
	mu     sync.Mutex
	stores map[string]int
}

func (c *countingStore) Fetch(ctx context.Context, j job.Job, dst string, maxBytes int64) (content.Source, error) {
	return c.dir.Fetch(ctx, j, dst, maxBytes)
}

func (c *countingStore) Store(ctx context.Context, r content.Result) (string, error) {
	c.mu.Lock()
	c.stores[r.JobID]++
	c.mu.Unlock()
	return c.dir.Store(ctx, r)
}

func (c *countingStore) count(job string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stores[job]
}

type harness struct {
	t       *testing.T
	rt      *standalone.Runtime
	blobs   *blob.Dir
	content *countingStore
	journal *journal
	dlq     <-chan event.Event
}

type harnessOpts struct {
	url     string // external NATS; "" = embedded
	fake    *engine.Fake
	engine  engine.Engine // overrides fake
	stages  string        // OCR_STAGES; "" = the default
	workdir string        // shared blob/out dirs across runtimes
	env     map[string]string
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	dir := o.workdir
	if dir == "" {
		dir = t.TempDir()
	}
	abs, err := filepath.Abs(testdata)
	require.NoError(t, err)
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		if v, ok := o.env[k]; ok {
			return v, true
		}
		v, ok := map[string]string{
			"OCR_ENGINE": "fake", "RECOGNIZE_WORKERS": "3", "CONVERT_WORKERS": "2", "OCR_STAGES": o.stages,
			// These tests are about failed pages becoming placeholders; the
			// page-failure policy has its own (TestVLLM_page_failure_policy).
			"MAX_PAGE_ERROR_RATE": "1",
		}[k]
		return v, ok
	})
	require.NoError(t, err)
	blobs, err := blob.NewDir(filepath.Join(dir, "blobs"))
	require.NoError(t, err)
	cd, err := contentdir.New([]string{abs}, filepath.Join(dir, "out"))
	require.NoError(t, err)
	store := &countingStore{dir: cd, stores: map[string]int{}}
	fake := o.fake
	if fake == nil {
		fake = &engine.Fake{}
	}
	var eng engine.Engine = fake
	if o.engine != nil {
		eng = o.engine
		cfg.Engine = eng.Name()
	}
	sv := serve(t, cfg, app.Options{Scratch: blobs, Content: store, Engine: eng}, o.url)
	return &harness{t: t, rt: sv.rt, blobs: blobs, content: store, journal: sv.journal, dlq: sv.dlq}
}

func (h *harness) submit(id, file string, hints map[string]string) {
	h.t.Helper()
	e, err := job.NewEvent(job.Spec{ID: id, Location: file, Hints: hints})
	require.NoError(h.t, err)
	require.NoError(h.t, h.rt.Send(h.t.Context(), e))
}

// wait collects lifecycle events until job ends and returns them in order.
func (h *harness) wait(id string) []event.Event {
	h.t.Helper()
	return h.journal.until(h.t, id, 60*time.Second)
}

func types(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type())
	}
	return out
}

// expectedPages renders the document the way convert does and returns the
// fake engine's text for each page, in order.
func expectedPages(t *testing.T, file string) []string {
	t.Helper()
	doc, err := render.Open(t.Context(), filepath.Join(testdata, file), render.Limits{})
	require.NoError(t, err)
	defer func() { _ = doc.Close() }()
	var out []string
	for n := 1; n <= doc.Pages(); n++ {
		p, err := doc.Render(t.Context(), n, engine.Target(engine.NameFake))
		require.NoError(t, err)
		out = append(out, engine.FakeText(p.Data))
	}
	return out
}

// assertInOrderOnce checks that each of want is in md exactly once, in
// the order given.
func assertInOrderOnce(t *testing.T, md string, want []string) {
	t.Helper()
	pos := -1
	for i, w := range want {
		if !assert.Equal(t, 1, strings.Count(md, w), "times page %d text %q appears", i+1, w) {
			continue
		}
		at := strings.Index(md, w)
		assert.GreaterOrEqual(t, at, pos, "page %d text is out of order", i+1)
		pos = at
	}
}

func completed(t *testing.T, e event.Event) events.JobCompleted {
	t.Helper()
	require.Equal(t, events.TypeJobCompleted, e.Type(), "terminal event is %s (%s), want completed", e.Type(), e.Data())
	var c events.JobCompleted
	require.NoError(t, events.Decode(e, &c))
	return c
}

func TestPipeline_documents_complete_with_every_page_once_in_order(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, tc := range []struct {
		name, file string
		pages      int
	}{
		{"png_page", "page.png", 1},
		{"six_page_pdf", "report.pdf", 6},
		{"scanned_pdf", "scanned.pdf", 2},
		{"jpeg_page", "page.jpg", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "job-" + strings.ReplaceAll(tc.name, "_", "-")
			// Every page through the engine, so the fake's text proves order.
			h.submit(id, tc.file, map[string]string{"text_layer": "off"})
			evs := h.wait(id)
			assert.Equal(t, events.TypeJobStarted, evs[0].Type(), "first lifecycle event (all: %v)", types(evs))
			last := -1
			for _, e := range evs[1 : len(evs)-1] {
				require.Equal(t, events.TypeJobProgress, e.Type(), "unexpected event between started and completed: %v", types(evs))
				var p events.JobProgress
				require.NoError(t, events.Decode(e, &p))
				assert.GreaterOrEqual(t, p.PagesCompleted, last, "progress %d/%d after %d: not monotonic", p.PagesCompleted, p.TotalPages, last)
				assert.Equal(t, tc.pages, p.TotalPages, "progress %d/%d: wrong total", p.PagesCompleted, p.TotalPages)
				last = p.PagesCompleted
			}
			c := completed(t, evs[len(evs)-1])
			assert.Equal(t, tc.pages, c.PageCount, "completed = %+v", c)
			assert.Empty(t, c.FailedPages, "completed = %+v", c)
			assert.Equal(t, tc.pages, c.PagesByRoute["gpu"], "completed = %+v", c)
			md, err := os.ReadFile(c.DerivedContentID)
			require.NoError(t, err)
			assertInOrderOnce(t, string(md), expectedPages(t, tc.file))
			assert.Equal(t, 1, h.content.count(id), "times the result was stored")
		})
	}
}

func TestPipeline_bad_input_fails_as_validation_without_retry(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, tc := range []struct {
		name, file, wantMsg string
	}{
		{"missing_file", "no-such-file.pdf", "does not exist"},
		{"not_a_document", "report.txt", "unsupported document type"},
		{"path_outside_roots", "/etc/hostname", "outside the allowed content roots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "bad-" + strings.ReplaceAll(tc.name, "_", "-")
			h.submit(id, tc.file, nil)
			evs := h.wait(id)
			require.Len(t, evs, 1, "lifecycle = %v, want exactly [failed]", types(evs))
			require.Equal(t, events.TypeJobFailed, evs[0].Type(), "lifecycle = %v, want exactly [failed]", types(evs))
			var f events.JobFailed
			require.NoError(t, events.Decode(evs[0], &f))
			wantType := string(failure.TypeValidation)
			if tc.name == "path_outside_roots" {
				wantType = string(failure.TypePermanent)
			}
			assert.Equal(t, wantType, f.ErrorType, "failed = %+v", f)
			assert.Zero(t, f.RetryCount, "failed = %+v, want no retries", f)
			assert.Contains(t, f.Message, tc.wantMsg, "failed = %+v", f)
		})
	}
}

func TestPipeline_transient_engine_failure_is_retried_then_succeeds(t *testing.T) {
	var attempts atomic.Int32
	fake := &engine.Fake{Fail: func(p engine.Page) error {
		if p.Number == 2 && attempts.Add(1) <= 2 {
			return failure.Transient("model server warming up (503)")
		}
		return nil
	}}
	h := newHarness(t, harnessOpts{fake: fake})
	h.submit("retry-job", "report.pdf", map[string]string{"text_layer": "off"})
	evs := h.wait("retry-job")
	c := completed(t, evs[len(evs)-1])
	assert.Empty(t, c.FailedPages)
	assert.Equal(t, int32(3), attempts.Load(), "attempts of page 2: two transient failures, then success")
	md, err := os.ReadFile(c.DerivedContentID)
	require.NoError(t, err)
	assertInOrderOnce(t, string(md), expectedPages(t, "report.pdf"))
}

func TestPipeline_poisoned_page_exhausts_retries_and_is_dead_lettered(t *testing.T) {
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	var retry int
	for _, tr := range triggers {
		if tr.Subscriber == eventing.ServiceName(stage.Recognize) {
			retry = tr.Delivery.Retry
		}
	}
	var attempts atomic.Int32
	fake := &engine.Fake{Fail: func(p engine.Page) error {
		if p.Number == 3 {
			attempts.Add(1)
			return errors.New("connection reset by model server")
		}
		return nil
	}}
	h := newHarness(t, harnessOpts{fake: fake})
	h.submit("poison-job", "report.pdf", map[string]string{"text_layer": "off"})
	evs := h.wait("poison-job")
	c := completed(t, evs[len(evs)-1])
	if assert.Len(t, c.FailedPages, 1, "failed pages = %+v, want page 3", c.FailedPages) {
		assert.Equal(t, 3, c.FailedPages[0].Page, "failed pages = %+v, want page 3", c.FailedPages)
	}
	assert.Equal(t, retry+1, int(attempts.Load()), "attempts of page 3: retry+1 from the Trigger")
	select {
	case d := <-h.dlq:
		assert.Equal(t, events.PageRenderedID("poison-job", 3)+"-dead-ocrflow-recognize", d.ID(), "dead letter id")
		assert.Equal(t, "503", fmt.Sprint(d.Extensions()[events.ExtErrorCode]), "knativeerrorcode")
	case <-time.After(10 * time.Second):
		assert.Fail(t, "nothing arrived on ocr.dlq")
	}
	md, err := os.ReadFile(c.DerivedContentID)
	require.NoError(t, err)
	assert.Contains(t, string(md), "page 3 could not be recognized", "markdown has no placeholder for page 3")
	want := expectedPages(t, "report.pdf")
	assertInOrderOnce(t, string(md), append(want[:2:2], want[3:]...))
}

func TestStandalone_two_runtimes_share_work_and_complete_each_job_once(t *testing.T) {
	srv, err := standalone.StartServer(standalone.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	shared := t.TempDir()
	var perRuntime [2]atomic.Int32
	var hs [2]*harness
	for i := range hs {
		hs[i] = newHarness(t, harnessOpts{url: srv.ClientURL(), workdir: shared, fake: &engine.Fake{
			Latency: 5 * time.Millisecond,
			Fail:    func(engine.Page) error { perRuntime[i].Add(1); return nil },
		}})
	}
	files := []string{"report.pdf", "page.png", "scanned.pdf", "report.pdf", "page.jpg", "report.pdf"}
	for i, f := range files {
		hs[i%2].submit(fmt.Sprintf("shared-%d", i), f, map[string]string{"text_layer": "off"})
	}
	for i := range files {
		id := fmt.Sprintf("shared-%d", i)
		evs := hs[0].wait(id)
		completed(t, evs[len(evs)-1])
		terminals := 0
		for _, e := range evs {
			if events.Terminal(e.Type()) {
				terminals++
			}
		}
		assert.Equal(t, 1, terminals, "times job %s ended", id)
		assert.Equal(t, 1, hs[0].content.count(id)+hs[1].content.count(id), "times job %s was assembled", id)
	}
	a, b := perRuntime[0].Load(), perRuntime[1].Load()
	assert.NotZero(t, a, "pages recognized per runtime = %d and %d: the work was not shared", a, b)
	assert.NotZero(t, b, "pages recognized per runtime = %d and %d: the work was not shared", a, b)
	assert.Equal(t, int32(6+1+2+6+1+6), a+b, "engine calls in all, want one per page (22)")
}

// TestPipeline_tesseract_reads_the_scanned_sample runs real OCR end to end:
// the scanned sample's markdown must contain its known source text.
func TestPipeline_tesseract_reads_the_scanned_sample(t *testing.T) {
	if testing.Short() {
		t.Skip("real OCR takes a few seconds")
	}
	tess := engine.NewTesseract("", "eng")
	if err := tess.Check(t.Context()); err != nil {
		t.Skipf("%v (make test installs it)", err)
	}
	h := newHarness(t, harnessOpts{engine: tess})
	h.submit("tess-scan", "scanned.pdf", nil)
	evs := h.wait("tess-scan")
	c := completed(t, evs[len(evs)-1])
	md, err := os.ReadFile(c.DerivedContentID)
	require.NoError(t, err)
	src, err := os.ReadFile(filepath.Join(testdata, "scanned.txt"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, wordRecall(string(src), string(md)), 0.95, "word recall; markdown:\n%s", md)
}

// wordRecall is the share of the source's words (lowercased, punctuation
// trimmed) found in got, counted with multiplicity.
func wordRecall(src, got string) float64 {
	norm := func(s string) []string {
		var out []string
		for w := range strings.FieldsSeq(strings.ToLower(s)) {
			if w = strings.Trim(w, ".,;:!?()\"'"); w != "" {
				out = append(out, w)
			}
		}
		return out
	}
	have := map[string]int{}
	for _, w := range norm(got) {
		have[w]++
	}
	want := norm(src)
	hit := 0
	for _, w := range want {
		if have[w] > 0 {
			have[w]--
			hit++
		}
	}
	return float64(hit) / float64(len(want))
}

// TestPipeline_text_layer_fast_path: born-digital pages take their own text
// and never reach the engine; scans still do.
func TestPipeline_text_layer_fast_path(t *testing.T) {
	var calls atomic.Int32
	fake := &engine.Fake{Fail: func(engine.Page) error { calls.Add(1); return nil }}
	h := newHarness(t, harnessOpts{fake: fake})
	for _, tc := range []struct {
		file        string
		text, gpu   int
		engineCalls int32
	}{
		{"report.pdf", 6, 0, 0},
		{"scanned.pdf", 0, 2, 2},
		{"scanned_ocrlayer.pdf", 0, 1, 1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			calls.Store(0)
			id := "tl-" + strings.ReplaceAll(strings.TrimSuffix(tc.file, ".pdf"), "_", "-")
			h.submit(id, tc.file, nil)
			evs := h.wait(id)
			c := completed(t, evs[len(evs)-1])
			assert.Equal(t, tc.text, c.PagesByRoute["text"], "text pages; pages by route %v", c.PagesByRoute)
			assert.Equal(t, tc.gpu, c.PagesByRoute["gpu"], "gpu pages; pages by route %v", c.PagesByRoute)
			assert.Equal(t, tc.engineCalls, calls.Load(), "engine calls")
			if tc.text == 0 {
				return
			}
			md, err := os.ReadFile(c.DerivedContentID)
			require.NoError(t, err)
			src, err := os.ReadFile(filepath.Join(testdata, strings.TrimSuffix(tc.file, ".pdf")+".txt"))
			require.NoError(t, err)
			assert.GreaterOrEqual(t, wordRecall(string(src), string(md)), 0.99, "word recall for a born-digital document")
		})
	}
}

// TestPipeline_autoocr_turns_an_upload_into_a_completed_job: the optional
// autoocr stage and Trigger route a platform's upload event to convert.
func TestPipeline_autoocr_turns_an_upload_into_a_completed_job(t *testing.T) {
	h := newHarness(t, harnessOpts{stages: "convert,recognize,finalize,deadletter,autoocr"})
	up := event.New()
	up.SetID("upload-1")
	up.SetType("content.uploaded")
	up.SetSource("/platform")
	require.NoError(t, up.SetData(event.ApplicationJSON, map[string]string{
		"content_id": "page.png", "tenant_id": "t1", "mime_type": "image/png", "file_name": "page.png",
	}))
	require.NoError(t, h.rt.Send(t.Context(), up))
	evs := h.wait("auto-page.png")
	c := completed(t, evs[len(evs)-1])
	assert.Equal(t, 1, c.PageCount, "completed = %+v", c)
}
