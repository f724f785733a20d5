package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/api"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/inproc"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/status"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

const testdata = "../../testdata"

// publisher records what the API publishes (or fails with err).
type publisher struct {
	mu   sync.Mutex
	sent []event.Event
	err  error
}

func (p *publisher) Send(_ context.Context, e event.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.sent = append(p.sent, e)
	return nil
}

func (p *publisher) events() []event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event.Event(nil), p.sent...)
}

// syncer answers POST /v1/ocr with run.
type syncer struct {
	run func(ctx context.Context, doc inproc.Document) (inproc.Result, error)
}

func (s syncer) Run(ctx context.Context, doc inproc.Document) (inproc.Result, error) {
	return s.run(ctx, doc)
}

// fixture is an API server on a real listener over a memory scratch store.
type fixture struct {
	t       *testing.T
	url     string
	store   *blob.Memory
	pub     *publisher
	logs    *lockedBuffer
	server  *api.Server
	tmp     string
	lastDoc chan inproc.Document
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// now is the fixed clock of status reads.
var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newFixture(t *testing.T, mod func(*api.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, store: blob.NewMemory(), pub: &publisher{}, logs: &lockedBuffer{}, tmp: t.TempDir(), lastDoc: make(chan inproc.Document, 1)}
	cfg := api.Config{
		Scratch: f.store, Publisher: f.pub, SyncMaxBytes: 1 << 20, TempDir: f.tmp,
		Log: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: func() time.Time { return now },
		Sync: syncer{run: func(_ context.Context, doc inproc.Document) (inproc.Result, error) {
			b, err := os.ReadFile(doc.Path)
			if err != nil {
				return inproc.Result{}, err
			}
			f.lastDoc <- doc
			return inproc.Result{JobID: "sync-0123456789abcdef", Markdown: []byte("# " + doc.Name + "\n\n" + string(b[:4])),
				Completed: events.JobCompleted{PageCount: 1, PagesByRoute: map[string]int{"text": 1}}}, nil
		}},
		Checks: []api.Check{{Name: "scratch", Target: "memory", Probe: func(context.Context) error { return nil }}},
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := api.New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	f.url, f.server = ts.URL, s
	return f
}

// do sends a request and returns the response with its body read.
func (f *fixture) do(method, path string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.url+path, body)
	require.NoError(f.t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	return resp, b
}

// putJob writes a job's durable state: submitted for tenant, and, when
// outcome is not "", its terminal outcome.
func (f *fixture) putJob(id, tenant, outcome string) {
	f.t.Helper()
	ctx := f.t.Context()
	e, err := job.NewEvent(job.Spec{ID: id, ContentID: "c-" + id, TenantID: tenant})
	require.NoError(f.t, err)
	require.NoError(f.t, scratch.Submit(ctx, f.store, id, "test", e))
	if outcome == "" {
		return
	}
	end := terminal(f.t, id, outcome)
	_, err = scratch.Conclude(ctx, f.store, id, "cause", end)
	require.NoError(f.t, err)
}

func terminal(t *testing.T, id, outcome string) event.Event {
	t.Helper()
	var e event.Event
	var err error
	if outcome == "completed" {
		e, err = events.New(nil, events.CompletedID(id), events.TypeJobCompleted, "/test", 0, id,
			events.JobCompleted{JobID: id, DerivedContentID: "d-" + id, PageCount: 1, PagesByRoute: map[string]int{"gpu": 1}})
	} else {
		e, err = events.Failed(nil, "/test", id, "", "permanent", "broken", 0)
	}
	require.NoError(t, err)
	return e
}

// schemas compiles the OpenAPI document's component schemas.
func schemas(t *testing.T) func(name string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(api.OpenAPI()))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	require.NoError(t, c.AddResource("https://ocrflow.invalid/openapi.json", doc))
	return func(name string) *jsonschema.Schema {
		s, err := c.Compile("https://ocrflow.invalid/openapi.json#/components/schemas/" + name)
		require.NoError(t, err, "schema %s", name)
		return s
	}
}

// conforms checks body against the document's schema name.
func conforms(t *testing.T, schema func(string) *jsonschema.Schema, name string, body []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	require.NoError(t, err, "body %s", body)
	assert.NoError(t, schema(name).Validate(v), "the %s answer does not match the OpenAPI document: %s", name, body)
}

func TestOpenAPI_describes_every_route_and_nothing_else(t *testing.T) {
	f := newFixture(t, func(c *api.Config) { c.Metrics = http.NotFoundHandler() })
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	resp, body := f.do(http.MethodGet, "/openapi.json", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.Unmarshal(body, &doc))
	assert.Equal(t, "3.1.0", doc.OpenAPI)
	registered := map[string]bool{}
	for _, r := range f.server.Routes() {
		registered[strings.ToLower(r.Method)+" "+r.Pattern] = true
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[method+" "+path] = true
		}
	}
	assert.Equal(t, registered, documented, "routes registered by the server vs operations in openapi.json")
	assert.Len(t, registered, 8, "the routes of the API, /metrics included")

	// Every operation answers its problems with the Problem schema.
	var full map[string]any
	require.NoError(t, json.Unmarshal(body, &full))
	for path, ops := range full["paths"].(map[string]any) {
		for method, op := range ops.(map[string]any) {
			resps := op.(map[string]any)["responses"].(map[string]any)
			for code, r := range resps {
				if code[0] == '4' || code[0] == '5' {
					ref, _ := r.(map[string]any)["$ref"].(string)
					assert.True(t, strings.HasPrefix(ref, "#/components/responses/"), "%s %s %s is not a problem response", method, path, code)
				}
			}
		}
	}
	schema := schemas(t)
	for _, name := range []string{"Problem", "Job", "Accepted", "OCRResult", "Readiness", "SubmitRequest", "CloudEvent", "Health"} {
		assert.NotNil(t, schema(name))
	}
}

