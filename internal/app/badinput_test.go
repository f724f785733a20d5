package app_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
			if _, err := os.Stat(filepath.Join(testdata, "bad", tc.file)); err != nil {
				t.Fatal(err)
			}
			id := "bad-" + strings.NewReplacer(".", "-", "_", "-").Replace(tc.file)
			start := time.Now()
			h.submit(id, "bad/"+tc.file, nil)
			evs := h.wait(id)
			if len(evs) != 1 || evs[0].Type() != events.TypeJobFailed {
				t.Fatalf("lifecycle %v, want exactly [failed]", types(evs))
			}
			var f events.JobFailed
			if err := events.Decode(evs[0], &f); err != nil {
				t.Fatal(err)
			}
			if (f.ErrorType != "validation" && f.ErrorType != "permanent") || !strings.Contains(f.Message, tc.want) {
				t.Fatalf("failed = %+v, want validation/permanent mentioning %q", f, tc.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
	close(stop)
	<-sampled
	if p := peak.Load(); p > 256<<20 {
		t.Fatalf("peak heap %d MiB over the corpus, want < 256 MiB", p>>20)
	}
	t.Logf("peak heap %.1f MiB", float64(peak.Load())/(1<<20))
}
