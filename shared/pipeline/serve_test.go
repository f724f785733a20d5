package pipeline_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/pipeline"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// served is a pipeline running on a standalone runtime for one test.
type served struct {
	rt      *standalone.Runtime
	stages  []pipeline.Stage
	journal *journal
	dlq     <-chan event.Event
}

// serve starts a runtime (an embedded server, or the one at natsURL) with
// the routing cfg selects, builds cfg's stages on ports with the runtime as
// their Sender, follows the lifecycle and dead-letter subjects and serves.
// Everything stops when the test ends.
func serve(t testing.TB, cfg config.Config, ports pipeline.Ports, natsURL string) *served {
	t.Helper()
	ctx := t.Context()
	triggers, err := pipeline.Triggers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := standalone.New(ctx, standalone.Config{
		URL: natsURL, Server: standalone.ServerConfig{StoreDir: filepath.Join(t.TempDir(), "nats")},
		Triggers: triggers, BackoffScale: 0.001, FetchWait: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("close runtime: %v", err)
		}
	})
	ports.Sender = rt
	stages, err := pipeline.Build(cfg, ports)
	if err != nil {
		t.Fatal(err)
	}
	followCtx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	lc, err := rt.Follow(followCtx, standalone.LifecycleSubjects)
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := rt.Follow(followCtx, standalone.DeadLetterSubject)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Serve(ctx, pipeline.Services(stages)...); err != nil {
		t.Fatal(err)
	}
	return &served{rt: rt, stages: stages, journal: newJournal(lc), dlq: dlq}
}
