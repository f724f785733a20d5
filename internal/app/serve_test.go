package app_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// served is a pipeline running on a standalone runtime for one test.
type served struct {
	rt      *standalone.Runtime
	app     *app.App
	journal *journal
	dlq     <-chan event.Event
}

// serve starts a runtime (an embedded server, or the one at natsURL) with
// the routing cfg selects, assembles cfg's pipeline on it through the
// composition root (ports given in o replace those cfg would open), and
// follows the lifecycle and dead-letter subjects. Everything stops when the
// test ends.
func serve(t testing.TB, cfg config.Config, o app.Options, natsURL string) *served {
	t.Helper()
	ctx := t.Context()
	cfg.NATSURL, cfg.NATSListen = natsURL, ""
	cfg.NATSStoreDir = filepath.Join(t.TempDir(), "nats")
	rcfg, err := standalone.ConfigFrom(cfg, nil)
	require.NoError(t, err)
	rcfg.BackoffScale, rcfg.FetchWait = 0.001, 100*time.Millisecond
	rt, err := standalone.New(ctx, rcfg)
	require.NoError(t, err)
	followCtx, stop := context.WithCancel(context.Background())
	lc, err := rt.Follow(followCtx, standalone.LifecycleSubjects)
	require.NoError(t, err)
	dlq, err := rt.Follow(followCtx, standalone.DeadLetterSubject)
	require.NoError(t, err)
	o.Transport = rt
	a, err := app.Open(ctx, cfg, o)
	t.Cleanup(func() {
		stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, rt.Close(ctx), "close runtime")
		if a != nil {
			assert.NoError(t, a.Close(ctx), "close app")
		}
	})
	require.NoError(t, err)
	return &served{rt: rt, app: a, journal: newJournal(lc), dlq: dlq}
}
