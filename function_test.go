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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, err)
	dir := t.TempDir()
	env := map[string]string{
		"OCR_ENGINE":    "fake",
		"OCR_STAGES":    stages,
		"BLOB_URL":      "file://" + filepath.Join(dir, "blobs"),
		"CONTENT_STORE": "dir",
		"CONTENT_DIR":   content,
		"OUTPUT_DIR":    filepath.Join(dir, "out"),
		"LOG_LEVEL":     "error",
		"METRICS_ADDR":  "127.0.0.1:0",
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
	require.NoError(t, f.Start(t.Context(), env), "Start")
	t.Cleanup(func() {
		assert.NoError(t, f.Stop(context.Background()), "Stop")
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
	require.NoError(t, err)
	require.NoError(t, cehttp.WriteRequest(binding.WithForceBinary(ctx), binding.ToMessage(&e), req))
	resp, err := client.Do(req)
	require.NoError(t, err, "post %s", e.Type())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{status: resp.StatusCode, body: string(body), ceType: resp.Header.Get("Ce-Type")}
	if resp.Header.Get("Ce-Id") != "" {
		reply, err := binding.ToEvent(ctx, cehttp.NewMessage(resp.Header, io.NopCloser(bytes.NewReader(body))))
		require.NoError(t, err, "decode reply to %s", e.Type())
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
	require.NoError(t, err)
	h, err := cloudevents.NewHTTPReceiveHandler(t.Context(), p, func(_ context.Context, e event.Event) protocol.Result {
		c.mu.Lock()
		c.got = append(c.got, e)
		c.mu.Unlock()
		return cehttp.NewResult(http.StatusAccepted, "")
	})
	require.NoError(t, err)
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
	require.NoError(t, err)
	return e
}

func testEvent(t *testing.T, id, typ, jobID string, page int, payload any) event.Event {
	t.Helper()
	e, err := events.New(nil, id, typ, "/test", page, jobID, payload)
	require.NoError(t, err)
	return e
}

// malformedPage is an ocr.page.recognized whose data is not JSON: no stage
// can make a reply of it.
func malformedPage(t *testing.T, jobID string) event.Event {
	t.Helper()
	e := testEvent(t, events.PageRecognizedID(jobID, 1), events.TypePageRecognized, jobID, 1, nil)
	require.NoError(t, e.SetData(event.ApplicationJSON, []byte("{not json")))
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
	require.NoError(t, events.Decode(*e, &v))
	return v
}

func TestFunction_is_ready_only_between_Start_and_Stop(t *testing.T) {
	f := New()
	srv := serve(t, f)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ready := func() bool {
		t.Helper()
		ok, err := f.Ready(t.Context())
		require.NoError(t, err, "Ready")
		return ok
	}

	assert.False(t, ready(), "Ready before Start")
	code, _ := get("/health/readiness")
	assert.Equal(t, http.StatusServiceUnavailable, code, "readiness before Start")
	code, body := get("/health/liveness")
	assert.Equal(t, http.StatusOK, code, "liveness")
	assert.Equal(t, "ALIVE", body, "liveness")
	// An event that arrives before Start is retried, not dropped.
	early := testEvent(t, "early", events.TypePageRecognized, "j", 1, events.PageRecognized{JobID: "j", Page: 1, Pages: 1})
	a := post(t, srv.Client(), srv.URL, early)
	assert.Equal(t, http.StatusServiceUnavailable, a.status, "event before Start (body %q)", a.body)
	assert.Contains(t, a.body, "not ready", "event before Start")

	require.NoError(t, f.Start(t.Context(), testEnv(t, "finalize", "")), "Start")
	assert.True(t, ready(), "not Ready after Start")
	code, body = get("/health/readiness")
	assert.Equal(t, http.StatusOK, code, "readiness after Start")
	assert.Equal(t, "READY", body, "readiness after Start")
	assert.Error(t, f.Start(t.Context(), testEnv(t, "finalize", "")), "second Start succeeded, want an error")

	require.NoError(t, f.Stop(t.Context()), "Stop")
	assert.False(t, ready(), "Ready after Stop")
	code, _ = get("/health/readiness")
	assert.Equal(t, http.StatusServiceUnavailable, code, "readiness after Stop")
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
				require.NoError(t, err, "Start, want success")
				assert.True(t, ready, "not Ready after Start")
				return
			}
			require.ErrorContains(t, err, tc.wantErr, "Start")
			assert.False(t, ready, "Ready after a failed Start")
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
				assert.Equal(t, "fn-missing", f.JobID, "failed payload job")
				assert.Equal(t, string(failure.TypeValidation), f.ErrorType, "failed payload error type")
				assert.Contains(t, f.Message, "missing.png", "failed payload message")
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
				assert.Equal(t, "j-unknown", f.JobID, "failed payload job")
				assert.Equal(t, string(failure.TypePermanent), f.ErrorType, "failed payload error type")
				assert.Contains(t, f.Message, "no manifest", "failed payload message")
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
				assert.Equal(t, "j-dead", p.JobID, "page payload job")
				assert.Equal(t, 2, p.Page, "page payload page")
				assert.Equal(t, 3, p.Pages, "page payload pages")
				assert.Equal(t, events.PageFailed, p.Status, "page payload status")
				assert.Contains(t, p.Reason, "engine unavailable", "page payload: want the dead letter's reason")
				assert.NotContains(t, reply.Extensions(), events.ExtErrorCode, "the reply carries knativeerrorcode: it would be dead-lettered again")
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
			require.Equal(t, tc.wantStatus, a.status, "status (body %q)", a.body)
			assert.Less(t, len(a.body), 768, "body bytes")
			for _, s := range tc.wantBody {
				assert.Contains(t, a.body, s, "body")
			}
			if tc.wantType == "" {
				assert.Nil(t, a.reply, "reply, want none")
				assert.Empty(t, a.ceType, "Ce-Type, want no reply")
				return
			}
			require.NotNil(t, a.reply, "reply, want a %s event", tc.wantType)
			require.Equal(t, tc.wantType, a.reply.Type(), "reply type")
			assert.NotEmpty(t, a.reply.ID(), "reply lacks id: %v", a.reply)
			assert.NotEmpty(t, a.reply.Source(), "reply lacks source: %v", a.reply)
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
	require.Equal(t, http.StatusOK, a.status, "convert (body %q)", a.body)
	require.Nil(t, a.reply, "convert replied: the fan-out goes to the sink")
	sent := broker.events()
	var types []string
	for _, e := range sent {
		types = append(types, e.Type())
	}
	require.Equal(t, []string{events.TypeJobStarted, events.TypePageRendered}, types, "sink got, want [started, page.rendered] in that order")
	started := decode[events.JobStarted](t, &sent[0])
	assert.Equal(t, events.StartedID(id), sent[0].ID(), "started id")
	assert.Equal(t, id, started.JobID, "started job")
	assert.Equal(t, 1, started.Pages, "started pages")
	rendered := sent[1]
	page := decode[events.PageRendered](t, &rendered)
	assert.Equal(t, events.PageRenderedID(id, 1), rendered.ID(), "page.rendered id")
	assert.Equal(t, id, page.JobID, "page.rendered job")
	assert.Equal(t, 1, page.Page, "page.rendered page")
	assert.Equal(t, 1, page.Pages, "page.rendered pages")
	assert.Equal(t, id, rendered.Extensions()[events.ExtJob], "page.rendered ocrjob")

	// The broker delivers the fan-out to recognize ...
	a = post(t, srv.Client(), srv.URL, rendered)
	require.Equal(t, http.StatusOK, a.status, "recognize (body %q)", a.body)
	require.NotNil(t, a.reply, "recognize: want a reply")
	require.Equal(t, events.TypePageRecognized, a.reply.Type(), "recognize reply")
	rec := decode[events.PageRecognized](t, a.reply)
	require.Equal(t, events.PageOK, rec.Status, "page.recognized = %+v, want ok by the fake engine", rec)
	require.Equal(t, engine.NameFake, rec.Engine, "page.recognized = %+v, want ok by the fake engine", rec)
	// ... and its reply to finalize.
	a = post(t, srv.Client(), srv.URL, *a.reply)
	require.Equal(t, http.StatusOK, a.status, "finalize (body %q)", a.body)
	require.NotNil(t, a.reply, "finalize: want a reply")
	require.Equal(t, events.TypeJobCompleted, a.reply.Type(), "finalize reply")
	done := decode[events.JobCompleted](t, a.reply)
	assert.Equal(t, id, done.JobID, "completed job")
	assert.Equal(t, 1, done.PageCount, "completed pages")
	assert.Empty(t, done.FailedPages, "completed failed pages")
	md, err := os.ReadFile(filepath.Join(env["OUTPUT_DIR"], "page.png.md"))
	require.NoError(t, err, "result document")
	assert.Contains(t, string(md), "fake-ocr ", "result document lacks the fake engine's text")
	assert.Len(t, broker.events(), 2, "sink events in all, want only convert's 2")
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
	require.NoError(t, err)
	tmp := t.TempDir()
	build := filepath.Join(tmp, "build")
	_, err = funchost.Scaffold(build, root)
	require.NoError(t, err)
	start := time.Now()
	bin, err := funchost.Build(ctx, build)
	require.NoError(t, err)
	t.Logf("scaffold build: %s", time.Since(start).Round(time.Millisecond))

	// A clean environment: nothing from the developer's shell leaks in.
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "TMPDIR=" + tmp,
		"OCR_ENGINE=fake", "OCR_STAGES=recognize,finalize,deadletter",
		"BLOB_URL=file://" + filepath.Join(tmp, "blobs"),
		"CONTENT_DIR=" + filepath.Join(root, "testdata"), "OUTPUT_DIR=" + filepath.Join(tmp, "out"),
		"LOG_LEVEL=info", "METRICS_ADDR=127.0.0.1:0",
	}
	readyCtx, cancelReady := context.WithTimeout(ctx, 30*time.Second)
	defer cancelReady()
	start = time.Now()
	p, err := funchost.Start(readyCtx, bin, root, env)
	require.NoError(t, err)
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
	assert.Equal(t, http.StatusOK, a.status, "page.recognized for an unknown job: status")
	assert.Equal(t, events.TypeJobFailed, a.ceType, "page.recognized for an unknown job: Ce-Type")
	if assert.NotNil(t, a.reply, "page.recognized for an unknown job: want ocr.job.failed") {
		assert.Equal(t, events.FailedID("j-host"), a.reply.ID(), "page.recognized for an unknown job: reply id")
	}

	a = post(t, client, p.URL, malformedPage(t, "j-host-bad"))
	assert.Equal(t, http.StatusInternalServerError, a.status, "malformed page.recognized: status (body %q)", a.body)
	assert.Empty(t, a.ceType, "malformed page.recognized: want no reply")
	assert.Contains(t, a.body, "decode", "malformed page.recognized: body")

	dead := deadLetter(testEvent(t, events.PageRenderedID("j-host-dead", 1), events.TypePageRendered, "j-host-dead", 1, events.PageRendered{
		JobID: "j-host-dead", Page: 1, Pages: 1, Route: events.RouteOCR, ImageKey: "jobs/j-host-dead/pages/1.jpg",
	}), 500, "boom")
	a = post(t, client, p.URL, dead)
	assert.Equal(t, http.StatusOK, a.status, "dead letter: status (body %q)", a.body)
	assert.Equal(t, events.TypePageRecognized, a.ceType, "dead letter: Ce-Type")
	if assert.NotNil(t, a.reply, "dead letter: want ocr.page.recognized") {
		assert.Equal(t, events.PageRecognizedID("j-host-dead", 1), a.reply.ID(), "dead letter: reply id")
	}

	misrouted := jobEvent(t, "j-host-job", "page.png")
	a = post(t, client, p.URL, misrouted)
	assert.Equal(t, http.StatusBadRequest, a.status, "job to an instance without convert: status (body %q)", a.body)
	assert.Contains(t, a.body, "stage convert", "job to an instance without convert: want 400 naming the convert stage")

	stopCtx, cancelStop := context.WithTimeout(ctx, 40*time.Second)
	defer cancelStop()
	stopped = true
	require.NoError(t, p.Stop(stopCtx), "stop\noutput:\n%s", p.Output())
	if t.Failed() {
		t.Logf("function output:\n%s", p.Output())
	}
}
