package pipeline_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
)

// TestPipeline_office_documents_need_no_engine_for_their_text: DOCX, PPTX
// and XLSX pages route `text` and their markdown is the office package's
// golden output; only embedded pictures reach the engine.
func TestPipeline_office_documents_need_no_engine_for_their_text(t *testing.T) {
	var calls atomic.Int32
	h := newHarness(t, harnessOpts{fake: &engine.Fake{Fail: func(engine.Page) error { calls.Add(1); return nil }}})
	for _, tc := range []struct {
		file, golden string
	}{
		{"office/report.docx", "office/report.md"},
		{"office/slides.pptx", "office/slides.md"},
		{"office/ledger.xlsx", "office/ledger.md"},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			calls.Store(0)
			golden, err := os.ReadFile(filepath.Join(testdata, tc.golden))
			if err != nil {
				t.Fatal(err)
			}
			pages := strings.Split(strings.TrimSpace(string(golden)), "\n<!-- page break -->\n")
			pictures := 0
			for _, p := range pages {
				pictures += strings.Count(p, "<!-- image: ")
			}
			id := "office-" + strings.NewReplacer(".", "-", "/", "-").Replace(tc.file)
			h.submit(id, tc.file, nil)
			evs := h.wait(id)
			c := completed(t, evs[len(evs)-1])
			if c.PagesByRoute["text"] != len(pages) {
				t.Fatalf("pages by route %v, want %d text pages", c.PagesByRoute, len(pages))
			}
			if got := int(calls.Load()); got != pictures || c.PagesByRoute["gpu"] != pictures {
				t.Fatalf("%d engine calls, %d gpu pages; want one per embedded picture (%d)", got, c.PagesByRoute["gpu"], pictures)
			}
			md, err := os.ReadFile(c.DerivedContentID)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range pages {
				if !strings.Contains(string(md), strings.TrimSpace(p)) {
					t.Errorf("page %d of the golden markdown is not in the result", i+1)
				}
			}
		})
	}
	for _, bad := range []struct{ file, want string }{
		{"office/zipbomb.docx", "zip bomb"},
		{"office/traversal.docx", ".."},
		{"office/many-entries.docx", "entries"},
		{"office/truncated.docx", ""},
	} {
		t.Run(filepath.Base(bad.file), func(t *testing.T) {
			id := "office-bad-" + strings.NewReplacer(".", "-", "/", "-").Replace(filepath.Base(bad.file))
			h.submit(id, bad.file, nil)
			evs := h.wait(id)
			var f events.JobFailed
			if len(evs) != 1 || evs[0].Type() != events.TypeJobFailed || events.Decode(evs[0], &f) != nil {
				t.Fatalf("lifecycle %v, want exactly [failed]", types(evs))
			}
			if f.ErrorType != "validation" || !strings.Contains(f.Message, bad.want) {
				t.Fatalf("failed = %+v, want validation mentioning %q", f, bad.want)
			}
		})
	}
}
