package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/inproc"
)

// newSync opens the synchronous runner on the fake engine with env.
func newSync(t *testing.T, fake *engine.Fake, env map[string]string) *inproc.Runner {
	t.Helper()
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		v, ok := map[string]string{"OCR_ENGINE": "fake", "RECOGNIZE_WORKERS": "2", "OCR_STAGES": "finalize"}[k]
		return v, ok
	})
	require.NoError(t, err)
	r, err := app.NewSync(cfg, app.SyncOptions{Engine: fake, BackoffScale: 0.001})
	require.NoError(t, err)
	require.NoError(t, r.Open(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, r.Close(ctx))
	})
	return r
}

func doc(t *testing.T, name string) inproc.Document {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(testdata, name))
	require.NoError(t, err)
	return inproc.Document{Path: p, Name: filepath.Base(name)}
}

func TestSync_runs_documents_through_the_stages_and_leaves_nothing(t *testing.T) {
	// OCR_STAGES=finalize: the synchronous pipeline serves every stage anyway.
	r := newSync(t, &engine.Fake{}, map[string]string{"SYNC_MAX_PAGES": "6"})
	for _, tc := range []struct {
		name  string
		doc   inproc.Document
		pages int
		// want is text the markdown holds; failed the failure class
		// and message part of a job that fails instead.
		want, failed, message string
	}{
		{name: "text_layer_pdf", doc: doc(t, "report.pdf"), pages: 6, want: "# Page 1: Introduction and Scope"},
		{name: "scanned_page_through_the_engine", doc: doc(t, "page.png"), pages: 1, want: "fake-ocr "},
		{name: "page_hint_limits_the_pages", doc: func() inproc.Document {
			d := doc(t, "report.pdf")
			d.Hints = map[string]string{"pages": "2-3"}
			return d
		}(), pages: 2, want: "Page 2"},
		{name: "not_a_document_fails_validation", doc: doc(t, "report.txt"), failed: string(failure.TypeValidation), message: "unsupported document type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := r.Run(t.Context(), tc.doc)
			if tc.failed != "" {
				var je *inproc.JobError
				require.ErrorAs(t, err, &je)
				assert.Equal(t, tc.failed, je.Failed.ErrorType)
				assert.Contains(t, je.Failed.Message, tc.message)
			} else {
				require.NoError(t, err)
				assert.Contains(t, string(res.Markdown), tc.want)
				assert.Equal(t, tc.pages, res.Completed.PageCount)
			}
			assert.Zero(t, r.Scratch().Len(), "scratch objects left after the answer")
		})
	}
}

func TestSync_page_limit(t *testing.T) {
	r := newSync(t, &engine.Fake{}, map[string]string{"SYNC_MAX_PAGES": "2"})
	for _, tc := range []struct {
		name string
		doc  inproc.Document
		ok   bool
	}{
		{"document_within_the_limit_completes", doc(t, "page.png"), true},
		{"document_beyond_the_limit_fails_validation", doc(t, "report.pdf"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Run(t.Context(), tc.doc)
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			var je *inproc.JobError
			require.ErrorAs(t, err, &je)
			assert.Equal(t, string(failure.TypeValidation), je.Failed.ErrorType)
			assert.Contains(t, je.Failed.Message, "6 pages, more than MAX_PAGES=2")
		})
	}
}

func TestSync_abandoned_job_is_dropped(t *testing.T) {
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	r := newSync(t, &engine.Fake{Fail: func(engine.Page) error {
		entered <- struct{}{}
		<-release
		return nil
	}}, map[string]string{"RECOGNIZE_WORKERS": "1"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, doc(t, "page.png"))
		done <- err
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		require.FailNow(t, "the engine was not called")
	}
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "Run did not return after its context ended")
	}
	assert.True(t, errors.Is(err, context.Canceled), "error %v", err)
	assert.Zero(t, r.Scratch().Len(), "scratch objects left once the caller gave up")
	close(release)
	// The engine's late answer is written nowhere. With one recognize
	// worker, a later run's page is recognized only after the abandoned
	// page's handler has returned, so the store is settled after it.
	_, err = r.Run(t.Context(), doc(t, "page.png"))
	require.NoError(t, err)
	assert.Zero(t, r.Scratch().Len(), "the abandoned job's late writes were kept")
}
