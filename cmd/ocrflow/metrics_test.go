package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/obs/obstest"
)

var metricsLine = regexp.MustCompile(`msg=metrics url=(\S+)`)

// TestServe_serves_the_metrics_of_its_jobs: `ocrflow serve` answers
// /metrics on METRICS_ADDR with the pages of the jobs it ran.
func TestServe_serves_the_metrics_of_its_jobs(t *testing.T) {
	pipelineEnv(t)
	t.Setenv("LOG_LEVEL", "info")
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	served := make(chan int, 1)
	out := &noticeWriter{want: "msg=serving", seen: make(chan struct{})}
	go func() { served <- run(ctx, []string{"serve"}, out, out) }()
	select {
	case <-out.seen:
	case code := <-served:
		require.FailNowf(t, "serve exited before it served", "exit %d:\n%s", code, out.String())
	case <-time.After(30 * time.Second):
		require.FailNowf(t, "serve did not start within 30s", "%s", out.String())
	}
	m := metricsLine.FindStringSubmatch(out.String())
	require.NotNil(t, m, "metrics line in:\n%s", out.String())

	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"submit", "--file", testdata(t, "page.png"), "--job-id", "metrics-job", "--wait", "--timeout", "60s"}, &stdout, &stderr)
	require.Equal(t, 0, code, "submit exit code\nstderr:\n%s\nserve:\n%s", stderr.String(), out.String())

	got := obstest.Scrape(t, m[1])
	assert.InDelta(t, 1, got.Value(obs.MetricPages, map[string]string{"route": obs.RouteGPU, "outcome": obs.PageOK}), 0, "pages")
	assert.InDelta(t, 1, got.Value(obs.MetricJobs, map[string]string{"outcome": obs.JobCompleted}), 0, "jobs")
	assert.NotEmpty(t, got.Labels(obs.MetricPending), "consumer backlog")
	stop()
	select {
	case code := <-served:
		assert.Equal(t, 0, code, "serve exit code after shutdown:\n%s", out.String())
	case <-time.After(30 * time.Second):
		assert.Fail(t, "serve did not stop within 30s")
	}
}

// TestAPI_metrics_show_synchronous_ocr: `ocrflow api` answers /metrics on
// its own address, with the pages its synchronous pipeline converted.
func TestAPI_metrics_show_synchronous_ocr(t *testing.T) {
	pipelineEnv(t)
	t.Setenv("LOG_LEVEL", "info") // startAPI reads the listening line
	p := startAPI(t)
	report, err := os.ReadFile(testdata(t, "report.pdf"))
	require.NoError(t, err)
	resp, body := call(t, http.MethodPost, p.url+"/v1/ocr", "", bytes.NewReader(report), map[string]string{"Content-Type": "application/pdf"})
	require.Equal(t, http.StatusOK, resp.StatusCode, "POST /v1/ocr: %s", body)

	got := obstest.Scrape(t, p.url+obs.MetricsPath)
	assert.InDelta(t, 6, got.Value(obs.MetricPages, map[string]string{"outcome": obs.PageOK}), 0, "pages of report.pdf")
	assert.InDelta(t, 1, got.Value(obs.MetricJobs, map[string]string{"outcome": obs.JobCompleted}), 0, "jobs")
}
