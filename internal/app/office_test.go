package app_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/contentdir"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/knative"
	"github.com/ocrflow/ocrflow/shared/libreoffice"
)

var placeholderRe = regexp.MustCompile(`<!-- image: [^>]* -->`)

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
			require.NoError(t, err)
			pages := strings.Split(strings.TrimSpace(string(golden)), "\n<!-- page break -->\n")
			pictures := 0
			for _, p := range pages {
				pictures += strings.Count(p, "<!-- image: ")
			}
			id := "office-" + strings.NewReplacer(".", "-", "/", "-").Replace(tc.file)
			h.submit(id, tc.file, nil)
			evs := h.wait(id)
			c := completed(t, evs[len(evs)-1])
			assert.Equal(t, len(pages), c.PagesByRoute["text"], "text pages; pages by route %v", c.PagesByRoute)
			assert.Equal(t, pictures, int(calls.Load()), "engine calls, want one per embedded picture")
			assert.Equal(t, pictures, c.PagesByRoute["gpu"], "gpu pages, want one per embedded picture")
			md, err := os.ReadFile(c.DerivedContentID)
			require.NoError(t, err)
			// Each golden page is in the result with its pictures' text
			// right after their placeholders (inline), not on pages of
			// their own.
			rest := string(md)
		segments:
			for i, p := range pages {
				for k, seg := range placeholderRe.Split(strings.TrimSpace(p), -1) {
					at := strings.Index(rest, seg)
					if !assert.GreaterOrEqual(t, at, 0, "page %d segment %d of the golden markdown is not in the result (in order):\n%q\nresult:\n%s", i+1, k, seg, md) {
						break segments
					}
					rest = rest[at+len(seg):]
				}
			}
			for _, m := range placeholderRe.FindAllString(string(golden), -1) {
				assert.True(t, strings.Contains(string(md), m+"\n\nfake-ocr ") || strings.Contains(string(md), m+" fake-ocr "),
					"%s is not followed by its picture's text:\n%s", m, md)
			}
			assert.Equal(t, len(pages), strings.Count(string(md), "<!-- page "), "page markers: pictures must not be pages of their own")
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
			require.Len(t, evs, 1, "lifecycle %v, want exactly [failed]", types(evs))
			require.Equal(t, events.TypeJobFailed, evs[0].Type(), "lifecycle %v, want exactly [failed]", types(evs))
			var f events.JobFailed
			require.NoError(t, events.Decode(evs[0], &f))
			assert.Equal(t, "validation", f.ErrorType, "failed = %+v", f)
			assert.Contains(t, f.Message, bad.want, "failed = %+v", f)
		})
	}
}

