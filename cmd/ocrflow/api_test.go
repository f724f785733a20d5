package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/api"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/standalone"
	"github.com/ocrflow/ocrflow/shared/status"
)

// noticeWriter is a syncBuffer that closes seen once its text contains want.
type noticeWriter struct {
	syncBuffer
	want string
	seen chan struct{}
	once sync.Once
}

func (n *noticeWriter) Write(p []byte) (int, error) {
	w, err := n.syncBuffer.Write(p)
	if strings.Contains(n.String(), n.want) {
		n.once.Do(func() { close(n.seen) })
	}
	return w, err
}

var listening = regexp.MustCompile(`msg="api listening" addr=(\S+)`)

// apiProcess is a running `ocrflow api`.
type apiProcess struct {
	url  string
	stop context.CancelFunc
	done chan int
	out  *noticeWriter
}

// startAPI runs `ocrflow api --addr 127.0.0.1:0` until stopped and
// returns it once it listens.
func startAPI(t *testing.T) *apiProcess {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	p := &apiProcess{stop: stop, done: make(chan int, 1), out: &noticeWriter{want: "api listening", seen: make(chan struct{})}}
	go func() { p.done <- run(ctx, []string{"api", "--addr", "127.0.0.1:0"}, p.out, p.out) }()
	select {
	case <-p.out.seen:
	case code := <-p.done:
		stop()
		require.FailNowf(t, "api exited before it listened", "exit %d:\n%s", code, p.out.String())
	case <-time.After(30 * time.Second):
		stop()
		require.FailNowf(t, "api did not listen within 30s", "%s", p.out.String())
	}
	m := listening.FindStringSubmatch(p.out.String())
	require.NotNil(t, m, "listening line in:\n%s", p.out.String())
	p.url = "http://" + m[1]
	t.Cleanup(func() { p.shutdown(t) })
	return p
}

// shutdown stops the process (SIGTERM's path) and checks it exits 0.
func (p *apiProcess) shutdown(t *testing.T) {
	t.Helper()
	if p.stop == nil {
		return
	}
	p.stop()
	p.stop = nil
	select {
	case code := <-p.done:
		assert.Equal(t, 0, code, "api exit code after shutdown:\n%s", p.out.String())
	case <-time.After(30 * time.Second):
		assert.Fail(t, "api did not stop within 30s")
	}
}

// call sends a request with an optional bearer token and returns the
// answer with its body.
func call(t *testing.T, method, url, token string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// follow reads a job's event stream to its end and returns the names of
// its events.
func follow(t *testing.T, url, token string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var names []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			names = append(names, name)
		}
	}
	require.NoError(t, ctx.Err(), "the stream did not end within 60s; events: %v", names)
	return names
}

