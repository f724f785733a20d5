package finalize_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/functions/finalize"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/document/documenttest"
	"github.com/ocrflow/ocrflow/shared/events"
	ocrjob "github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/searchpdf/pdftest"
)

// outputStorer stores every output (content.OutputStorer) and keeps the
// bytes it read from each.
type outputStorer struct {
	mu    sync.Mutex
	bytes map[string][]byte // by format
	res   []content.Result
}

func (s *outputStorer) Store(ctx context.Context, r content.Result) (string, error) {
	st, err := s.StoreOutputs(ctx, r)
	return st.Ref, err
}

func (s *outputStorer) StoreOutputs(ctx context.Context, r content.Result) (content.Stored, error) {
	st := content.Stored{Refs: map[string]string{}}
	got := map[string][]byte{}
	for _, o := range r.Files() {
		rc, err := o.Reader(ctx)
		if err != nil {
			return content.Stored{}, err
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			return content.Stored{}, err
		}
		if int64(len(b)) != o.Size || content.NewOutput(o.Format, b).SHA256 != o.SHA256 {
			return content.Stored{}, io.ErrUnexpectedEOF // the size and digest must be the bytes'
		}
		got[o.Format] = b
		st.Refs[o.Format] = "derived-" + o.Format
		if st.Ref == "" || o.Format == ocrjob.OutputMarkdown {
			st.Ref = st.Refs[o.Format]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bytes, s.res = got, append(s.res, r)
	return st, nil
}

// finishWith writes a page record (and its markdown and layout sidecar,
// when given) and returns the event reporting it.
func (j job) finishWith(t *testing.T, rec scratch.PageRecord, md string, l *document.Layout) event.Event {
	t.Helper()
	ctx := t.Context()
	rec.EventID = events.PageRenderedID(j.id, rec.Page)
	if rec.Status == events.PageOK {
		rec.MarkdownKey = scratch.PageKey(j.id, rec.Page, "md")
		require.NoError(t, j.store.Put(ctx, rec.MarkdownKey, strings.NewReader(md)))
	}
	if l != nil {
		rec.BlocksKey, rec.BlockCount = scratch.BlocksKey(j.id, rec.Page), len(l.Blocks)
		require.NoError(t, scratch.PutJSON(ctx, j.store, rec.BlocksKey, l))
	}
	require.NoError(t, scratch.PutRecord(ctx, j.store, j.id, rec))
	return j.event(t, rec)
}

func TestFinalize_json_document_has_every_page_in_order_with_its_layout(t *testing.T) {
	j := newJob(t, "job-json", []int{1, 2, 3, 4, 5, 6}, func(m *scratch.Manifest) {
		m.Outputs = []string{ocrjob.OutputMarkdown, ocrjob.OutputJSON}
		m.TotalPages = 9
		m.Inline = map[int]scratch.Inline{6: {Page: 5, Name: "image1.png"}}
	})
	title, para := document.Box{72, 70, 400, 90}, document.Box{72, 100, 520, 300}
	conf := 0.93
	var last event.Event
	for _, p := range []struct {
		rec scratch.PageRecord
		md  string
		l   *document.Layout
	}{
		{scratch.PageRecord{Page: 1, Status: events.PageOK, Route: events.RouteText, Engine: "text-layer", TextScore: 0.97, WidthPt: 595, HeightPt: 842},
			"# Intro\n\nBody.", &document.Layout{Page: 1, Source: document.SourceTextLayer, WidthPt: 595, HeightPt: 842, Blocks: []document.Block{
				{Label: document.LabelTitle, BBox: &title, Text: "# Intro", Lines: []document.Line{{BBox: title, Text: "Intro"}}},
				{Label: document.LabelText, BBox: &para, Text: "Body."},
			}}},
		{scratch.PageRecord{Page: 2, Status: events.PageOK, Route: events.RouteOCR, Engine: "tesseract", TextScore: 0.1, WidthPt: 595, HeightPt: 842, WidthPx: 1190, HeightPx: 1684},
			"Scanned words.", &document.Layout{Page: 2, Source: document.SourceTesseract, WidthPt: 595, HeightPt: 842, WidthPx: 1190, HeightPx: 1684,
				Blocks: []document.Block{{Label: document.LabelText, BBox: &para, Text: "Scanned words.", Confidence: &conf}}}},
		{scratch.PageRecord{Page: 3, Status: events.PageOK, Route: events.RouteOCR, Engine: "tesseract", Fallback: true, WidthPt: 595, HeightPt: 842},
			"Fallback words.", &document.Layout{Page: 3, Source: document.SourceMarkdown, WidthPt: 595, HeightPt: 842, Steps: []string{"loop"},
				Meta: map[string]string{"fallback_from": "vllm"}, Blocks: document.FromMarkdown("Fallback words.")}},
		{scratch.PageRecord{Page: 4, Status: events.PageFailed, Route: events.RouteOCR, Engine: "vllm", Reason: "repetition: page 4: 3 attempts", WidthPt: 595, HeightPt: 842, WidthPx: 1024, HeightPx: 1449},
			"", nil},
		{scratch.PageRecord{Page: 5, Status: events.PageOK, Route: events.RouteText, Engine: "text-layer", TextScore: 1},
			"Office text\n\n<!-- image: image1.png -->", &document.Layout{Page: 5, Source: document.SourceOffice, Blocks: document.FromMarkdown("Office text\n\n<!-- image: image1.png -->")}},
		{scratch.PageRecord{Page: 6, Status: events.PageOK, Route: events.RouteOCR, Engine: "tesseract", WidthPt: 100, HeightPt: 50, WidthPx: 200, HeightPx: 100},
			"Picture words", &document.Layout{Page: 6, Source: document.SourceTesseract, WidthPt: 100, HeightPt: 50, WidthPx: 200, HeightPx: 100,
				Blocks: []document.Block{{Label: document.LabelText, BBox: &document.Box{1, 1, 99, 49}, Text: "Picture words"}}}},
	} {
		last = j.finishWith(t, p.rec, p.md, p.l)
	}
	st := &outputStorer{}
	reply, err := newFinalizer(j, st).Handle(t.Context(), last)
	require.NoError(t, err)
	jc := completed(t, reply)
	assert.Equal(t, map[string]string{"markdown": "derived-markdown", "json": "derived-json"}, jc.DerivedContents, "derived_contents")
	assert.Equal(t, "derived-markdown", jc.DerivedContentID, "derived_content_id is the markdown's")
	assert.Empty(t, jc.UnavailableOutputs)

	raw := st.bytes[ocrjob.OutputJSON]
	require.NotEmpty(t, raw, "no JSON document stored")
	kept, err := scratch.GetBytes(t.Context(), j.store, scratch.DocumentKey(j.id))
	require.NoError(t, err)
	assert.Equal(t, string(kept), string(raw), "the stored document is the one in the scratch store")
	d := documenttest.Check(t, raw, []int{1, 2, 3, 4, 5, 6})
	assert.Equal(t, j.id, d.JobID)
	assert.Equal(t, document.Source{Name: "job-json.pdf", Format: "pdf", ContentID: "content-job-json", PageCount: 6, TotalPages: 9}, d.Source)
	assert.Equal(t, [4]string{"vllm", "model-x", "base", recipe.PipelineVersion}, [4]string{d.Engine, d.Model, d.Mode, d.PipelineVersion})
	assert.Equal(t, j.m.StartedAt, d.Timings.Started, "started")
	assert.Equal(t, jc.ProcessingTimeMS, d.Timings.ProcessingMS, "processing_ms, as ocr.job.completed says")

	type want struct {
		route, engine, layout, reason string
		blocks                        int
		width                         float64
		steps                         []string
		inline                        *document.Inline
	}
	for i, w := range []want{
		{route: "text", engine: "text-layer", layout: "text-layer", blocks: 2, width: 595},
		{route: "gpu", engine: "tesseract", layout: "tesseract", blocks: 1, width: 595},
		{route: "fallback", engine: "tesseract", layout: "markdown", blocks: 1, width: 595, steps: []string{"loop"}},
		{route: "failed", engine: "vllm", reason: "repetition: page 4: 3 attempts", width: 595},
		{route: "text", engine: "text-layer", layout: "office", blocks: 2},
		{route: "gpu", engine: "tesseract", layout: "tesseract", blocks: 1, width: 100, inline: &document.Inline{Page: 5, Name: "image1.png"}},
	} {
		p := d.Pages[i]
		assert.Equal(t, w.route, p.Route, "page %d route", p.Page)
		assert.Equal(t, w.engine, p.Engine, "page %d engine", p.Page)
		assert.Equal(t, w.layout, p.Layout, "page %d layout", p.Page)
		assert.Equal(t, w.reason, p.FailureReason, "page %d failure reason", p.Page)
		assert.Len(t, p.Blocks, w.blocks, "page %d blocks", p.Page)
		assert.Equal(t, w.steps, p.Steps, "page %d steps", p.Page)
		assert.Equal(t, w.inline, p.Inline, "page %d inline", p.Page)
		if w.width == 0 {
			assert.Nil(t, p.WidthPt, "page %d has no size", p.Page)
		} else if assert.NotNil(t, p.WidthPt, "page %d size", p.Page) {
			assert.InDelta(t, w.width, *p.WidthPt, 0.001, "page %d width", p.Page)
		}
	}
	assert.Equal(t, 1190, d.Pages[1].WidthPx, "page 2: the rendered image's pixels")
	assert.Equal(t, 1024, d.Pages[3].WidthPx, "page 4: a failed page keeps the size of its image")
	assert.InDelta(t, 0.97, d.Pages[0].TextScore, 1e-9, "page 1 text score")
	assert.Equal(t, &conf, d.Pages[1].Blocks[0].Confidence, "page 2 confidence")
	assert.Equal(t, map[string]string{"fallback_from": "vllm"}, d.Pages[2].Meta, "page 3 meta")
}

func TestFinalize_stores_the_outputs_the_job_asks_for(t *testing.T) {
	for _, tc := range []struct {
		name            string
		outputs         []string
		unavailable     map[string]string
		plain           bool // a store without content.OutputStorer
		wantStored      []string
		wantRef         string
		wantRefs        map[string]string
		wantUnavailable map[string]string
	}{
		{name: "manifest_from_before_outputs_is_markdown", wantStored: []string{"markdown"}, wantRef: "derived-markdown",
			wantRefs: map[string]string{"markdown": "derived-markdown"}},
		{name: "json_alone_leaves_out_the_markdown", outputs: []string{"json"}, wantStored: []string{"json"}, wantRef: "derived-json",
			wantRefs: map[string]string{"json": "derived-json"}},
		{name: "pdf_of_a_source_that_cannot_have_one", outputs: []string{"markdown", "pdf"}, unavailable: map[string]string{"pdf": "office documents have no pages to draw"},
			wantStored: []string{"markdown"}, wantRef: "derived-markdown", wantRefs: map[string]string{"markdown": "derived-markdown"},
			wantUnavailable: map[string]string{"pdf": "office documents have no pages to draw"}},
		{name: "store_keeping_one_output_reports_one", outputs: []string{"markdown", "json"}, plain: true, wantStored: []string{"markdown", "json"},
			wantRef: "derived-job-out", wantRefs: map[string]string{"markdown": "derived-job-out"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob(t, "job-out", []int{1}, func(m *scratch.Manifest) { m.Outputs, m.Unavailable = tc.outputs, tc.unavailable })
			last := j.finish(t, okPage(1, "words"))
			var st finalize.Storer
			outs := &outputStorer{}
			plain := &storer{}
			st = outs
			if tc.plain {
				st = plain
			}
			reply, err := newFinalizer(j, st).Handle(t.Context(), last)
			require.NoError(t, err)
			jc := completed(t, reply)
			assert.Equal(t, tc.wantRef, jc.DerivedContentID, "derived_content_id")
			assert.Equal(t, tc.wantRefs, jc.DerivedContents, "derived_contents")
			assert.Equal(t, tc.wantUnavailable, jc.UnavailableOutputs, "unavailable_outputs")
			var res []content.Result
			if tc.plain {
				res = plain.stored()
			} else {
				res = outs.res
			}
			require.Len(t, res, 1)
			var formats []string
			for _, o := range res[0].Files() {
				formats = append(formats, o.Format)
			}
			assert.Equal(t, tc.wantStored, formats, "outputs handed to the store")
			md, err := scratch.GetBytes(t.Context(), j.store, scratch.ResultKey(j.id))
			require.NoError(t, err, "the markdown is always made")
			assert.Contains(t, string(md), "words", "the markdown is always made")
			if tc.plain {
				assert.Equal(t, string(md), string(res[0].Markdown), "a store keeping one output gets the markdown in memory")
			}
			assert.Equal(t, tc.wantUnavailable, res[0].Unavailable, "unavailable outputs handed to the store")
		})
	}
}

// failingPut is a scratch store whose Put of one key fails after reading
// part of it.
type failingPut struct {
	scratch.Store
	key string
}

func (f failingPut) Put(ctx context.Context, key string, r io.Reader) error {
	if key != f.key {
		return f.Store.Put(ctx, key, r)
	}
	_, _ = io.CopyN(io.Discard, r, 10)
	return io.ErrClosedPipe
}

func TestFinalize_json_document_that_cannot_be_written_is_retried(t *testing.T) {
	j := newJob(t, "job-put", []int{1}, func(m *scratch.Manifest) { m.Outputs = []string{"json"} })
	last := j.finish(t, okPage(1, "words"))
	st := &outputStorer{}
	fz := newFinalizerOn(failingPut{Store: j.store, key: scratch.DocumentKey(j.id)}, st)
	_, err := fz.Handle(t.Context(), last)
	require.ErrorIs(t, err, io.ErrClosedPipe, "the scratch store's error is returned for a retry")
	assert.Empty(t, st.res, "nothing is stored")
	reply, err := newFinalizer(j, st).Handle(t.Context(), last)
	require.NoError(t, err, "the redelivery")
	assert.Equal(t, "derived-json", completed(t, reply).DerivedContentID)
}

// newFinalizerOn is a finalizer on scratch store blobs.
func newFinalizerOn(blobs scratch.Store, st finalize.Storer) *finalize.Finalizer {
	return finalize.New(finalize.Config{Recipe: recipe, MaxPageErrorRate: 1}, blobs, st, slog.New(slog.DiscardHandler))
}

func TestFinalize_searchable_pdf_is_drawn_from_the_kept_source(t *testing.T) {
	png, err := os.ReadFile("../../testdata/page.png")
	require.NoError(t, err)
	box := document.Box{72, 72, 400, 90}
	for _, tc := range []struct {
		name       string
		keep       bool // the source is in the scratch store
		wantReport map[string]any
	}{
		{name: "image_source", keep: true, wantReport: map[string]any{"pages": 1, "pages_imported": 0, "pages_from_images": 1, "pages_visible_text": 0}},
		{name: "kept_source_gone_draws_the_page_image", wantReport: map[string]any{"pages": 1, "pages_imported": 0, "pages_from_images": 1, "pages_visible_text": 0,
			"import_failed": "the source kept for the searchable PDF is gone: pages drawn from their images"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob(t, "job-pdf", []int{1}, func(m *scratch.Manifest) {
				m.Outputs, m.SourceKey, m.SourceFormat, m.SourceName = []string{"pdf"}, scratch.SourceKey("job-pdf"), "png", "page.png"
			})
			if tc.keep {
				require.NoError(t, j.store.Put(t.Context(), scratch.SourceKey(j.id), bytes.NewReader(png)))
			}
			image := scratch.PageKey(j.id, 1, "jpg")
			require.NoError(t, j.store.Put(t.Context(), image, bytes.NewReader(png)))
			last := j.finishWith(t, scratch.PageRecord{Page: 1, Status: events.PageOK, Route: events.RouteOCR, Engine: "tesseract",
				WidthPt: 595.15, HeightPt: 842.33, WidthPx: 1240, HeightPx: 1755, ImageKey: image},
				"Weekend Waste Collection", &document.Layout{Page: 1, Source: document.SourceTesseract, WidthPt: 595.15, HeightPt: 842.33, Blocks: []document.Block{
					{Label: document.LabelText, BBox: &box, Text: "Weekend Waste Collection", Lines: []document.Line{{BBox: box, Text: "Weekend Waste Collection"}}},
				}})
			st := &outputStorer{}
			reply, err := newFinalizer(j, st).Handle(t.Context(), last)
			require.NoError(t, err)
			jc := completed(t, reply)
			assert.Equal(t, map[string]string{"pdf": "derived-pdf"}, jc.DerivedContents)
			pdf := st.bytes[ocrjob.OutputPDF]
			require.True(t, bytes.HasPrefix(pdf, []byte("%PDF-")), "a PDF is stored")
			kept, err := scratch.GetBytes(t.Context(), j.store, scratch.PDFKey(j.id))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(kept, pdf), "the stored PDF is the one in the scratch store")
			require.Len(t, st.res, 1)
			assert.Equal(t, tc.wantReport, st.res[0].Metadata["searchable_pdf"], "the result says how the PDF was made")
			if _, err := exec.LookPath("pdftotext"); err == nil {
				assert.Contains(t, pdftest.Text(t, pdf, 1, 1), "Weekend Waste Collection")
				sizes := pdftest.Pages(t, pdf)
				if assert.Len(t, sizes, 1) {
					assert.InDelta(t, 595.15, sizes[0][0], 0.01, "page width")
				}
			}
		})
	}
}