func TestProblems(t *testing.T) {
	schema := schemas(t)
	big := bytes.Repeat([]byte("x"), 2<<20)
	random := make([]byte, 4096)
	_, _ = rand.Read(random)
	emptyForm := func() (io.Reader, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		require.NoError(t, mw.WriteField("note", "no file"))
		require.NoError(t, mw.Close())
		return &b, mw.FormDataContentType()
	}
	formBody, formType := emptyForm()
	for _, tc := range []struct {
		name         string
		mod          func(*api.Config)
		method, path string
		body         io.Reader
		header       map[string]string
		status       int
		problem      string
	}{
		{name: "unknown_job", method: "GET", path: "/v1/jobs/nope", status: 404, problem: api.ProblemNotFound},
		{name: "invalid_job_id", method: "GET", path: "/v1/jobs/..x", status: 404, problem: api.ProblemNotFound},
		{name: "unknown_job_events", method: "GET", path: "/v1/jobs/nope/events", status: 404, problem: api.ProblemNotFound},
		{name: "unknown_route", method: "GET", path: "/v2/things", status: 404, problem: api.ProblemNotFound},
		{name: "wrong_method", method: "DELETE", path: "/v1/jobs/x", status: 405, problem: api.ProblemMethodNotAllowed},
		{name: "malformed_json", method: "POST", path: "/v1/jobs", body: strings.NewReader(`{"content_id":`), status: 400, problem: api.ProblemMalformed},
		{name: "unknown_field", method: "POST", path: "/v1/jobs", body: strings.NewReader(`{"content_id":"c","colour":"red"}`), status: 400, problem: api.ProblemMalformed},
		{name: "missing_content_id", method: "POST", path: "/v1/jobs", body: strings.NewReader(`{"tenant_id":"t"}`), status: 400, problem: api.ProblemMalformed},
		{name: "nested_hint", method: "POST", path: "/v1/jobs", body: strings.NewReader(`{"content_id":"c","hints":{"pages":[1]}}`), status: 400, problem: api.ProblemMalformed},
		{name: "bad_hint", method: "POST", path: "/v1/jobs", body: strings.NewReader(`{"content_id":"c","hints":{"priority":"urgent"}}`), status: 422, problem: api.ProblemInvalidJob},
		{name: "bad_job_id", method: "POST", path: "/v1/jobs", body: strings.NewReader(`{"content_id":"c","job_id":"../x"}`), status: 422, problem: api.ProblemInvalidJob},
		{name: "not_a_cloudevent", method: "POST", path: "/v1/jobs", body: strings.NewReader(`{"id":"x"}`), header: map[string]string{"Content-Type": "application/cloudevents+json"}, status: 400, problem: api.ProblemMalformed},
		{name: "job_of_another_type", method: "POST", path: "/v1/jobs", body: strings.NewReader(`{}`), header: map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "x", "Ce-Type": "other", "Ce-Source": "/t", "Content-Type": "application/json"}, status: 422, problem: api.ProblemInvalidJob},
		{name: "job_body_of_plain_text", method: "POST", path: "/v1/jobs", body: strings.NewReader(`hello`), header: map[string]string{"Content-Type": "text/plain"}, status: 415, problem: api.ProblemUnsupportedMedia},
		{name: "job_body_too_large", method: "POST", path: "/v1/jobs", body: bytes.NewReader(append([]byte(`{"content_id":"`), big...)), status: 413, problem: api.ProblemTooLarge},
		{name: "publisher_down", mod: func(c *api.Config) { c.Publisher = &publisher{err: errors.New("nats: no servers")} }, method: "POST", path: "/v1/jobs", body: strings.NewReader(`{"content_id":"c"}`), status: 503, problem: api.ProblemNotReady},
		{name: "oversized_document", method: "POST", path: "/v1/ocr", body: bytes.NewReader(big), status: 413, problem: api.ProblemTooLarge},
		{name: "oversized_document_without_length", method: "POST", path: "/v1/ocr", body: io.MultiReader(bytes.NewReader(big)), status: 413, problem: api.ProblemTooLarge},
		{name: "random_bytes", method: "POST", path: "/v1/ocr", body: bytes.NewReader(random), status: 415, problem: api.ProblemNotADocument},
		{name: "empty_document", method: "POST", path: "/v1/ocr", body: strings.NewReader(""), status: 400, problem: api.ProblemMalformed},
		{name: "form_without_file", method: "POST", path: "/v1/ocr", body: formBody, header: map[string]string{"Content-Type": formType}, status: 400, problem: api.ProblemMalformed},
		{name: "unacceptable_answer", method: "POST", path: "/v1/ocr", body: strings.NewReader("x"), header: map[string]string{"Accept": "image/png"}, status: 406, problem: api.ProblemNotAcceptable},
		{name: "sync_not_configured", mod: func(c *api.Config) { c.Sync = nil }, method: "POST", path: "/v1/ocr", body: fileReader(t, "page.png"), status: 503, problem: api.ProblemNotReady},
		{name: "sync_times_out", mod: func(c *api.Config) {
			c.SyncTimeout = 20 * time.Millisecond
			c.Sync = syncer{run: func(ctx context.Context, _ inproc.Document) (inproc.Result, error) {
				<-ctx.Done()
				return inproc.Result{}, ctx.Err()
			}}
		}, method: "POST", path: "/v1/ocr", body: fileReader(t, "page.png"), status: 504, problem: api.ProblemTimeout},
		{name: "document_refused_by_the_pipeline", mod: func(c *api.Config) {
			c.Sync = syncer{run: func(context.Context, inproc.Document) (inproc.Result, error) {
				return inproc.Result{}, &inproc.JobError{JobID: "s", Failed: events.JobFailed{ErrorType: "validation", Message: "the document has 6 pages, more than MAX_PAGES=2"}}
			}}
		}, method: "POST", path: "/v1/ocr", body: fileReader(t, "report.pdf"), status: 422, problem: api.ProblemUnprocessable},
		{name: "engine_down_through_the_retries", mod: func(c *api.Config) {
			c.Sync = syncer{run: func(context.Context, inproc.Document) (inproc.Result, error) {
				return inproc.Result{}, &inproc.JobError{JobID: "s", Failed: events.JobFailed{ErrorType: "transient", Message: "retries exhausted"}}
			}}
		}, method: "POST", path: "/v1/ocr", body: fileReader(t, "page.png"), status: 503, problem: api.ProblemNotReady},
		{name: "bad_sync_hint", mod: func(c *api.Config) {
			c.Sync = syncer{run: func(_ context.Context, doc inproc.Document) (inproc.Result, error) {
				return inproc.Result{}, failure.Validation("hint text_layer=%q is not auto, off or only", doc.Hints["text_layer"])
			}}
		}, method: "POST", path: "/v1/ocr?text_layer=sometimes", body: fileReader(t, "page.png"), status: 422, problem: api.ProblemInvalidJob},
		{name: "dependency_down", mod: func(c *api.Config) {
			c.Checks = append(c.Checks, api.Check{Name: "transport", Probe: func(context.Context) error { return errors.New("nats: connection closed") }})
		}, method: "GET", path: "/readyz", status: 503, problem: api.ProblemNotReady},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.mod)
			resp, body := f.do(tc.method, tc.path, tc.body, tc.header)
			require.Equal(t, tc.status, resp.StatusCode, "body: %s", body)
			assert.Equal(t, api.ContentTypeProblem, resp.Header.Get("Content-Type"))
			conforms(t, schema, "Problem", body)
			var p api.Problem
			require.NoError(t, json.Unmarshal(body, &p))
			assert.Equal(t, api.ProblemBase+tc.problem, p.Type)
			assert.Equal(t, tc.status, p.Status)
			assert.NotEmpty(t, p.Title)
			assert.NotEmpty(t, p.Detail)
			assert.Equal(t, strings.Split(tc.path, "?")[0], p.Instance)
			assert.Equal(t, resp.Header.Get(api.HeaderRequestID), p.RequestID, "the problem names the request id")
			assert.Empty(t, f.pub.events(), "nothing is published for a refused request")
		})
	}
}

