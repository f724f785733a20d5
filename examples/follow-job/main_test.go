package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/examples/internal/served"
	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// TestRun follows jobs of a running standalone pipeline.
func TestRun(t *testing.T) {
	p := served.Start(t)
	submit := func(t *testing.T, id, file string) {
		t.Helper()
		abs, err := filepath.Abs(filepath.Join(served.Testdata, file))
		require.NoError(t, err)
		e, err := job.NewEvent(job.Spec{ID: id, Location: abs})
		require.NoError(t, err)
		require.NoError(t, p.Runtime.Send(t.Context(), e))
	}
	for _, tc := range []struct {
		name string
		file string
		// startFirst: follow before submitting; else after the job ended.
		startFirst bool
		wantFirst  string
		wantLast   string
		wantErr    error
	}{
		{name: "follows_a_running_job", file: "report.pdf", startFirst: true, wantFirst: events.TypeJobStarted, wantLast: events.TypeJobCompleted},
		{name: "reports_a_job_that_already_ended", file: "page.png", wantFirst: events.TypeJobStarted, wantLast: events.TypeJobCompleted},
		// The source is missing: the job fails before it starts.
		{name: "failed_job_exits_with_an_error", file: "absent.pdf", startFirst: true, wantFirst: events.TypeJobFailed, wantLast: events.TypeJobFailed, wantErr: errFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "example-follow-" + strings.ReplaceAll(tc.name, "_", "-")
			var out, errOut strings.Builder
			done := make(chan error, 1)
			follow := func() {
				done <- run(t.Context(), []string{"-nats", p.URL, "-job-id", id, "-timeout", "60s"}, &out, &errOut)
			}
			if tc.startFirst {
				go follow()
				submit(t, id+"-other", "report.pdf") // another job's events are not printed
				submit(t, id, tc.file)
			} else {
				submit(t, id, tc.file)
				p.Terminal(t, id)
				go follow()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(90 * time.Second):
				require.FailNow(t, "follow-job did not return")
			}
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err, errOut.String())
			}

			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			assert.True(t, strings.HasPrefix(lines[0], tc.wantFirst+" {"), "first: %s", lines[0])
			assert.True(t, strings.HasPrefix(lines[len(lines)-1], tc.wantLast+" {"), "last: %s", lines[len(lines)-1])
			for _, l := range lines {
				assert.Contains(t, l, `"job_id":"`+id+`"`)
			}
		})
	}
}

func TestRun_refuses(t *testing.T) {
	srv, err := standalone.StartServer(standalone.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	p := served.Start(t)
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "job_that_does_not_end_in_time", args: []string{"-nats", p.URL, "-job-id", "never-submitted", "-timeout", "300ms"}, wantErr: "job never-submitted did not end within 300ms"},
		{name: "server_without_ocrflow", args: []string{"-nats", srv.ClientURL(), "-job-id", "j1"}, wantErr: "is `ocrflow serve` running there?"},
		{name: "job_id_is_required", args: []string{"-nats", p.URL}, wantErr: "-job-id is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			err := run(t.Context(), tc.args, &out, &errOut)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.Empty(t, out.String())
		})
	}
}
