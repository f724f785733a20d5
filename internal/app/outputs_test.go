package app_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/document/documenttest"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/searchpdf/pdftest"
)

// TestOutputs_json_document_of_every_route: with output_format
// markdown,json, a born-digital PDF (text layer), a scanned PDF and an
// image (tesseract) and a DOCX (office structure) each leave a JSON
// document beside their markdown that validates against the published
// schema, has one entry per page in order and boxes inside their page,
// with the layout its route can give.
func TestOutputs_json_document_of_every_route(t *testing.T) {
	if testing.Short() {
		t.Skip("real OCR takes a few seconds")
	}
	tess := engine.NewTesseract("", "eng")
	if err := tess.Check(t.Context()); err != nil {
		t.Skipf("%v (make test installs it)", err)
	}
	h := newHarness(t, harnessOpts{engine: tess})
	for _, tc := range []struct {
		name, file  string
		pages       []int
		route       string
		layout      string
		boxes       bool
		confidences bool
		widthPt     float64
	}{
		{"born_digital_pdf", "report.pdf", []int{1, 2, 3, 4, 5, 6}, document.RouteText, document.SourceTextLayer, true, false, 595},
		{"scanned_pdf", "scanned.pdf", []int{1, 2}, document.RouteGPU, document.SourceTesseract, true, true, 595},
		{"image", "page.png", []int{1}, document.RouteGPU, document.SourceTesseract, true, true, 595.15},
		{"docx", "office/report.docx", nil, document.RouteText, document.SourceOffice, false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "json-" + strings.ReplaceAll(tc.name, "_", "-")
			h.submit(id, tc.file, map[string]string{"output_format": "markdown,json"})
			evs := h.wait(id)
			c := completed(t, evs[len(evs)-1])
			require.True(t, strings.HasSuffix(c.DerivedContentID, ".md"), "derived_content_id %q is the markdown", c.DerivedContentID)
			raw, err := os.ReadFile(strings.TrimSuffix(c.DerivedContentID, ".md") + ".json")
			require.NoError(t, err, "the JSON document beside the markdown")
			pages := tc.pages
			if pages == nil {
				for n := 1; n <= c.PageCount; n++ {
					pages = append(pages, n)
				}
			}
			d := documenttest.Check(t, raw, pages)
			assert.Equal(t, filepath.Base(tc.file), d.Source.Name, "source name")
			assert.Equal(t, engine.NameTesseract, d.Engine, "engine")
			blocks := 0
			for _, p := range d.Pages {
				if p.Inline != nil {
					continue // an office picture: OCRed on its own
				}
				assert.Equal(t, tc.route, p.Route, "page %d route", p.Page)
				assert.Equal(t, tc.layout, p.Layout, "page %d layout", p.Page)
				if tc.widthPt > 0 && assert.NotNil(t, p.WidthPt, "page %d size", p.Page) {
					assert.InDelta(t, tc.widthPt, *p.WidthPt, 0.01, "page %d width in points", p.Page)
				}
				for _, b := range p.Blocks {
					blocks++
					assert.Equal(t, tc.boxes, b.BBox != nil, "page %d %s block %.40q: box", p.Page, b.Label, b.Text)
					if tc.confidences {
						assert.NotNil(t, b.Confidence, "page %d block %.40q: confidence", p.Page, b.Text)
					}
				}
			}
			assert.Positive(t, blocks, "blocks in the document")
			md, err := os.ReadFile(c.DerivedContentID)
			require.NoError(t, err)
			for _, p := range d.Pages {
				for _, b := range p.Blocks {
					if p.Layout == document.SourceTesseract || p.Layout == document.SourceTextLayer && b.Label == document.LabelText {
						assert.Contains(t, string(md), b.Text, "page %d block text is the markdown's", p.Page)
					}
				}
			}
		})
	}
}

// scOutputs are the outputs the simple-content acceptance asks for.
var scOutputs = []string{"markdown", "json", "pdf"}