func fileReader(t *testing.T, name string) io.Reader {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	require.NoError(t, err)
	return bytes.NewReader(b)
}

func TestSubmit(t *testing.T) {
	schema := schemas(t)
	structured := func(id string) io.Reader {
		e, err := job.NewEvent(job.Spec{ID: id, ContentID: "doc-1", TenantID: "acme", Hints: map[string]string{"priority": "low"}})
		require.NoError(t, err)
		b, err := json.Marshal(e)
		require.NoError(t, err)
		return bytes.NewReader(b)
	}
	binaryEvent := func(id string) (io.Reader, map[string]string) {
		e, err := job.NewEvent(job.Spec{ID: id, ContentID: "doc-1", TenantID: "acme", Hints: map[string]string{"priority": "low"}})
		require.NoError(t, err)
		return bytes.NewReader(e.Data()), map[string]string{
			"Ce-Specversion": "1.0", "Ce-Id": e.ID(), "Ce-Type": e.Type(), "Ce-Source": e.Source(), "Ce-Uow": "ocr",
			"Ce-Ocrjob": e.ID(), "Content-Type": "application/json",
		}
	}
	binBody, binHeader := binaryEvent("job-binary")
	for _, tc := range []struct {
		name   string
		id     string // "" = generated
		body   io.Reader
		header map[string]string
	}{
		{"json_form", "job-json", strings.NewReader(`{"job_id":"job-json","content_id":"doc-1","tenant_id":"acme","hints":{"priority":"low","force":false}}`), nil},
		{"json_form_with_generated_id", "", strings.NewReader(`{"content_id":"doc-1","tenant_id":"acme","hints":{"priority":"low"}}`), nil},
		{"structured_cloudevent", "job-structured", structured("job-structured"), map[string]string{"Content-Type": "application/cloudevents+json"}},
		{"binary_cloudevent", "job-binary", binBody, binHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			resp, body := f.do(http.MethodPost, "/v1/jobs", tc.body, tc.header)
			require.Equal(t, http.StatusAccepted, resp.StatusCode, "body: %s", body)
			conforms(t, schema, "Accepted", body)
			var a api.Accepted
			require.NoError(t, json.Unmarshal(body, &a))
			if tc.id != "" {
				assert.Equal(t, tc.id, a.JobID)
			}
			assert.True(t, job.ValidID(a.JobID))
			assert.Equal(t, "/v1/jobs/"+a.JobID, resp.Header.Get("Location"))
			assert.Equal(t, status.Queued, a.State)

			sent := f.pub.events()
			require.Len(t, sent, 1, "published jobs")
			j, err := job.Parse(sent[0])
			require.NoError(t, err, "the published event is a valid job")
			assert.Equal(t, a.JobID, j.ID)
			assert.Equal(t, "doc-1", j.ContentID)
			assert.Equal(t, "acme", j.TenantID)
			assert.Equal(t, job.PriorityLow, j.Hints.Priority)
			assert.Equal(t, events.UoW, sent[0].Extensions()[events.ExtUoW], "the uow extension Triggers filter on")

			var sub scratch.Submitted
			require.NoError(t, scratch.GetJSON(t.Context(), f.store, scratch.SubmittedKey(a.JobID), &sub), "submitted record")
			assert.Equal(t, api.SubmittedBy, sub.By)

			resp, body = f.do(http.MethodGet, "/v1/jobs/"+a.JobID, nil, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
			conforms(t, schema, "Job", body)
			var st status.Job
			require.NoError(t, json.Unmarshal(body, &st))
			assert.Equal(t, status.Queued, st.State, "a job is visible as queued before convert starts it")

			if tc.id != "" {
				again := `{"job_id":"` + tc.id + `","content_id":"doc-2"}`
				resp, body = f.do(http.MethodPost, "/v1/jobs", strings.NewReader(again), nil)
				assert.Equal(t, http.StatusConflict, resp.StatusCode, "a second job with the same id: %s", body)
				assert.Len(t, f.pub.events(), 1, "the second job is not published")
			}
		})
	}
}