// pipelineEnv points the command's configuration at a fresh NATS server
// and work directory (fake engine, directory content store on testdata).
func pipelineEnv(t *testing.T) (work string) {
	t.Helper()
	isolate(t)
	srv, err := standalone.StartServer(standalone.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	work = t.TempDir()
	t.Setenv("NATS_URL", srv.ClientURL())
	t.Setenv("OCR_ENGINE", "fake")
	t.Setenv("BLOB_URL", "file://"+filepath.Join(work, "blobs"))
	t.Setenv("CONTENT_DIR", testdata(t, "."))
	t.Setenv("OUTPUT_DIR", filepath.Join(work, "out"))
	return work
}

// TestAPI_end_to_end runs `ocrflow serve` and `ocrflow api` on NATS:
// a job submitted over HTTP completes, a second api process started
// after the first has stopped answers for it, and the synchronous route
// and the problems answer as documented.
func TestAPI_end_to_end(t *testing.T) {
	work := pipelineEnv(t)
	t.Setenv("LOG_LEVEL", "info")
	t.Setenv("API_TOKENS", "tok-acme:acme,tok-globex:globex")
	t.Setenv("SYNC_MAX_BYTES", "1000000")

	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan int, 1)
	var serveOut syncBuffer
	go func() { served <- run(serveCtx, []string{"serve"}, &serveOut, &serveOut) }()
	defer func() {
		stopServe()
		select {
		case code := <-served:
			assert.Equal(t, 0, code, "serve exit code:\n%s", serveOut.String())
		case <-time.After(30 * time.Second):
			assert.Fail(t, "serve did not stop")
		}
	}()

	first := startAPI(t)
	resp, body := call(t, http.MethodGet, first.url+"/readyz", "", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "readiness: %s", body)
	var ready api.Readiness
	require.NoError(t, json.Unmarshal(body, &ready))
	var checks []string
	for _, c := range ready.Checks {
		checks = append(checks, c.Name+"="+c.Status)
	}
	assert.Equal(t, []string{"transport=up", "scratch=up", "content=up"}, checks)

	resp, body = call(t, http.MethodPost, first.url+"/v1/jobs", "tok-acme", strings.NewReader(`{"content_id":"page.png","hints":{"text_layer":"off"}}`), nil)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "submit: %s\nserve:\n%s", body, serveOut.String())
	var accepted api.Accepted
	require.NoError(t, json.Unmarshal(body, &accepted))
	id := accepted.JobID
	require.Equal(t, "/v1/jobs/"+id, resp.Header.Get("Location"))

	names := follow(t, first.url+"/v1/jobs/"+id+"/events", "tok-acme")
	require.NotEmpty(t, names)
	assert.Equal(t, api.EventStatus, names[0], "the stream starts with the status")
	assert.Equal(t, events.TypeJobCompleted, names[len(names)-1], "the stream ends with the terminal event: %v", names)

	wantResult := filepath.Join(work, "out", "page.png.md")
	read := func(t *testing.T, base string) status.Job {
		t.Helper()
		resp, body := call(t, http.MethodGet, base+"/v1/jobs/"+id, "tok-acme", nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "status: %s", body)
		var st status.Job
		require.NoError(t, json.Unmarshal(body, &st))
		return st
	}
	st := read(t, first.url)
	assert.Equal(t, status.Completed, st.State)
	assert.Equal(t, wantResult, st.DerivedContentID, "the derived content id (the directory store's result path)")
	assert.Equal(t, "acme", st.TenantID, "the token's tenant")
	_, err := os.Stat(wantResult)
	assert.NoError(t, err, "the result was stored")

	random := make([]byte, 64<<10)
	_, _ = rand.Read(random)
	report, err := os.ReadFile(testdata(t, "report.pdf"))
	require.NoError(t, err)
	for _, tc := range []struct {
		name, method, path, token string
		body                      []byte
		status                    int
		// want is in the body of a 200; problem is the type of an error.
		want, problem string
	}{
		{name: "another_tenant_does_not_see_the_job", method: "GET", path: "/v1/jobs/" + id, token: "tok-globex", status: 404, problem: api.ProblemNotFound},
		{name: "no_token_is_unauthorized", method: "GET", path: "/v1/jobs/" + id, status: 401, problem: api.ProblemUnauthorized},
		{name: "unknown_job_is_a_404_problem", method: "GET", path: "/v1/jobs/job-nobody-submitted", token: "tok-acme", status: 404, problem: api.ProblemNotFound},
		{name: "sync_ocr_of_a_pdf_returns_its_markdown", method: "POST", path: "/v1/ocr", token: "tok-acme", body: report, status: 200, want: "# Page 1: Introduction and Scope"},
		{name: "oversized_body_is_a_413_problem", method: "POST", path: "/v1/ocr", token: "tok-acme", body: bytes.Repeat(report, 80), status: 413, problem: api.ProblemTooLarge},
		{name: "random_bytes_are_a_415_problem", method: "POST", path: "/v1/ocr", token: "tok-acme", body: random, status: 415, problem: api.ProblemNotADocument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(t, tc.method, first.url+tc.path, tc.token, bytes.NewReader(tc.body), nil)
			require.Equal(t, tc.status, resp.StatusCode, "body: %s", body)
			if tc.problem == "" {
				assert.Equal(t, "text/markdown; charset=utf-8", resp.Header.Get("Content-Type"))
				assert.Contains(t, string(body), tc.want)
				return
			}
			assert.Equal(t, api.ContentTypeProblem, resp.Header.Get("Content-Type"))
			var p api.Problem
			require.NoError(t, json.Unmarshal(body, &p))
			assert.Equal(t, api.ProblemBase+tc.problem, p.Type)
			assert.Equal(t, tc.status, p.Status)
		})
	}

	first.shutdown(t)
	second := startAPI(t)
	again := read(t, second.url)
	assert.Equal(t, status.Completed, again.State, "a second api process answers for the job")
	assert.Equal(t, st.DerivedContentID, again.DerivedContentID)
	assert.Equal(t, st.FinishedAt, again.FinishedAt)
}