// TestSimpleContent_each_output_is_a_derived_content_reused_and_forced_together:
// through simple-content's real v5 handlers, a job asking for several
// outputs leaves one derived content per output (variant, MIME, file
// name, the job's key); a re-run reuses them all; force makes a new one of
// each and supersedes the old ones.
func TestSimpleContent_each_output_is_a_derived_content_reused_and_forced_together(t *testing.T) {
	h := newSCHarness(t, scOpts{})
	parent := h.upload("scanned.pdf", tenantA, ownerA, true, true)
	format := strings.Join(scOutputs, ",")
	meta := func(id string) map[string]any {
		m, err := h.api.GetMetadata(t.Context(), id)
		require.NoError(t, err)
		return m.Custom
	}
	h.submit(jobSpec{id: "sc-out-1", contentID: parent, tenant: tenantA, owner: ownerA, hints: map[string]string{"output_format": format}})
	evs := h.wait("sc-out-1")
	first := completed(t, evs[len(evs)-1])
	require.Len(t, first.DerivedContents, len(scOutputs), "derived_contents = %v", first.DerivedContents)
	assert.Equal(t, first.DerivedContents["markdown"], first.DerivedContentID, "derived_content_id is the markdown's")
	list, metas := h.derived(parent)
	require.Len(t, list, len(scOutputs), "derived contents after the first job")
	byVariant := map[string]string{}
	for i, c := range list {
		byVariant[metas[i].Custom["variant"].(string)] = c.ID
		assert.Equal(t, "completed", metas[i].Custom["state"], "derived %s", c.ID)
		assert.Equal(t, content.IdempotencyKey(parent, content.PipelineVersion, "fake", "default"), metas[i].Custom["idempotency_key"], "every output carries the job's key")
	}
	for _, f := range scOutputs {
		id := first.DerivedContents[f]
		assert.Equal(t, id, byVariant["ocr_"+f], "%s is the derived content of variant ocr_%s", f, f)
		m, err := h.api.GetMetadata(t.Context(), id)
		require.NoError(t, err)
		assert.Equal(t, "scanned.pdf"+content.Extension(f), m.FileName, "%s file name", f)
		assert.Equal(t, content.MIME(f), m.ContentType, "%s MIME type", f)
	}
	documenttest.Check(t, []byte(h.download(first.DerivedContents["json"])), []int{1, 2})
	pdf := []byte(h.download(first.DerivedContents["pdf"]))
	require.True(t, bytes.HasPrefix(pdf, []byte("%PDF-")), "the pdf output is a PDF")
	if _, err := exec.LookPath("pdfinfo"); err == nil {
		assert.Len(t, pdftest.Pages(t, pdf), 2, "the searchable PDF's pages")
	}
	assertInOrderOnce(t, h.download(first.DerivedContents["markdown"]), expectedPages(t, "scanned.pdf"))

	for _, tc := range []struct {
		name       string
		hints      map[string]string
		wantReused bool
		wantCount  int
	}{
		{"rerun_reuses_every_output", map[string]string{"output_format": format}, true, len(scOutputs)},
		{"force_makes_a_new_one_of_each", map[string]string{"output_format": format, "force": "true"}, false, 2 * len(scOutputs)},
		{"markdown_alone_reuses_the_forced_markdown", map[string]string{"output_format": "markdown"}, true, 2 * len(scOutputs)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "sc-out-" + strings.ReplaceAll(tc.name, "_", "-")
			h.submit(jobSpec{id: id, contentID: parent, tenant: tenantA, owner: ownerA, hints: tc.hints})
			evs := h.wait(id)
			c := completed(t, evs[len(evs)-1])
			assert.Equal(t, tc.wantReused, c.Reused, "reused")
			list, _ := h.derived(parent)
			assert.Len(t, list, tc.wantCount, "derived contents")
			switch tc.name {
			case "rerun_reuses_every_output":
				assert.Equal(t, first.DerivedContents, c.DerivedContents, "the reused derived contents")
			case "force_makes_a_new_one_of_each":
				require.Len(t, c.DerivedContents, len(scOutputs))
				for _, f := range scOutputs {
					assert.NotEqual(t, first.DerivedContents[f], c.DerivedContents[f], "%s: a new derived content", f)
					assert.Equal(t, "superseded", meta(first.DerivedContents[f])["state"], "%s: the old one is superseded", f)
					assert.Equal(t, c.DerivedContents[f], meta(first.DerivedContents[f])["superseded_by"], "%s: superseded by the new one", f)
					assert.Equal(t, "completed", meta(c.DerivedContents[f])["state"], "%s: the new one is current", f)
				}
			default:
				assert.Len(t, c.DerivedContents, 1, "derived_contents")
				assert.NotEqual(t, first.DerivedContents["markdown"], c.DerivedContentID, "the superseded markdown is not reused")
				assert.Equal(t, "completed", meta(c.DerivedContentID)["state"])
			}
		})
	}
}