func TestTokens_scope_tenants(t *testing.T) {
	schema := schemas(t)
	f := newFixture(t, func(c *api.Config) { c.Tokens = map[string]string{"tok-a": "acme", "tok-b": "globex"} })
	f.putJob("job-acme", "acme", "completed")
	f.putJob("job-globex", "globex", "")
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	for _, tc := range []struct {
		name         string
		method, path string
		body         string
		header       map[string]string
		status       int
		// tenant is the tenant of the published job, for 202s.
		tenant string
	}{
		{name: "no_token", method: "GET", path: "/v1/jobs/job-acme", status: 401},
		{name: "unknown_token", method: "GET", path: "/v1/jobs/job-acme", header: bearer("tok-c"), status: 401},
		{name: "other_scheme", method: "GET", path: "/v1/jobs/job-acme", header: map[string]string{"Authorization": "Basic dG9rLWE6"}, status: 401},
		{name: "own_job", method: "GET", path: "/v1/jobs/job-acme", header: bearer("tok-a"), status: 200},
		{name: "another_tenants_job_is_not_found", method: "GET", path: "/v1/jobs/job-globex", header: bearer("tok-a"), status: 404},
		{name: "another_tenants_job_events_are_not_found", method: "GET", path: "/v1/jobs/job-globex/events", header: bearer("tok-a"), status: 404},
		{name: "the_other_token_sees_its_job", method: "GET", path: "/v1/jobs/job-globex", header: bearer("tok-b"), status: 200},
		{name: "submission_for_another_tenant_is_forbidden", method: "POST", path: "/v1/jobs", body: `{"content_id":"c","tenant_id":"globex"}`, header: bearer("tok-a"), status: 403},
		{name: "submission_without_a_tenant_takes_the_tokens", method: "POST", path: "/v1/jobs", body: `{"content_id":"c"}`, header: bearer("tok-a"), status: 202, tenant: "acme"},
		{name: "submission_for_its_tenant", method: "POST", path: "/v1/jobs", body: `{"content_id":"c","tenant_id":"globex"}`, header: bearer("tok-b"), status: 202, tenant: "globex"},
		{name: "sync_ocr_needs_a_token", method: "POST", path: "/v1/ocr", body: "%PDF", status: 401},
		{name: "health_needs_none", method: "GET", path: "/healthz", status: 200},
		{name: "readiness_needs_none", method: "GET", path: "/readyz", status: 200},
		{name: "openapi_needs_none", method: "GET", path: "/openapi.json", status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.pub.events())
			resp, body := f.do(tc.method, tc.path, strings.NewReader(tc.body), tc.header)
			require.Equal(t, tc.status, resp.StatusCode, "body: %s", body)
			if tc.status >= 400 {
				conforms(t, schema, "Problem", body)
			}
			if tc.status == 401 {
				assert.Equal(t, `Bearer realm="ocrflow"`, resp.Header.Get("WWW-Authenticate"))
			}
			sent := f.pub.events()[before:]
			if tc.tenant == "" {
				assert.Empty(t, sent, "published")
				return
			}
			require.Len(t, sent, 1)
			j, err := job.Parse(sent[0])
			require.NoError(t, err)
			assert.Equal(t, tc.tenant, j.TenantID)
		})
	}
}

