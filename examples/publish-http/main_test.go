package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// broker is a CloudEvents HTTP receiver standing in for a broker ingress:
// it records what it receives and answers with status.
func broker(t *testing.T, status int) (string, <-chan event.Event) {
	t.Helper()
	p, err := cehttp.New()
	require.NoError(t, err)
	got := make(chan event.Event, 1)
	h, err := cloudevents.NewHTTPReceiveHandler(t.Context(), p, func(_ context.Context, e event.Event) protocol.Result {
		got <- e
		return cehttp.NewResult(status, "")
	})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, got
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int // the broker's answer; 0: nothing listens
		args    []string
		wantOut string
		wantJob job.Job // the job the broker receives (ID "" when generated)
		wantErr string
	}{
		{
			name: "broker_takes_the_job", status: http.StatusAccepted,
			args:    []string{"-content-id", "c-42", "-tenant", "t1", "-owner", "o1", "-job-id", "job-http-1"},
			wantOut: "published job job-http-1 to http://",
			wantJob: job.Job{ID: "job-http-1", ContentID: "c-42", TenantID: "t1", OwnerID: "o1"},
		},
		{
			name: "job_id_is_generated", status: http.StatusAccepted,
			args:    []string{"-content-id", "c-42"},
			wantOut: "published job job-",
			wantJob: job.Job{ContentID: "c-42"},
		},
		{
			name: "broker_refuses_the_event", status: http.StatusBadRequest,
			args:    []string{"-content-id", "c-42", "-job-id", "job-http-2"},
			wantErr: "publish job job-http-2 to http://",
		},
		{
			name:    "nothing_listens",
			args:    []string{"-content-id", "c-42", "-job-id", "job-http-3"},
			wantErr: "connection refused",
		},
		{
			name: "content_id_is_required", status: http.StatusAccepted,
			wantErr: "-broker and -content-id are required",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, received := "http://127.0.0.1:1/", (<-chan event.Event)(nil)
			if tc.status != 0 {
				url, received = broker(t, tc.status)
			}
			var out, errOut strings.Builder
			err := run(t.Context(), append([]string{"-broker", url}, tc.args...), &out, &errOut)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Empty(t, out.String())
				return
			}
			require.NoError(t, err)
			assert.Contains(t, out.String(), tc.wantOut)
			assert.Contains(t, out.String(), "(HTTP 202)")

			e := <-received
			assert.Equal(t, events.TypeJob, e.Type())
			assert.Equal(t, events.UoW, e.Extensions()[events.ExtUoW], "Triggers filter on the uow extension")
			assert.Equal(t, e.ID(), e.Extensions()[events.ExtJob])
			j, err := job.Parse(e)
			require.NoError(t, err, "ocrflow accepts the job")
			assert.True(t, strings.HasPrefix(out.String(), "published job "+j.ID+" "), "the id printed is the job's: %q", out.String())
			if tc.wantJob.ID == "" {
				tc.wantJob.ID = j.ID
			}
			assert.Equal(t, tc.wantJob, job.Job{ID: j.ID, ContentID: j.ContentID, TenantID: j.TenantID, OwnerID: j.OwnerID})
		})
	}
}
