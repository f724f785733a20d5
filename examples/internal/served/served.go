// Package served runs ocrflow's standalone runtime in-process for the
// tests of the examples: an embedded NATS server listening on a loopback
// port (as `ocrflow serve` does), the whole pipeline assembled by the
// composition root, a fake engine, the directory content store reading
// testdata/ and a scratch store in memory.
package served

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// Testdata is the repository's testdata directory, seen from an example.
const Testdata = "../../testdata"

// Pipeline is a running standalone pipeline.
type Pipeline struct {
	// URL is the NATS client URL, as NATS_URL would name it.
	URL string
	// Out is where results are written (OUTPUT_DIR).
	Out string
	// Runtime is the standalone runtime, for sending and following.
	Runtime *standalone.Runtime

	lifecycle <-chan event.Event
	ended     map[string]event.Event // terminal events read while waiting for another job
}

// Start starts the pipeline; it stops when the test ends.
func Start(t testing.TB) *Pipeline {
	t.Helper()
	dir := t.TempDir()
	root, err := filepath.Abs(Testdata)
	require.NoError(t, err)
	env := map[string]string{
		"OCR_ENGINE": "fake", "NATS_LISTEN": "127.0.0.1:0", "NATS_STORE_DIR": filepath.Join(dir, "nats"),
		"CONTENT_STORE": "dir", "CONTENT_DIR": root, "OUTPUT_DIR": filepath.Join(dir, "out"),
	}
	cfg, err := config.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	rcfg, err := standalone.ConfigFrom(cfg, nil)
	require.NoError(t, err)
	rcfg.BackoffScale, rcfg.FetchWait = 0.001, 100*time.Millisecond
	rt, err := standalone.New(t.Context(), rcfg)
	require.NoError(t, err)
	followCtx, stopFollowing := context.WithCancel(context.Background())
	lc, err := rt.Follow(followCtx, standalone.LifecycleSubjects)
	require.NoError(t, err)
	a, err := app.Open(t.Context(), cfg, app.Options{Transport: rt, Scratch: blob.NewMemory(), Engine: &engine.Fake{}})
	t.Cleanup(func() {
		stopFollowing()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, rt.Close(ctx))
		if a != nil {
			assert.NoError(t, a.Close(ctx))
		}
	})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(rt.ClientURL(), "nats://"), "the embedded server listens: %q", rt.ClientURL())
	return &Pipeline{URL: rt.ClientURL(), Out: cfg.OutputDir, Runtime: rt, lifecycle: lc, ended: map[string]event.Event{}}
}

// Terminal waits for the terminal lifecycle event of job and returns it.
func (p *Pipeline) Terminal(t testing.TB, job string) event.Event {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		if e, ok := p.ended[job]; ok {
			return e
		}
		select {
		case e, ok := <-p.lifecycle:
			require.True(t, ok, "lifecycle subscription ended before job %s did", job)
			if id, _ := e.Extensions()[events.ExtJob].(string); events.Terminal(e.Type()) {
				p.ended[id] = e
			}
		case <-timeout:
			require.FailNow(t, "job did not end within 60s", job)
		}
	}
}