func TestCORS(t *testing.T) {
	for _, tc := range []struct {
		name    string
		origins []string
		method  string
		header  map[string]string
		status  int
		// allow is the Access-Control-Allow-Origin answered ("" = none).
		allow, allowHeaders string
	}{
		{name: "off_by_default", method: "GET", header: map[string]string{"Origin": "https://app.example"}, status: 200},
		{name: "preflight_off_by_default", method: "OPTIONS", header: map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}, status: 405},
		{name: "allowed_origin", origins: []string{"https://app.example"}, method: "GET", header: map[string]string{"Origin": "https://app.example"}, status: 200, allow: "https://app.example"},
		{name: "other_origin", origins: []string{"https://app.example"}, method: "GET", header: map[string]string{"Origin": "https://evil.example"}, status: 200},
		{name: "preflight_of_an_allowed_origin", origins: []string{"https://app.example"}, method: "OPTIONS",
			header: map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type, x-secret"},
			status: 204, allow: "https://app.example", allowHeaders: "Authorization, Content-Type"},
		{name: "preflight_of_a_method_not_served", origins: []string{"https://app.example"}, method: "OPTIONS",
			header: map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"}, status: 204},
		{name: "any_origin", origins: []string{"*"}, method: "GET", header: map[string]string{"Origin": "https://anyone.example"}, status: 200, allow: "*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *api.Config) { c.CORSOrigins = tc.origins })
			resp, body := f.do(tc.method, "/healthz", nil, tc.header)
			require.Equal(t, tc.status, resp.StatusCode, "body: %s", body)
			assert.Equal(t, tc.allow, resp.Header.Get("Access-Control-Allow-Origin"))
			assert.Equal(t, tc.allowHeaders, resp.Header.Get("Access-Control-Allow-Headers"))
			if tc.allow != "" && tc.method == "GET" {
				assert.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id")
			}
		})
	}
	_, err := api.New(api.Config{Scratch: blob.NewMemory(), Publisher: &publisher{}, CORSOrigins: []string{"app.example"}})
	assert.Error(t, err, "an origin without a scheme is refused")
}

