package main

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/standalone"
)

// TestSubmit_without_a_scratch_store_warns_and_still_publishes: keeping
// the submitted record is best effort.
func TestSubmit_without_a_scratch_store_warns_and_still_publishes(t *testing.T) {
	isolate(t)
	t.Setenv("BLOB_URL", "ftp://nowhere/blobs")
	natsURL, _, jobs := followJobs(t)

	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"submit", "--file", testdata(t, "page.png"), "--job-id", "no-store", "--nats", natsURL}, &stdout, &stderr)
	require.Equal(t, 0, code, "exit code\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	assert.Contains(t, stderr.String(), "warning: job no-store not kept in the scratch store ftp://nowhere/blobs")
	select {
	case e := <-jobs:
		assert.Equal(t, "no-store", e.ID())
	case <-time.After(10 * time.Second):
		require.Fail(t, "the job was not published")
	}
}

// followJobs starts a NATS server with JetStream for the test and returns
// its URL, a runtime connected to it, and the jobs published to it from
// now on (the standalone runtime's job subject).
func followJobs(t *testing.T) (string, *standalone.Runtime, <-chan event.Event) {
	t.Helper()
	srv, err := standalone.StartServer(standalone.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	rt, err := standalone.New(t.Context(), standalone.Config{URL: srv.ClientURL()})
	require.NoError(t, err)
	followCtx, stop := context.WithCancel(context.WithoutCancel(t.Context()))
	t.Cleanup(func() {
		stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, rt.Close(ctx))
	})
	jobs, err := rt.Follow(followCtx, standalone.DefaultJobSubject)
	require.NoError(t, err)
	return srv.ClientURL(), rt, jobs
}
