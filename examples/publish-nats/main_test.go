package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/examples/internal/served"
	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// TestRun publishes jobs to a running standalone pipeline and follows
// them to their end.
func TestRun(t *testing.T) {
	p := served.Start(t)
	for _, tc := range []struct {
		name     string
		file     string
		wantType string
		wantData string // in the terminal event's data
		wantOut  string // a file the job writes
	}{
		{name: "document_is_converted", file: "report.pdf", wantType: events.TypeJobCompleted, wantData: `"page_count":6`, wantOut: "report.pdf.md"},
		{name: "image_is_recognized", file: "page.png", wantType: events.TypeJobCompleted, wantData: `"gpu":1`, wantOut: "page.png.md"},
		{name: "missing_file_fails_the_job", file: "absent.pdf", wantType: events.TypeJobFailed, wantData: `"error_type":"validation"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "example-nats-" + strings.ReplaceAll(tc.name, "_", "-")
			var out, errOut strings.Builder
			err := run(t.Context(), []string{"-nats", p.URL, "-file", filepath.Join(served.Testdata, tc.file), "-job-id", id}, &out, &errOut)
			require.NoError(t, err, errOut.String())
			assert.Equal(t, "published job "+id+" on ocr.jobs (stream OCRFLOW, "+p.URL+")\n", out.String())

			end := p.Terminal(t, id)
			assert.Equal(t, tc.wantType, end.Type())
			assert.Contains(t, string(end.Data()), tc.wantData)
			if tc.wantOut != "" {
				md, err := os.ReadFile(filepath.Join(p.Out, tc.wantOut))
				require.NoError(t, err)
				assert.NotEmpty(t, md)
			}
		})
	}
}

func TestRun_refuses(t *testing.T) {
	srv, err := standalone.StartServer(standalone.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "server_without_ocrflow", args: []string{"-nats", srv.ClientURL(), "-content-id", "c-1"}, wantErr: "stream OCRFLOW on " + srv.ClientURL()},
		{name: "nothing_listens", args: []string{"-nats", "nats://127.0.0.1:1", "-content-id", "c-1"}, wantErr: "connect nats://127.0.0.1:1"},
		{name: "no_source", args: []string{"-nats", srv.ClientURL()}, wantErr: "give exactly one of -file and -content-id"},
		{name: "two_sources", args: []string{"-file", "x.pdf", "-content-id", "c-1"}, wantErr: "give exactly one of -file and -content-id"},
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