func TestRequestID_in_the_answer_and_every_log_line(t *testing.T) {
	for _, tc := range []struct {
		name, sent string
		// kept says whether the sent id is honoured.
		kept bool
	}{
		{"caller_id_is_honoured", "req-42.a:b", true},
		{"missing_id_is_generated", "", false},
		{"unreasonable_id_is_replaced", "bad id with spaces", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			header := map[string]string{"Content-Type": "application/json"}
			if tc.sent != "" {
				header[api.HeaderRequestID] = tc.sent
			}
			resp, body := f.do(http.MethodPost, "/v1/jobs", strings.NewReader(`{"content_id":"doc-1"}`), header)
			require.Equal(t, http.StatusAccepted, resp.StatusCode, "body: %s", body)
			id := resp.Header.Get(api.HeaderRequestID)
			if tc.kept {
				assert.Equal(t, tc.sent, id)
			} else {
				assert.Regexp(t, `^[0-9a-f]{24}$`, id)
			}
			var lines int
			sc := bufio.NewScanner(strings.NewReader(f.logs.String()))
			for sc.Scan() {
				var rec map[string]any
				require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
				lines++
				assert.Equal(t, id, rec["request_id"], "log line without the request id: %s", sc.Text())
			}
			assert.GreaterOrEqual(t, lines, 2, "the request logs its job and itself")
		})
	}
}