// TestAPI_status_equals_status_read: GET /v1/jobs/{id} answers exactly
// status.Read (what `ocrflow status --json` prints) for a job that is
// running and for one that has finished.
func TestAPI_status_equals_status_read(t *testing.T) {
	work := pipelineEnv(t)
	cfg, err := loadConfig()
	require.NoError(t, err)
	log := slog.New(slog.DiscardHandler)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	p, err := startPipeline(t.Context(), cfg, log, app.Options{Engine: &engine.Fake{Fail: func(engine.Page) error {
		entered <- struct{}{}
		<-release
		return nil
	}}})
	require.NoError(t, err)
	defer func() { assert.NoError(t, p.stop()) }()
	defer close(release) // before stop: no handler is left blocked
	clock := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	srv, err := openAPI(t.Context(), cfg, log, apiOptions{now: func() time.Time { return clock }})
	require.NoError(t, err)
	defer func() { assert.NoError(t, srv.close()) }()
	ts := httptest.NewServer(srv.api.Handler())
	defer ts.Close()
	store, err := blob.NewDir(filepath.Join(work, "blobs"))
	require.NoError(t, err)

	resp, body := call(t, http.MethodPost, ts.URL+"/v1/jobs", "", strings.NewReader(`{"content_id":"page.png","hints":{"text_layer":"off"}}`), nil)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "submit: %s", body)
	var accepted api.Accepted
	require.NoError(t, json.Unmarshal(body, &accepted))
	select {
	case <-entered:
	case <-time.After(60 * time.Second):
		require.FailNow(t, "the engine was not called")
	}
	released := false
	for _, tc := range []struct {
		name  string
		state status.State
	}{
		{"running_job", status.Recognizing},
		{"finished_job", status.Completed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.state.Terminal() && !released {
				released = true
				release <- struct{}{}
				names := follow(t, ts.URL+"/v1/jobs/"+accepted.JobID+"/events", "")
				require.Contains(t, names, events.TypeJobCompleted)
			}
			resp, body := call(t, http.MethodGet, ts.URL+"/v1/jobs/"+accepted.JobID, "", nil, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, "status: %s", body)
			want, err := status.Read(t.Context(), store, accepted.JobID, clock)
			require.NoError(t, err)
			assert.Equal(t, tc.state, want.State)
			wantJSON, err := json.Marshal(want)
			require.NoError(t, err)
			assert.JSONEq(t, string(wantJSON), string(body))
		})
	}
}

func TestAPI_help(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		// out is where the text goes.
		stderr bool
		want   []string
	}{
		{"usage_lists_the_command", []string{"--help"}, false, []string{"ocrflow api [--addr HOST:PORT]", "docs/api.md"}},
		{"command_help_lists_its_flags", []string{"api", "--help"}, true, []string{"-addr", "-nats", "-broker", "API_TOKENS", "SHUTDOWN_TIMEOUT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			require.Equal(t, 0, run(t.Context(), tc.args, &stdout, &stderr), "exit code")
			out := stdout.String()
			if tc.stderr {
				out = stderr.String()
			}
			for _, w := range tc.want {
				assert.Contains(t, out, w)
			}
		})
	}
}