// TestOutputs_searchable_pdf: a searchable PDF made through the whole
// pipeline (tesseract) keeps its source's pages and sizes, and pdftotext
// reads it back: the scanned sample's text within 0.02 of the markdown's
// character error rate, a known word on its page; the born-digital sample's
// text-layer pages exactly as the original; the image sample at its size.
func TestOutputs_searchable_pdf(t *testing.T) {
	if testing.Short() {
		t.Skip("real OCR takes a few seconds")
	}
	pdftest.Need(t)
	tess := engine.NewTesseract("", "eng")
	if err := tess.Check(t.Context()); err != nil {
		t.Skipf("%v (make test installs it)", err)
	}
	h := newHarness(t, harnessOpts{engine: tess})
	read := func(t *testing.T, p string) []byte {
		t.Helper()
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return b
	}
	for _, tc := range []struct {
		name, file string
		check      func(t *testing.T, pdf, md, source []byte)
	}{
		{"scanned_pdf", "scanned.pdf", func(t *testing.T, pdf, md, source []byte) {
			truth := string(read(t, filepath.Join(testdata, "scanned.txt")))
			cerMD, cerPDF := pdftest.CER(truth, string(md)), pdftest.CER(truth, pdftest.Text(t, pdf, 0, 0))
			t.Logf("character error rate: markdown %.4f, searchable PDF %.4f", cerMD, cerPDF)
			assert.LessOrEqual(t, cerPDF, cerMD+0.02, "the searchable PDF's text is the markdown's, give or take 0.02")
			for _, w := range []struct {
				word string
				page int
			}{{"homework", 1}, {"dehumidifier", 2}} {
				for n := 1; n <= 2; n++ {
					found := strings.Contains(strings.ToLower(pdftest.Text(t, pdf, n, n)), w.word)
					assert.Equal(t, n == w.page, found, "%q found on page %d", w.word, n)
				}
			}
		}},
		{"born_digital_pdf", "report.pdf", func(t *testing.T, pdf, _, source []byte) {
			for n := 1; n <= 6; n++ {
				assert.Equal(t, pdftest.Text(t, source, n, n), pdftest.Text(t, pdf, n, n), "page %d keeps its own text", n)
			}
		}},
		{"scan_with_an_old_ocr_layer", "scanned_ocrlayer.pdf", func(t *testing.T, pdf, md, _ []byte) {
			// The page is drawn from its image: the old layer, which the
			// pipeline did not trust, does not double the new one.
			text := strings.ToLower(pdftest.Text(t, pdf, 0, 0))
			assert.Equal(t, 1, strings.Count(text, "marsh harriers"), "times a phrase of the page is in the PDF's text:\n%s", text)
			assert.Contains(t, strings.ToLower(string(md)), "marsh harriers", "the markdown")
		}},
		{"image", "page.png", func(t *testing.T, pdf, _, _ []byte) {
			assert.Contains(t, pdftest.Text(t, pdf, 1, 1), "Weekend Waste Collection", "the image's text")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "pdf-" + strings.ReplaceAll(tc.name, "_", "-")
			h.submit(id, tc.file, map[string]string{"output_format": "markdown,pdf"})
			evs := h.wait(id)
			c := completed(t, evs[len(evs)-1])
			base := strings.TrimSuffix(c.DerivedContentID, ".md")
			pdf, md, source := read(t, base+".ocr.pdf"), read(t, c.DerivedContentID), read(t, filepath.Join(testdata, tc.file))
			got := pdftest.Pages(t, pdf)
			var want [][2]float64
			if strings.HasSuffix(tc.file, ".pdf") {
				want = pdftest.Pages(t, source)
			} else {
				want = [][2]float64{{595.15, 842.33}} // 1240×1755 px at the 150 dpi the PNG states
			}
			require.Len(t, got, len(want), "pages, as many as the source has")
			for i := range want {
				assert.InDelta(t, want[i][0], got[i][0], 0.01, "page %d width", i+1)
				assert.InDelta(t, want[i][1], got[i][1], 0.01, "page %d height", i+1)
			}
			tc.check(t, pdf, md, source)
		})
	}
}
