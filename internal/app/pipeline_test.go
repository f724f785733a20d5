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
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		if v, ok := o.env[k]; ok {
			return v, true
		}
		v, ok := map[string]string{
			"OCR_ENGINE": "fake", "RECOGNIZE_WORKERS": "3", "CONVERT_WORKERS": "2", "OCR_STAGES": o.stages,
		}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewDir(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	cd, err := contentdir.New([]string{abs}, filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
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
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.rt.Send(h.t.Context(), e); err != nil {
		h.t.Fatal(err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	defer doc.Close()
	var out []string
	for n := 1; n <= doc.Pages(); n++ {
		p, err := doc.Render(t.Context(), n, engine.Target(engine.NameFake))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, engine.FakeText(p.Data))
	}
	return out
}

func assertInOrderOnce(t *testing.T, md string, want []string) {
	t.Helper()
	pos := -1
	for i, w := range want {
		if c := strings.Count(md, w); c != 1 {
			t.Fatalf("page %d text %q appears %d times, want exactly once", i+1, w, c)
		}
		at := strings.Index(md, w)
		if at < pos {
			t.Fatalf("page %d text is out of order", i+1)
		}
		pos = at
	}
}

func completed(t *testing.T, e event.Event) events.JobCompleted {
	t.Helper()
	if e.Type() != events.TypeJobCompleted {
		t.Fatalf("terminal event is %s (%s), want completed", e.Type(), e.Data())
	}
	var c events.JobCompleted
	if err := events.Decode(e, &c); err != nil {
		t.Fatal(err)
	}
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
			if evs[0].Type() != events.TypeJobStarted {
				t.Fatalf("first lifecycle event is %s, want started (all: %v)", evs[0].Type(), types(evs))
			}
			last := -1
			for _, e := range evs[1 : len(evs)-1] {
				if e.Type() != events.TypeJobProgress {
					t.Fatalf("unexpected %s between started and completed: %v", e.Type(), types(evs))
				}
				var p events.JobProgress
				if err := events.Decode(e, &p); err != nil {
					t.Fatal(err)
				}
				if p.PagesCompleted < last || p.TotalPages != tc.pages {
					t.Fatalf("progress %d/%d after %d: not monotonic or wrong total", p.PagesCompleted, p.TotalPages, last)
				}
				last = p.PagesCompleted
			}
			c := completed(t, evs[len(evs)-1])
			if c.PageCount != tc.pages || len(c.FailedPages) != 0 || c.PagesByRoute["gpu"] != tc.pages {
				t.Fatalf("completed = %+v, want %d ok pages", c, tc.pages)
			}
			md, err := os.ReadFile(c.DerivedContentID)
			if err != nil {
				t.Fatal(err)
			}
			assertInOrderOnce(t, string(md), expectedPages(t, tc.file))
			if n := h.content.count(id); n != 1 {
				t.Fatalf("result stored %d times, want 1", n)
			}
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
			if len(evs) != 1 || evs[0].Type() != events.TypeJobFailed {
				t.Fatalf("lifecycle = %v, want exactly [failed]", types(evs))
			}
			var f events.JobFailed
			if err := events.Decode(evs[0], &f); err != nil {
				t.Fatal(err)
			}
			wantType := string(failure.TypeValidation)
			if tc.name == "path_outside_roots" {
				wantType = string(failure.TypePermanent)
			}
			if f.ErrorType != wantType || f.RetryCount != 0 || !strings.Contains(f.Message, tc.wantMsg) {
				t.Fatalf("failed = %+v, want %s, no retries, message with %q", f, wantType, tc.wantMsg)
			}
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
	if len(c.FailedPages) != 0 {
		t.Fatalf("failed pages %v, want none", c.FailedPages)
	}
	if got := attempts.Load(); got != 3 {
		t.Fatalf("page 2 was attempted %d times, want 3 (two transient failures, then success)", got)
	}
	md, err := os.ReadFile(c.DerivedContentID)
	if err != nil {
		t.Fatal(err)
	}
	assertInOrderOnce(t, string(md), expectedPages(t, "report.pdf"))
}

func TestPipeline_poisoned_page_exhausts_retries_and_is_dead_lettered(t *testing.T) {
	triggers, err := eventing.Triggers()
	if err != nil {
		t.Fatal(err)
	}
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
	if len(c.FailedPages) != 1 || c.FailedPages[0].Page != 3 {
		t.Fatalf("failed pages = %+v, want page 3", c.FailedPages)
	}
	if got := int(attempts.Load()); got != retry+1 {
		t.Fatalf("page 3 attempted %d times, want retry+1 = %d from the Trigger", got, retry+1)
	}
	select {
	case d := <-h.dlq:
		if d.ID() != events.PageRenderedID("poison-job", 3)+"-dead-ocrflow-recognize" {
			t.Fatalf("dead letter id %s", d.ID())
		}
		if code := fmt.Sprint(d.Extensions()[events.ExtErrorCode]); code != "503" {
			t.Fatalf("knativeerrorcode = %s, want 503", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing arrived on ocr.dlq")
	}
	md, err := os.ReadFile(c.DerivedContentID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "page 3 could not be recognized") {
		t.Fatalf("markdown has no placeholder for page 3:\n%s", md)
	}
	want := expectedPages(t, "report.pdf")
	assertInOrderOnce(t, string(md), append(want[:2:2], want[3:]...))
}

func TestStandalone_two_runtimes_share_work_and_complete_each_job_once(t *testing.T) {
	srv, err := standalone.StartServer(standalone.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
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
		if terminals != 1 {
			t.Fatalf("job %s ended %d times", id, terminals)
		}
		if n := hs[0].content.count(id) + hs[1].content.count(id); n != 1 {
			t.Fatalf("job %s assembled %d times, want exactly once", id, n)
		}
	}
	a, b := perRuntime[0].Load(), perRuntime[1].Load()
	if a == 0 || b == 0 {
		t.Fatalf("pages recognized per runtime = %d and %d: the work was not shared", a, b)
	}
	if a+b != 6+1+2+6+1+6 {
		t.Fatalf("%d engine calls in all, want one per page (22)", a+b)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(testdata, "scanned.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if r := wordRecall(string(src), string(md)); r < 0.95 {
		t.Fatalf("word recall %.3f < 0.95; markdown:\n%s", r, md)
	}
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
			if c.PagesByRoute["text"] != tc.text || c.PagesByRoute["gpu"] != tc.gpu {
				t.Fatalf("pages by route %v, want text %d gpu %d", c.PagesByRoute, tc.text, tc.gpu)
			}
			if got := calls.Load(); got != tc.engineCalls {
				t.Fatalf("%d engine calls, want %d", got, tc.engineCalls)
			}
			if tc.text == 0 {
				return
			}
			md, err := os.ReadFile(c.DerivedContentID)
			if err != nil {
				t.Fatal(err)
			}
			src, err := os.ReadFile(filepath.Join(testdata, strings.TrimSuffix(tc.file, ".pdf")+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			if r := wordRecall(string(src), string(md)); r < 0.99 {
				t.Fatalf("word recall %.4f < 0.99 for a born-digital document", r)
			}
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
	if err := up.SetData(event.ApplicationJSON, map[string]string{
		"content_id": "page.png", "tenant_id": "t1", "mime_type": "image/png", "file_name": "page.png",
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.rt.Send(t.Context(), up); err != nil {
		t.Fatal(err)
	}
	evs := h.wait("auto-page.png")
	c := completed(t, evs[len(evs)-1])
	if c.PageCount != 1 {
		t.Fatalf("completed = %+v", c)
	}
}
