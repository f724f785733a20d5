package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/document/documenttest"
	"github.com/ocrflow/ocrflow/shared/engine"
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
var scOutputs = []string{"markdown", "json"}

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
