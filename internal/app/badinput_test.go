package app_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/events"
)

// TestPipeline_bad_input_corpus: every file of testdata/bad ends its job in
// ocr.job.failed (validation or permanent) with a message a user
// understands, fast, with bounded memory, and without crashing anything.
func TestPipeline_bad_input_corpus(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	for _, tc := range []struct {
		file, want string
	}{
		{"empty.pdf", "empty"},
		{"truncated.pdf", "truncated"},
		{"broken-xref.pdf", "0 pages"},
		{"encrypted.pdf", "encrypted"},
		{"huge-dimensions.png", "MAX_IMAGE_PIXELS"},
		{"lying-extension.pdf", "unsupported document type text/plain"},
		{"random.bin", "unsupported document type"},
		// LibreOffice (installed by make test) cannot load its empty body.
		{"notes.odt", "libreoffice could not convert the document (Error: source file could not be loaded)"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := os.Stat(filepath.Join(testdata, "bad", tc.file))
			require.NoError(t, err)
			id := "bad-" + strings.NewReplacer(".", "-", "_", "-").Replace(tc.file)
			start := time.Now()
			h.submit(id, "bad/"+tc.file, nil)
			evs := h.wait(id)
			require.Len(t, evs, 1, "lifecycle %v, want exactly [failed]", types(evs))
			require.Equal(t, events.TypeJobFailed, evs[0].Type(), "lifecycle %v, want exactly [failed]", types(evs))
			var f events.JobFailed
			require.NoError(t, events.Decode(evs[0], &f))
			assert.Contains(t, []string{"validation", "permanent"}, f.ErrorType, "failed = %+v", f)
			assert.Contains(t, f.Message, tc.want, "failed = %+v", f)
			assert.LessOrEqual(t, time.Since(start), 10*time.Second, "took too long")
		})
	}
	close(stop)
	<-sampled
	p := peak.Load()
	assert.LessOrEqual(t, p, uint64(256<<20), "peak heap %d MiB over the corpus, want < 256 MiB", p>>20)
	t.Logf("peak heap %.1f MiB", float64(peak.Load())/(1<<20))
}