func TestOCR_answers(t *testing.T) {
	schema := schemas(t)
	form := func(field, name string) (io.Reader, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		require.NoError(t, mw.WriteField("note", "before the file"))
		w, err := mw.CreateFormFile(field, name)
		require.NoError(t, err)
		_, err = io.Copy(w, fileReader(t, "report.pdf"))
		require.NoError(t, err)
		require.NoError(t, mw.Close())
		return &b, mw.FormDataContentType()
	}
	formBody, formType := form("file", "dir/report.pdf")
	for _, tc := range []struct {
		name   string
		path   string
		body   io.Reader
		header map[string]string
		// contentType is the answer's; docName the document's as the runner got it.
		contentType, docName string
		hints                map[string]string
	}{
		{"raw_body_answers_markdown", "/v1/ocr", fileReader(t, "report.pdf"), map[string]string{"Content-Type": "application/pdf"}, "text/markdown; charset=utf-8", "document", nil},
		{"raw_body_named_by_content_disposition", "/v1/ocr", fileReader(t, "report.pdf"), map[string]string{"Content-Disposition": `attachment; filename="report.pdf"`}, "text/markdown; charset=utf-8", "report.pdf", nil},
		{"json_when_accepted", "/v1/ocr?pages=1-2", fileReader(t, "report.pdf"), map[string]string{"Accept": "text/markdown;q=0.5, application/json"}, "application/json", "document", map[string]string{"pages": "1-2"}},
		{"multipart_file", "/v1/ocr", formBody, map[string]string{"Content-Type": formType}, "text/markdown; charset=utf-8", "report.pdf", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			resp, body := f.do(http.MethodPost, tc.path, tc.body, tc.header)
			require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
			assert.Equal(t, tc.contentType, resp.Header.Get("Content-Type"))
			assert.Equal(t, "sync-0123456789abcdef", resp.Header.Get("X-Ocrflow-Job-Id"))
			doc := <-f.lastDoc
			assert.Equal(t, tc.docName, doc.Name)
			assert.Equal(t, tc.hints, doc.Hints)
			md := "# " + tc.docName + "\n\n%PDF"
			if tc.contentType == "application/json" {
				conforms(t, schema, "OCRResult", body)
				var res api.OCRResult
				require.NoError(t, json.Unmarshal(body, &res))
				assert.Equal(t, md, res.Markdown)
				assert.Equal(t, 1, res.PageCount)
			} else {
				assert.Equal(t, md, string(body))
			}
			entries, err := os.ReadDir(f.tmp)
			require.NoError(t, err)
			assert.Empty(t, entries, "the request's temp files are removed")
		})
	}
}

func TestReadiness_lists_every_dependency(t *testing.T) {
	schema := schemas(t)
	f := newFixture(t, func(c *api.Config) {
		c.Checks = []api.Check{
			{Name: "transport", Target: "nats://x", Probe: func(context.Context) error { return nil }},
			{Name: "scratch", Target: "file:///b", Probe: func(context.Context) error { return nil }},
			{Name: "content", Target: "/c", Probe: func(context.Context) error { return nil }},
		}
	})
	resp, body := f.do(http.MethodGet, "/readyz", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	conforms(t, schema, "Readiness", body)
	var r api.Readiness
	require.NoError(t, json.Unmarshal(body, &r))
	var names []string
	for _, c := range r.Checks {
		names = append(names, c.Name+"="+c.Status)
	}
	assert.Equal(t, []string{"transport=up", "scratch=up", "content=up"}, names)

	resp, body = f.do(http.MethodGet, "/healthz", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	conforms(t, schema, "Health", body)
}
