package ocrflow

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	ce "knative.dev/func-go/cloudevents"

	"github.com/ocrflow/ocrflow/internal/funchost"
	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/knative"
	"github.com/ocrflow/ocrflow/shared/stage"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// Interface guards: func-go finds these optional methods by assertion, so
// a wrong signature would silently drop them.
var (
	_ ce.Starter           = (*Function)(nil)
	_ ce.Stopper           = (*Function)(nil)
	_ ce.ReadinessReporter = (*Function)(nil)
	_ ce.LivenessReporter  = (*Function)(nil)
)

// allStages is OCR_STAGES for an instance serving everything.
const allStages = "convert,recognize,finalize,deadletter"

// testEnv returns the function's environment: the fake engine, a fresh
// blob store and output directory, and the repo's testdata as the content
// root. sinkURL becomes K_SINK when not empty.
func testEnv(t *testing.T, stages, sinkURL string) map[string]string {
	t.Helper()
	content, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := map[string]string{
		"OCR_ENGINE":    "fake",
		"OCR_STAGES":    stages,
		"BLOB_URL":      "file://" + filepath.Join(dir, "blobs"),
		"CONTENT_STORE": "dir",
		"CONTENT_DIR":   content,
		"OUTPUT_DIR":    filepath.Join(dir, "out"),
		"LOG_LEVEL":     "error",
	}
	if sinkURL != "" {
		env[knative.EnvSink] = sinkURL
	}
	return env
}

// started returns a function started with env and stopped at cleanup.
func started(t *testing.T, env map[string]string) *Function {
	t.Helper()
	f := New()
	if err := f.Start(t.Context(), env); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return f
}

// serve exposes f exactly as func-go's scaffolding does (ce.New builds the
// mux: /health/readiness, /health/liveness and the CloudEvents handler on
// /), minus the listener and signal handling.
func serve(t *testing.T, f *Function) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(ce.New(f).Handler)
	t.Cleanup(srv.Close)
	return srv
}

// answer is an HTTP answer to one posted event.
type answer struct {
	status int
	body   string
	reply  *event.Event // decoded when the answer carries a CloudEvent
	ceType string       // the Ce-Type header
}

// post sends e to url in binary mode, as the broker's dispatcher does.
func post(t *testing.T, client *http.Client, url string, e event.Event) answer {
	t.Helper()
	ctx := t.Context()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(binding.WithForceBinary(ctx), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", e.Type(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, body: string(body), ceType: resp.Header.Get("Ce-Type")}
	if resp.Header.Get("Ce-Id") != "" {
		reply, err := binding.ToEvent(ctx, cehttp.NewMessage(resp.Header, io.NopCloser(bytes.NewReader(body))))
		if err != nil {
			t.Fatalf("decode reply to %s: %v", e.Type(), err)
		}
		a.reply = reply
	}
	return a
}

// collector is a fake broker ingress (K_SINK): it decodes and keeps every
// CloudEvent posted to it and answers 202, as the ingress does.
type collector struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []event.Event
}

func newCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	p, err := cloudevents.NewHTTP()
	if err != nil {
		t.Fatal(err)
	}
	h, err := cloudevents.NewHTTPReceiveHandler(t.Context(), p, func(_ context.Context, e event.Event) protocol.Result {
		c.mu.Lock()
		c.got = append(c.got, e)
		c.mu.Unlock()
		return cehttp.NewResult(http.StatusAccepted, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	c.srv = httptest.NewServer(h)
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) events() []event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

func jobEvent(t *testing.T, id, location string) event.Event {
	t.Helper()
	e, err := job.NewEvent(job.Spec{ID: id, Location: location})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func testEvent(t *testing.T, id, typ, jobID string, page int, payload any) event.Event {
	t.Helper()
	e, err := events.New(nil, id, typ, "/test", page, jobID, payload)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// malformedPage is an ocr.page.recognized whose data is not JSON: no stage
// can make a reply of it.
func malformedPage(t *testing.T, jobID string) event.Event {
	t.Helper()
	e := testEvent(t, events.PageRecognizedID(jobID, 1), events.TypePageRecognized, jobID, 1, nil)
	if err := e.SetData(event.ApplicationJSON, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	return e
}

// deadLetter marks e as Knative marks an event it gives up on.
func deadLetter(e event.Event, code int, body string) event.Event {
	e.SetExtension(events.ExtErrorCode, code)
	e.SetExtension(events.ExtErrorDest, "http://ocrflow-recognize.ocrflow.svc.cluster.local")
	e.SetExtension(events.ExtErrorData, base64.StdEncoding.EncodeToString([]byte(body)))
	return e
}

func decode[T any](t *testing.T, e *event.Event) T {
	t.Helper()
	var v T
	if err := events.Decode(*e, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFunction_is_ready_only_between_Start_and_Stop(t *testing.T) {
	f := New()
	srv := serve(t, f)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ready := func() bool {
		t.Helper()
		ok, err := f.Ready(t.Context())
		if err != nil {
			t.Fatalf("Ready: %v", err)
		}
		return ok
	}

	if ready() {
		t.Fatal("Ready before Start")
	}
	if code, _ := get("/health/readiness"); code != http.StatusServiceUnavailable {
		t.Fatalf("readiness before Start = %d, want 503", code)
	}
	if code, body := get("/health/liveness"); code != http.StatusOK || body != "ALIVE" {
		t.Fatalf("liveness = %d %q, want 200 ALIVE", code, body)
	}
	// An event that arrives before Start is retried, not dropped.
	early := testEvent(t, "early", events.TypePageRecognized, "j", 1, events.PageRecognized{JobID: "j", Page: 1, Pages: 1})
	if a := post(t, srv.Client(), srv.URL, early); a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "not ready") {
		t.Fatalf("event before Start: %d %q, want 503 not ready", a.status, a.body)
	}

	if err := f.Start(t.Context(), testEnv(t, "finalize", "")); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if !ready() {
		t.Fatal("not Ready after Start")
	}
	if code, body := get("/health/readiness"); code != http.StatusOK || body != "READY" {
		t.Fatalf("readiness after Start = %d %q, want 200 READY", code, body)
	}
	if err := f.Start(t.Context(), testEnv(t, "finalize", "")); err == nil {
		t.Fatal("second Start succeeded, want an error")
	}

	if err := f.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if ready() {
		t.Fatal("Ready after Stop")
	}
	if code, _ := get("/health/readiness"); code != http.StatusServiceUnavailable {
		t.Fatalf("readiness after Stop = %d, want 503", code)
	}
}

func TestFunction_Start_checks_its_configuration(t *testing.T) {
	sinkURL := "http://broker-ingress.knative-eventing.svc.cluster.local/ocrflow/ocrflow"
	for _, tc := range []struct {
		name    string
		stages  string
		sink    string
		edit    func(env map[string]string)
		wantErr string // "" = Start succeeds
	}{
		{name: "convert without K_SINK", stages: "convert", wantErr: "K_SINK is empty"},
		{name: "default stages include convert, so K_SINK is needed", edit: func(env map[string]string) { delete(env, "OCR_STAGES") }, wantErr: "K_SINK is empty"},
		{name: "K_SINK that is not a URL", stages: "convert", sink: "broker-ingress", wantErr: "K_SINK"},
		{name: "unknown engine", stages: "recognize", edit: func(env map[string]string) { env["OCR_ENGINE"] = "gpt-9" }, wantErr: "OCR_ENGINE"},
		{name: "unknown stage", stages: "recognize,ocr", wantErr: "OCR_STAGES"},
		{name: "stages without convert need no K_SINK", stages: "recognize,finalize,deadletter"},
		{name: "convert with K_SINK", stages: "convert", sink: sinkURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t, tc.stages, tc.sink)
			if tc.edit != nil {
				tc.edit(env)
			}
			f := New()
			err := f.Start(t.Context(), env)
			t.Cleanup(func() { _ = f.Stop(context.Background()) })
			ready, _ := f.Ready(t.Context())
			if tc.wantErr == "" {
				if err != nil || !ready {
					t.Fatalf("Start: %v (ready %v), want success", err, ready)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Start: %v, want an error mentioning %q", err, tc.wantErr)
			}
			if ready {
				t.Fatal("Ready after a failed Start")
			}
		})
	}
}

func TestFunction_Handle_answers_by_outcome(t *testing.T) {
	missingImage := testEvent(t, events.PageRenderedID("j-transient", 1), events.TypePageRendered, "j-transient", 1, events.PageRendered{
		JobID: "j-transient", Page: 1, Pages: 1, Route: events.RouteOCR, ImageKey: "jobs/j-transient/pages/1.jpg",
	})
	deadPage := deadLetter(testEvent(t, events.PageRenderedID("j-dead", 2), events.TypePageRendered, "j-dead", 2, events.PageRendered{
		JobID: "j-dead", Page: 2, Pages: 3, Route: events.RouteOCR, ImageKey: "jobs/j-dead/pages/2.jpg",
	}), 503, "engine unavailable")
	unknownJob := testEvent(t, events.PageRecognizedID("j-unknown", 1), events.TypePageRecognized, "j-unknown", 1, events.PageRecognized{
		JobID: "j-unknown", Page: 1, Pages: 1, Status: events.PageOK,
	})
	malformed := malformedPage(t, "j-malformed")
	unrelated := testEvent(t, "x1", "com.example.unrelated", "", 0, map[string]string{})

	for _, tc := range []struct {
		name       string
		stages     string
		in         event.Event
		wantStatus int
		wantType   string   // reply type; "" = no reply
		wantBody   []string // substrings of the body (error answers)
		check      func(t *testing.T, reply *event.Event)
	}{
		{
			name: "job for a missing file replies ocr.job.failed (validation)", stages: allStages,
			in: jobEvent(t, "fn-missing", "missing.png"), wantStatus: 200, wantType: events.TypeJobFailed,
			check: func(t *testing.T, reply *event.Event) {
				f := decode[events.JobFailed](t, reply)
				if f.JobID != "fn-missing" || f.ErrorType != string(failure.TypeValidation) || !strings.Contains(f.Message, "missing.png") {
					t.Errorf("failed payload = %+v, want job fn-missing, validation, naming missing.png", f)
				}
			},
		},
		{
			name: "page event for a stage not served is refused with 400", stages: "finalize",
			in: missingImage, wantStatus: 400, wantBody: []string{events.TypePageRendered, "stage recognize", "serves finalize"},
		},
		{
			name: "event type no stage consumes is refused with 400", stages: allStages,
			in: unrelated, wantStatus: 400, wantBody: []string{"com.example.unrelated", "no stage"},
		},
		{
			name: "transient stage failure answers 503 for a retry", stages: "recognize",
			in: missingImage, wantStatus: 503, wantBody: []string{"transient", "page image"},
		},
		{
			name: "permanent failure the stage turns into a reply answers 200 with it", stages: "finalize",
			in: unknownJob, wantStatus: 200, wantType: events.TypeJobFailed,
			check: func(t *testing.T, reply *event.Event) {
				f := decode[events.JobFailed](t, reply)
				if f.JobID != "j-unknown" || f.ErrorType != string(failure.TypePermanent) || !strings.Contains(f.Message, "no manifest") {
					t.Errorf("failed payload = %+v, want job j-unknown, permanent, no manifest", f)
				}
			},
		},
		{
			name: "error the stage did not turn into a reply answers 500", stages: "finalize",
			in: malformed, wantStatus: 500, wantBody: []string{"permanent", "decode", events.TypePageRecognized},
		},
		{
			name: "dead letter goes to the deadletter stage and fails the page", stages: allStages,
			in: deadPage, wantStatus: 200, wantType: events.TypePageRecognized,
			check: func(t *testing.T, reply *event.Event) {
				p := decode[events.PageRecognized](t, reply)
				if p.JobID != "j-dead" || p.Page != 2 || p.Pages != 3 || p.Status != events.PageFailed || !strings.Contains(p.Reason, "engine unavailable") {
					t.Errorf("page payload = %+v, want j-dead page 2/3 failed with the dead letter's reason", p)
				}
				if _, ok := reply.Extensions()[events.ExtErrorCode]; ok {
					t.Error("the reply carries knativeerrorcode: it would be dead-lettered again")
				}
			},
		},
		{
			name: "dead letter without the deadletter stage is refused with 400", stages: "finalize",
			in: deadPage, wantStatus: 400, wantBody: []string{"not served here"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sinkURL := ""
			if strings.Contains(tc.stages, stage.Convert) {
				sinkURL = newCollector(t).srv.URL
			}
			srv := serve(t, started(t, testEnv(t, tc.stages, sinkURL)))
			a := post(t, srv.Client(), srv.URL, tc.in)
			if a.status != tc.wantStatus {
				t.Fatalf("status = %d (body %q), want %d", a.status, a.body, tc.wantStatus)
			}
			if len(a.body) >= 768 {
				t.Errorf("body is %d bytes, want < 768", len(a.body))
			}
			for _, s := range tc.wantBody {
				if !strings.Contains(a.body, s) {
					t.Errorf("body %q does not mention %q", a.body, s)
				}
			}
			if tc.wantType == "" {
				if a.reply != nil || a.ceType != "" {
					t.Fatalf("reply %v, want none", a.reply)
				}
				return
			}
			if a.reply == nil || a.reply.Type() != tc.wantType {
				t.Fatalf("reply = %v, want a %s event", a.reply, tc.wantType)
			}
			if a.reply.ID() == "" || a.reply.Source() == "" {
				t.Errorf("reply lacks id or source: %v", a.reply)
			}
			if tc.check != nil {
				tc.check(t, a.reply)
			}
		})
	}
}

// A page image goes through all three stages over HTTP: convert publishes
// ocr.job.started and one ocr.page.rendered to K_SINK, recognize replies
// ocr.page.recognized, finalize replies ocr.job.completed and writes the
// document.
func TestFunction_runs_a_job_through_the_broker(t *testing.T) {
	broker := newCollector(t)
	env := testEnv(t, allStages, broker.srv.URL)
	srv := serve(t, started(t, env))
	const id = "fn-page"

	a := post(t, srv.Client(), srv.URL, jobEvent(t, id, "page.png"))
	if a.status != http.StatusOK || a.reply != nil {
		t.Fatalf("convert: %d %q (reply %v), want 200 and no reply: the fan-out goes to the sink", a.status, a.body, a.reply)
	}
	sent := broker.events()
	var types []string
	for _, e := range sent {
		types = append(types, e.Type())
	}
	if !slices.Equal(types, []string{events.TypeJobStarted, events.TypePageRendered}) {
		t.Fatalf("sink got %v, want [started, page.rendered] in that order", types)
	}
	started := decode[events.JobStarted](t, &sent[0])
	if sent[0].ID() != events.StartedID(id) || started.JobID != id || started.Pages != 1 {
		t.Errorf("started = %s %+v, want id %s, 1 page", sent[0].ID(), started, events.StartedID(id))
	}
	rendered := sent[1]
	page := decode[events.PageRendered](t, &rendered)
	if rendered.ID() != events.PageRenderedID(id, 1) || page.JobID != id || page.Page != 1 || page.Pages != 1 {
		t.Errorf("page.rendered = %s %+v, want id %s, page 1 of 1", rendered.ID(), page, events.PageRenderedID(id, 1))
	}
	if job, _ := rendered.Extensions()[events.ExtJob].(string); job != id {
		t.Errorf("page.rendered ocrjob = %q, want %s", job, id)
	}

	// The broker delivers the fan-out to recognize ...
	a = post(t, srv.Client(), srv.URL, rendered)
	if a.status != http.StatusOK || a.reply == nil || a.reply.Type() != events.TypePageRecognized {
		t.Fatalf("recognize: %d %q (reply %v), want 200 with ocr.page.recognized", a.status, a.body, a.reply)
	}
	rec := decode[events.PageRecognized](t, a.reply)
	if rec.Status != events.PageOK || rec.Engine != engine.NameFake {
		t.Fatalf("page.recognized = %+v, want ok by the fake engine", rec)
	}
	// ... and its reply to finalize.
	a = post(t, srv.Client(), srv.URL, *a.reply)
	if a.status != http.StatusOK || a.reply == nil || a.reply.Type() != events.TypeJobCompleted {
		t.Fatalf("finalize: %d %q (reply %v), want 200 with ocr.job.completed", a.status, a.body, a.reply)
	}
	done := decode[events.JobCompleted](t, a.reply)
	if done.JobID != id || done.PageCount != 1 || len(done.FailedPages) != 0 {
		t.Fatalf("completed = %+v, want job %s with 1 page, none failed", done, id)
	}
	md, err := os.ReadFile(filepath.Join(env["OUTPUT_DIR"], "page.png.md"))
	if err != nil {
		t.Fatalf("result document: %v", err)
	}
	if !strings.Contains(string(md), "fake-ocr ") {
		t.Fatalf("result document %q lacks the fake engine's text", md)
	}
	if n := len(broker.events()); n != 2 {
		t.Errorf("sink got %d events in all, want only convert's 2", n)
	}
}

// The function builds and serves under func's host scaffolding, as
// `func run --builder=host` would run it (see package funchost).
func TestFunction_runs_under_func_host_scaffolding(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function binary (slow); skipped with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	build := filepath.Join(tmp, "build")
	if _, err := funchost.Scaffold(build, root); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	bin, err := funchost.Build(ctx, build)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scaffold build: %s", time.Since(start).Round(time.Millisecond))

	// A clean environment: nothing from the developer's shell leaks in.
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "TMPDIR=" + tmp,
		"OCR_ENGINE=fake", "OCR_STAGES=recognize,finalize,deadletter",
		"BLOB_URL=file://" + filepath.Join(tmp, "blobs"),
		"CONTENT_DIR=" + filepath.Join(root, "testdata"), "OUTPUT_DIR=" + filepath.Join(tmp, "out"),
		"LOG_LEVEL=info",
	}
	readyCtx, cancelReady := context.WithTimeout(ctx, 30*time.Second)
	defer cancelReady()
	start = time.Now()
	p, err := funchost.Start(readyCtx, bin, root, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("process start to ready: %s", time.Since(start).Round(time.Millisecond))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = p.Stop(stopCtx)
		}
	})
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	unknownJob := testEvent(t, events.PageRecognizedID("j-host", 1), events.TypePageRecognized, "j-host", 1, events.PageRecognized{
		JobID: "j-host", Page: 1, Pages: 1, Status: events.PageOK,
	})
	a := post(t, client, p.URL, unknownJob)
	if a.status != http.StatusOK || a.ceType != events.TypeJobFailed || a.reply == nil || a.reply.ID() != events.FailedID("j-host") {
		t.Errorf("page.recognized for an unknown job: %d Ce-Type %q reply %v, want 200 with ocr.job.failed %s",
			a.status, a.ceType, a.reply, events.FailedID("j-host"))
	}

	if a = post(t, client, p.URL, malformedPage(t, "j-host-bad")); a.status != http.StatusInternalServerError || a.ceType != "" || !strings.Contains(a.body, "decode") {
		t.Errorf("malformed page.recognized: %d Ce-Type %q body %q, want 500 without a reply", a.status, a.ceType, a.body)
	}

	dead := deadLetter(testEvent(t, events.PageRenderedID("j-host-dead", 1), events.TypePageRendered, "j-host-dead", 1, events.PageRendered{
		JobID: "j-host-dead", Page: 1, Pages: 1, Route: events.RouteOCR, ImageKey: "jobs/j-host-dead/pages/1.jpg",
	}), 500, "boom")
	a = post(t, client, p.URL, dead)
	if a.status != http.StatusOK || a.ceType != events.TypePageRecognized || a.reply == nil || a.reply.ID() != events.PageRecognizedID("j-host-dead", 1) {
		t.Errorf("dead letter: %d Ce-Type %q reply %v, want 200 with ocr.page.recognized %s", a.status, a.ceType, a.reply, events.PageRecognizedID("j-host-dead", 1))
	}

	misrouted := jobEvent(t, "j-host-job", "page.png")
	if a = post(t, client, p.URL, misrouted); a.status != http.StatusBadRequest || !strings.Contains(a.body, "stage convert") {
		t.Errorf("job to an instance without convert: %d %q, want 400 naming the convert stage", a.status, a.body)
	}

	stopCtx, cancelStop := context.WithTimeout(ctx, 40*time.Second)
	defer cancelStop()
	stopped = true
	if err := p.Stop(stopCtx); err != nil {
		t.Fatalf("stop: %v\noutput:\n%s", err, p.Output())
	}
	if t.Failed() {
		t.Logf("function output:\n%s", p.Output())
	}
}
