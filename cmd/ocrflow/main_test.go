package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/standalone"
	"github.com/ocrflow/ocrflow/shared/status"
)

// testdataDir is resolved before any test changes directory.
var testdataDir, _ = filepath.Abs("../../testdata")

func TestMain(m *testing.M) {
	// func-go's signal goroutine never ends (it has no stop): not ours.
	leaktest.Main(m, goleak.IgnoreTopFunction("knative.dev/func-go/cloudevents.(*Service).handleSignals.func1"))
}

// syncBuffer is a bytes.Buffer safe for a command writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testdata(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(testdataDir, name)
}

func isolate(t *testing.T) {
	t.Helper()
	t.Chdir(t.TempDir()) // no stray .env, no ./out in the repo
	t.Setenv("NATS_URL", "")
	t.Setenv("LOG_LEVEL", "error")
	t.Setenv("METRICS_ADDR", "127.0.0.1:0") // never the fixed default port
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    []string
		wantCode int
		wantOut  []string
		wantMD   map[string]string // result file → text it must contain
	}{
		{
			name: "samples_complete", files: []string{"report.pdf", "page.png"}, wantCode: 0,
			wantOut: []string{"report.pdf", "page.png", "2 document(s), 7 page(s), 0 failed"},
			wantMD:  map[string]string{"report.pdf.md": "# Page 1: Introduction and Scope", "page.png.md": "fake-ocr "},
		},
		{
			name: "a_failed_document_fails_the_run", files: []string{"page.jpg", "report.txt"}, wantCode: 1,
			wantOut: []string{"report.txt", "FAILED (validation: ", "unsupported document type", "1 failed"},
			wantMD:  map[string]string{"page.jpg.md": "fake-ocr "},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			out := filepath.Join(t.TempDir(), "md")
			args := []string{"run", "--engine", "fake", "--out", out}
			for _, f := range tc.files {
				args = append(args, testdata(t, f))
			}
			var stdout, stderr syncBuffer
			code := run(t.Context(), args, &stdout, &stderr)
			require.Equal(t, tc.wantCode, code, "exit code\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			for _, w := range tc.wantOut {
				assert.Contains(t, stdout.String(), w, "stdout")
			}
			for md, want := range tc.wantMD {
				b, err := os.ReadFile(filepath.Join(out, md))
				require.NoError(t, err)
				assert.Contains(t, string(b), want, "%s", md)
			}
		})
	}
}

func TestHelp_documents_every_command(t *testing.T) {
	var stdout, stderr syncBuffer
	require.Equal(t, 0, run(t.Context(), []string{"--help"}, &stdout, &stderr), "exit code")
	for _, cmd := range []string{"ocrflow run", "ocrflow serve", "ocrflow submit", "ocrflow status", "ocrflow dlq"} {
		assert.Contains(t, stdout.String(), cmd, "--help does not document %q", cmd)
	}
	for _, tc := range []struct {
		cmd   string
		flags []string
	}{
		{"run", []string{"-out", "-engine"}},
		{"submit", []string{"-file", "-content-id", "-tenant", "-owner", "-job-id", "-hint", "-nats", "-broker", "-wait"}},
		{"serve", []string{"OCR_STAGES", "NATS_URL"}},
		{"status", []string{"-json", "-watch", "BLOB_URL", "3 unknown job"}},
		{"dlq", []string{"list", "show", "replay", "--all", "--dry-run", "--nats", "--broker"}},
	} {
		var out, errb syncBuffer
		run(t.Context(), []string{tc.cmd, "--help"}, &out, &errb)
		for _, f := range tc.flags {
			assert.Contains(t, errb.String(), f, "%s --help does not mention %s", tc.cmd, f)
		}
	}
}

// TestServeAndSubmit runs `serve` against a NATS server, submits a job with
// `submit --wait`, and stops serve with its context (SIGTERM's path).
func TestServeAndSubmit(t *testing.T) {
	isolate(t)
	srv, err := standalone.StartServer(standalone.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	work := t.TempDir()
	t.Setenv("NATS_URL", srv.ClientURL())
	t.Setenv("OCR_ENGINE", "fake")
	t.Setenv("BLOB_URL", "file://"+filepath.Join(work, "blobs"))
	t.Setenv("CONTENT_DIR", testdata(t, "."))
	t.Setenv("OUTPUT_DIR", filepath.Join(work, "out"))

	ctx, stop := context.WithCancel(t.Context())
	served := make(chan int, 1)
	var serveErr syncBuffer
	go func() { served <- run(ctx, []string{"serve"}, &serveErr, &serveErr) }()

	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"submit", "--file", testdata(t, "page.png"), "--job-id", "cli-job",
		"--hint", "priority=high", "--wait", "--timeout", "60s"}, &stdout, &stderr)
	require.Equal(t, 0, code, "submit exit code\nstdout:\n%s\nstderr:\n%s\nserve:\n%s", stdout.String(), stderr.String(), serveErr.String())
	assert.Contains(t, stdout.String(), "ocr.job.completed", "submit --wait did not print the completed event")
	_, err = os.Stat(filepath.Join(work, "out", "page.png.md"))
	assert.NoError(t, err, "no result written")
	// submit kept the job in the scratch store, where status reads it.
	stdout = syncBuffer{}
	code = run(t.Context(), []string{"status", "cli-job", "--json"}, &stdout, &stderr)
	require.Equal(t, 0, code, "status exit code\nstderr:\n%s", stderr.String())
	var st status.Job
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &st), "status --json:\n%s", stdout.String())
	assert.Equal(t, status.Completed, st.State, "status = %+v", st)
	assert.Equal(t, 1, st.Pages.Done, "status = %+v", st)
	assert.NotNil(t, st.SubmittedAt, "status = %+v: submit kept no submitted record", st)
	s, err := blob.NewDir(filepath.Join(work, "blobs"))
	require.NoError(t, err)
	var sub scratch.Submitted
	require.NoError(t, scratch.GetJSON(t.Context(), s, scratch.SubmittedKey("cli-job"), &sub))
	assert.Equal(t, "ocrflow submit", sub.By, "the submitted record names its submitter")
	stop()
	select {
	case code := <-served:
		assert.Equal(t, 0, code, "serve exit code after shutdown:\n%s", serveErr.String())
	case <-time.After(30 * time.Second):
		assert.Fail(t, "serve did not stop within 30s")
	}
}

// TestFunction serves the Knative function and checks its health endpoint
// and a graceful stop.
func TestFunction(t *testing.T) {
	isolate(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	t.Setenv("LISTEN_ADDRESS", addr)
	t.Setenv("OCR_STAGES", "finalize,deadletter")
	t.Setenv("BLOB_URL", "file://"+filepath.Join(t.TempDir(), "blobs"))
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var out syncBuffer
	go func() { done <- run(ctx, []string{"function"}, &out, &out) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health/readiness")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			require.Failf(t, "function not ready within 20s", "last error %v:\n%s", err, out.String())
		}
		select {
		case code := <-done:
			require.Failf(t, "function exited before it was ready", "function exited with %d:\n%s", code, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, "exit code after stop:\n%s", out.String())
	case <-time.After(35 * time.Second):
		assert.Fail(t, "function did not stop")
	}
}