// TestPipeline_office_through_libreoffice: with OFFICE_MODE=auto (the
// default) and LibreOffice installed, legacy and OpenDocument files are
// converted to PDF and take the PDF path, and a picture-led DOCX is
// rendered whole so its pages are OCRed in their layout. OFFICE_MODE=native
// and a missing LibreOffice refuse the legacy files with a message that
// says what to do.
func TestPipeline_office_through_libreoffice(t *testing.T) {
	type want struct {
		format    string
		text, gpu int    // pages by route; -1 = any
		contains  string // in the result
		failedMsg string // "" = completes
	}
	// A LibreOffice that starts and writes nothing: every conversion fails.
	broken := filepath.Join(t.TempDir(), "soffice")
	require.NoError(t, os.WriteFile(broken, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	for _, tc := range []struct {
		name string
		env  map[string]string
		docs map[string]want
	}{
		{
			name: "auto_with_libreoffice",
			docs: map[string]want{
				"office/legacy/report.doc": {format: "doc", text: -1, gpu: -1, contains: "Annual Report 2026"},
				"office/legacy/report.odt": {format: "odt", text: -1, gpu: -1, contains: "Regional results"},
				"office/legacy/slides.ppt": {format: "ppt", text: -1, gpu: -1, contains: "Quarterly Review"},
				"office/legacy/ledger.xls": {format: "xls", text: -1, gpu: -1, contains: "1,249.00"},
				"office/scan.docx":         {format: "docx", text: 0, gpu: 2, contains: "fake-ocr "},
			},
		},
		{
			name: "native",
			env:  map[string]string{"OFFICE_MODE": "native"},
			docs: map[string]want{
				"office/legacy/report.doc": {failedMsg: "Word 97-2003 (.doc) documents are read by converting them with LibreOffice, which OFFICE_MODE=native turns off"},
				"office/scan.docx":         {format: "docx", text: 2, gpu: 2, contains: "fake-ocr "},
			},
		},
		{
			name: "auto_without_libreoffice",
			env:  map[string]string{"LIBREOFFICE_PATH": "/nonexistent/soffice"},
			docs: map[string]want{
				"office/legacy/slides.ppt": {failedMsg: "PowerPoint 97-2003 (.ppt) documents are read by converting them with LibreOffice, which is not installed here"},
				"office/scan.docx":         {format: "docx", text: 2, gpu: 2, contains: "fake-ocr "},
			},
		},
		{
			// A picture-led DOCX falls back to its native reading when the
			// conversion fails; a legacy file has no such fallback.
			name: "auto_with_a_failing_libreoffice",
			env:  map[string]string{"LIBREOFFICE_PATH": broken},
			docs: map[string]want{
				"office/scan.docx":         {format: "docx", text: 2, gpu: 2, contains: "fake-ocr "},
				"office/legacy/report.doc": {failedMsg: "libreoffice could not convert the document"},
			},
		},
		{
			name: "render",
			env:  map[string]string{"OFFICE_MODE": "render"},
			docs: map[string]want{
				"office/report.docx": {format: "docx", text: -1, gpu: -1, contains: "Annual Report 2026"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{env: tc.env})
			for file, w := range tc.docs {
				t.Run(filepath.Base(file), func(t *testing.T) {
					id := "lo-" + tc.name + "-" + strings.NewReplacer(".", "-", "/", "-").Replace(filepath.Base(file))
					h.submit(id, file, nil)
					evs := h.wait(id)
					last := evs[len(evs)-1]
					if w.failedMsg != "" {
						require.Equal(t, events.TypeJobFailed, last.Type(), "lifecycle %v, want it to end in failed", types(evs))
						var f events.JobFailed
						require.NoError(t, events.Decode(last, &f))
						assert.Equal(t, "validation", f.ErrorType, "failed = %+v", f)
						assert.Contains(t, f.Message, w.failedMsg, "failed = %+v", f)
						return
					}
					c := completed(t, last)
					require.Equal(t, events.TypeJobStarted, evs[0].Type(), "lifecycle %v, want it to start with started", types(evs))
					var st events.JobStarted
					require.NoError(t, events.Decode(evs[0], &st))
					assert.Equal(t, w.format, st.SourceFormat, "source format")
					if w.text >= 0 {
						assert.Equal(t, w.text, c.PagesByRoute["text"], "text pages; pages by route %v", c.PagesByRoute)
					}
					if w.gpu >= 0 {
						assert.Equal(t, w.gpu, c.PagesByRoute["gpu"], "gpu pages; pages by route %v", c.PagesByRoute)
					}
					assert.Empty(t, c.FailedPages, "failed pages")
					assert.Contains(t, readResult(t, c), w.contains)
				})
			}
		})
	}
}

// TestBuild_render_mode_needs_libreoffice: OFFICE_MODE=render without
// LibreOffice is a start-up error, not a stream of failed jobs.
func TestBuild_render_mode_needs_libreoffice(t *testing.T) {
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		v, ok := map[string]string{"OCR_ENGINE": "fake", "OFFICE_MODE": "render", "LIBREOFFICE_PATH": "/nonexistent/soffice", "OCR_STAGES": "convert"}[k]
		return v, ok
	})
	require.NoError(t, err)
	tr, err := knative.New(knative.Config{Sink: "http://127.0.0.1:1"})
	require.NoError(t, err)
	store, err := contentdir.New([]string{t.TempDir()}, t.TempDir())
	require.NoError(t, err)
	_, err = app.Open(t.Context(), cfg, app.Options{Transport: tr, Scratch: blob.NewMemory(), Content: store})
	assert.ErrorIs(t, err, libreoffice.ErrNotInstalled)
	assert.ErrorContains(t, err, "OFFICE_MODE=render")
	assert.False(t, tr.Ready(), "the transport serves stages of a pipeline that failed to open")
}
