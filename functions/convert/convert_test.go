package convert_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/functions/convert"
	"github.com/ocrflow/ocrflow/shared/content"
	structured "github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/textlayer"
)

// TestConvert_pdf_job_fans_out_one_rendered_page_per_page_after_started:
// one delivery of a 6-page PDF publishes ocr.job.started, then one
// ocr.page.rendered per page in page order, writes the manifest and
// replies nothing (the job is not over).
func TestConvert_pdf_job_fans_out_one_rendered_page_per_page_after_started(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, baseConfig(t), newDirStore(t), nil)
	const id = "job-fanout"

	reply, err := f.conv.Handle(ctx, jobEvent(t, id, "report.pdf", nil))
	require.NoError(t, err)
	assert.Nil(t, reply, "convert replies nothing while the job runs")

	sent := f.send.take()
	require.Len(t, sent, 7, "started and six pages")
	assert.Equal(t, events.TypeJobStarted, sent[0].Type(), "started comes first")
	assert.Equal(t, events.StartedID(id), sent[0].ID())
	var started events.JobStarted
	require.NoError(t, events.Decode(sent[0], &started))
	assert.Equal(t, events.JobStarted{
		JobID: id, ContentID: contentID(id), SourceFormat: "pdf", Pages: 6, Timestamp: started.Timestamp,
	}, started)

	pages := rendered(t, sent[1:])
	require.Len(t, pages, 6, "every event after started is a page")
	for i, p := range pages {
		n := i + 1
		e := sent[i+1]
		assert.Equal(t, events.PageRenderedID(id, n), e.ID())
		assert.Equal(t, convert.Source, e.Source())
		assert.Equal(t, id, e.Extensions()[events.ExtJob])
		assert.Equal(t, fmt.Sprint(n), e.Extensions()[events.ExtPage])
		assert.Equal(t, n, p.Page)
		assert.Equal(t, 6, p.Pages)
		assert.Equal(t, id, p.JobID)
	}
	assert.Empty(t, ofType(sent, events.TypeConvertContinue), "a default slice converts six pages in one delivery")

	m := manifest(t, f.scratch, id)
	assert.Equal(t, id, m.JobID)
	assert.Equal(t, contentID(id), m.ContentID)
	assert.Equal(t, "report.pdf", m.SourceName)
	assert.Equal(t, "pdf", m.SourceFormat)
	assert.Equal(t, fileSize(t, "report.pdf"), m.SourceBytes)
	assert.Equal(t, 6, m.TotalPages)
	assert.Equal(t, []int{1, 2, 3, 4, 5, 6}, m.Pages)
	assert.False(t, m.StartedAt.IsZero(), "manifest has started_at")

	_, ended, err := scratch.GetOutcome(ctx, f.scratch, id)
	require.NoError(t, err)
	assert.False(t, ended, "a running job has no outcome")
}

// TestConvert_text_layer_decides_the_route: pages with a trustworthy text
// layer go on route text with their markdown stored, unless TEXT_LAYER (or
// the job's text_layer hint) is off; pages without one are rendered for OCR.
func TestConvert_text_layer_decides_the_route(t *testing.T) {
	for _, tc := range []struct {
		name      string
		file      string
		mode      textlayer.Mode
		hints     map[string]string
		wantRoute events.Route
	}{
		{name: "born_digital_pdf_in_auto_takes_its_text", file: "report.pdf", mode: textlayer.ModeAuto, wantRoute: events.RouteText},
		{name: "born_digital_pdf_with_text_layer_off_is_ocred", file: "report.pdf", mode: textlayer.ModeOff, wantRoute: events.RouteOCR},
		{name: "hint_off_overrides_config_auto", file: "report.pdf", mode: textlayer.ModeAuto, hints: map[string]string{"text_layer": "off"}, wantRoute: events.RouteOCR},
		{name: "hint_auto_overrides_config_off", file: "report.pdf", mode: textlayer.ModeOff, hints: map[string]string{"text_layer": "auto"}, wantRoute: events.RouteText},
		{name: "scanned_pdf_in_auto_is_ocred", file: "scanned.pdf", mode: textlayer.ModeAuto, wantRoute: events.RouteOCR},
		{name: "unset_mode_defaults_to_auto", file: "report.pdf", wantRoute: events.RouteText},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			cfg := baseConfig(t)
			cfg.TextLayer = tc.mode
			f := newFixture(t, cfg, newDirStore(t), nil)
			const id = "job-route"
			_, err := f.conv.Handle(ctx, jobEvent(t, id, tc.file, tc.hints))
			require.NoError(t, err)

			pages := rendered(t, f.send.take())
			require.NotEmpty(t, pages)
			for _, p := range pages {
				assert.Equal(t, tc.wantRoute, p.Route, "page %d", p.Page)
				switch tc.wantRoute {
				case events.RouteText:
					assert.Empty(t, p.ImageKey, "page %d: a text page has no image", p.Page)
					assert.Equal(t, scratch.PageKey(id, p.Page, "text.md"), p.TextKey)
					md, err := scratch.GetBytes(ctx, f.scratch, p.TextKey)
					require.NoError(t, err, "page %d text", p.Page)
					assert.Contains(t, string(md), fmt.Sprintf("Page %d:", p.Page), "page %d's markdown is its own text", p.Page)
					assert.GreaterOrEqual(t, p.TextScore, textlayer.MinScore)
					assert.Equal(t, [2]float64{595, 842}, [2]float64{p.WidthPt, p.HeightPt}, "page %d: A4 in points", p.Page)
					require.Equal(t, scratch.BlocksKey(id, p.Page), p.BlocksKey, "page %d names its layout sidecar", p.Page)
					var l structured.Layout
					require.NoError(t, scratch.GetJSON(ctx, f.scratch, p.BlocksKey, &l), "page %d sidecar", p.Page)
					assert.Equal(t, structured.SourceTextLayer, l.Source, "page %d sidecar", p.Page)
					assert.Equal(t, p.Page, l.Page, "page %d sidecar", p.Page)
					require.NotEmpty(t, l.Blocks, "page %d sidecar", p.Page)
					assert.Equal(t, structured.LabelTitle, l.Blocks[0].Label, "page %d opens with its heading", p.Page)
					for i, b := range l.Blocks {
						if assert.NotNil(t, b.BBox, "page %d block %d box", p.Page, i) {
							assert.True(t, b.BBox.Inside(595, 842), "page %d block %d box %v inside the page", p.Page, i, *b.BBox)
						}
					}
				default:
					assert.Empty(t, p.TextKey, "page %d: an OCR page has no text", p.Page)
					assert.Equal(t, scratch.PageKey(id, p.Page, "jpg"), p.ImageKey)
					img, err := scratch.GetBytes(ctx, f.scratch, p.ImageKey)
					require.NoError(t, err, "page %d image", p.Page)
					assert.True(t, bytes.HasPrefix(img, []byte{0xFF, 0xD8}), "page %d image is a JPEG", p.Page)
					assert.Positive(t, p.Width)
					assert.Positive(t, p.Height)
					assert.LessOrEqual(t, max(p.Width, p.Height), 256, "page %d is rendered to the target size", p.Page)
					assert.Equal(t, [2]float64{595, 842}, [2]float64{p.WidthPt, p.HeightPt}, "page %d: A4 in points", p.Page)
					assert.Empty(t, p.BlocksKey, "page %d: recognize writes an OCR page's layout", p.Page)
				}
			}
		})
	}
}

// TestConvert_long_document_continues_in_slices_without_losing_a_page: with
// a slice too short for one page, each delivery converts one page and
// publishes ocr.convert.continue naming the index of the next; delivering
// each continuation in turn converts every selected page once, in order.
func TestConvert_long_document_continues_in_slices_without_losing_a_page(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hints     map[string]string
		wantPages []int
	}{
		{name: "every_page", wantPages: []int{1, 2, 3, 4, 5, 6}},
		{name: "page_range_indexes_the_selected_pages", hints: map[string]string{"pages": "2,4-6"}, wantPages: []int{2, 4, 5, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			cfg := baseConfig(t)
			cfg.Slice = time.Nanosecond
			f := newFixture(t, cfg, newDirStore(t), nil)
			const id = "job-slices"

			var all []events.PageRendered
			next := jobEvent(t, id, "report.pdf", tc.hints)
			for delivery := 1; ; delivery++ {
				require.LessOrEqual(t, delivery, len(tc.wantPages), "more deliveries than pages")
				reply, err := f.conv.Handle(ctx, next)
				require.NoError(t, err, "delivery %d", delivery)
				assert.Nil(t, reply, "delivery %d", delivery)

				sent := f.send.take()
				wantStarted := 0
				if delivery == 1 {
					wantStarted = 1
				}
				assert.Len(t, ofType(sent, events.TypeJobStarted), wantStarted,
					"delivery %d: started is published by the first delivery only", delivery)
				pages := rendered(t, sent)
				assert.Len(t, pages, 1, "delivery %d converts one page per slice", delivery)
				all = append(all, pages...)

				conts := ofType(sent, events.TypeConvertContinue)
				require.LessOrEqual(t, len(conts), 1, "delivery %d", delivery)
				if len(conts) == 0 {
					break
				}
				var c events.ConvertContinue
				require.NoError(t, events.Decode(conts[0], &c))
				assert.Equal(t, len(all), c.Next, "delivery %d: next is the index of the first page not yet converted", delivery)
				assert.Equal(t, id, c.JobID)
				assert.Equal(t, events.ContinueID(id, c.Next), conts[0].ID())
				assert.Equal(t, id, conts[0].Extensions()[events.ExtJob])
				next = overTheWire(t, conts[0])
			}
			assert.Equal(t, tc.wantPages, pageNumbers(all), "every page once, in order, over the chain")
			for _, p := range all {
				assert.Equal(t, len(tc.wantPages), p.Pages, "page %d knows the job's page count", p.Page)
			}
			assert.Equal(t, tc.wantPages, manifest(t, f.scratch, id).Pages)
		})
	}
}

// TestConvert_continuation_past_the_last_page_converts_nothing: a
// continuation that points past the page list (a duplicate of the last
// one) publishes nothing and succeeds.
func TestConvert_continuation_past_the_last_page_converts_nothing(t *testing.T) {
	ctx := t.Context()
	cfg := baseConfig(t)
	cfg.Slice = time.Nanosecond
	f := newFixture(t, cfg, newDirStore(t), nil)
	const id = "job-past-end"
	_, err := f.conv.Handle(ctx, jobEvent(t, id, "report.pdf", map[string]string{"pages": "1-2"}))
	require.NoError(t, err)
	conts := ofType(f.send.take(), events.TypeConvertContinue)
	require.Len(t, conts, 1)
	cont := overTheWire(t, conts[0])
	_, err = f.conv.Handle(ctx, cont)
	require.NoError(t, err)
	assert.Equal(t, []int{2}, pageNumbers(rendered(t, f.send.take())))

	// A continuation one past the end of the page list converts nothing.
	var c events.ConvertContinue
	require.NoError(t, events.Decode(cont, &c))
	c.Next = 2
	past := cont.Clone()
	require.NoError(t, past.SetData("application/json", c))
	reply, err := f.conv.Handle(ctx, past)
	require.NoError(t, err)
	assert.Nil(t, reply)
	assert.Empty(t, f.send.take())
}

// TestConvert_malformed_continuation_fails_its_job: a continuation that
// does not resume its own job is a validation failure of the job it names.
func TestConvert_malformed_continuation_fails_its_job(t *testing.T) {
	ctx := t.Context()
	store := newCapableStore(t, nil)
	f := newFixture(t, baseConfig(t), store, nil)
	const id = "job-bad-cont"
	other := overTheWire(t, jobEvent(t, "another-job", "report.pdf", nil))
	raw, err := other.MarshalJSON()
	require.NoError(t, err)
	cont, err := events.New(nil, events.ContinueID(id, 1), events.TypeConvertContinue, convert.Source, 0, id,
		events.ConvertContinue{JobID: id, Next: 1, Job: raw})
	require.NoError(t, err)

	reply, err := f.conv.Handle(ctx, cont)
	require.NoError(t, err)
	require.NotNil(t, reply)
	assert.Equal(t, events.TypeJobFailed, reply.Type())
	assert.Equal(t, events.FailedID(id), reply.ID())
	var jf events.JobFailed
	require.NoError(t, events.Decode(*reply, &jf))
	assert.Equal(t, "validation", jf.ErrorType)
	assert.Contains(t, jf.Message, "does not resume")
	assert.Zero(t, store.fetches.Load(), "nothing is fetched for a broken continuation")
	assert.Empty(t, f.send.take())
}

// TestConvert_redelivered_job_keeps_the_first_manifest: the manifest is
// created once; a redelivery converts against it (its started_at and its
// page set), so a finalize already counting pages is not moved.
func TestConvert_redelivered_job_keeps_the_first_manifest(t *testing.T) {
	t.Run("redelivery_leaves_the_manifest_as_it_was", func(t *testing.T) {
		ctx := t.Context()
		f := newFixture(t, baseConfig(t), newDirStore(t), nil)
		const id = "job-redeliver"
		e := jobEvent(t, id, "report.pdf", nil)
		_, err := f.conv.Handle(ctx, e)
		require.NoError(t, err)
		first, err := scratch.GetBytes(ctx, f.scratch, scratch.ManifestKey(id))
		require.NoError(t, err)
		firstSent := f.send.take()

		_, err = f.conv.Handle(ctx, e)
		require.NoError(t, err)
		second, err := scratch.GetBytes(ctx, f.scratch, scratch.ManifestKey(id))
		require.NoError(t, err)
		assert.Equal(t, string(first), string(second), "the redelivery rewrote the manifest")
		again := f.send.take()
		require.Len(t, again, len(firstSent))
		for i := range again {
			assert.Equal(t, firstSent[i].ID(), again[i].ID(), "a redelivery republishes the same event ids")
		}
	})
	t.Run("existing_manifest_page_set_wins", func(t *testing.T) {
		ctx := t.Context()
		f := newFixture(t, baseConfig(t), newDirStore(t), nil)
		const id = "job-existing-manifest"
		was := scratch.Manifest{
			JobID: id, ContentID: contentID(id), SourceName: "report.pdf", SourceFormat: "pdf", TotalPages: 6,
			Pages: []int{2, 3}, StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		}
		require.NoError(t, scratch.CreateJSON(ctx, f.scratch, scratch.ManifestKey(id), was))

		_, err := f.conv.Handle(ctx, jobEvent(t, id, "report.pdf", nil))
		require.NoError(t, err)
		sent := f.send.take()
		assert.Equal(t, []int{2, 3}, pageNumbers(rendered(t, sent)), "the manifest's pages, not the document's")
		var started events.JobStarted
		require.NotEmpty(t, sent)
		require.NoError(t, events.Decode(sent[0], &started))
		assert.Equal(t, 2, started.Pages)
		got := manifest(t, f.scratch, id)
		assert.True(t, was.StartedAt.Equal(got.StartedAt), "started_at = %v, want %v", got.StartedAt, was.StartedAt)
		assert.Equal(t, was.Pages, got.Pages)
	})
}

// TestConvert_page_range_hint_selects_pages: the pages hint picks pages
// of the document; the manifest keeps the document's page count.
func TestConvert_page_range_hint_selects_pages(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		want       []int
	}{
		{"single_page", "3", []int{3}},
		{"ranges_and_pages_sorted_and_unique", "5-6,1,2-3,3", []int{1, 2, 3, 5, 6}},
		{"range_past_the_end_is_cut", "4-99", []int{4, 5, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, baseConfig(t), newDirStore(t), nil)
			const id = "job-pages"
			_, err := f.conv.Handle(t.Context(), jobEvent(t, id, "report.pdf", map[string]string{"pages": tc.spec}))
			require.NoError(t, err)
			sent := f.send.take()
			pages := rendered(t, sent)
			assert.Equal(t, tc.want, pageNumbers(pages))
			for _, p := range pages {
				assert.Equal(t, len(tc.want), p.Pages, "page %d", p.Page)
			}
			var started events.JobStarted
			require.NotEmpty(t, sent)
			require.NoError(t, events.Decode(sent[0], &started))
			assert.Equal(t, len(tc.want), started.Pages)
			m := manifest(t, f.scratch, id)
			assert.Equal(t, tc.want, m.Pages)
			assert.Equal(t, 6, m.TotalPages)
			assert.Equal(t, tc.spec, m.Hints["pages"])
		})
	}
}

// TestConvert_office_document_is_extracted_with_its_pictures_inline: a
// DOCX is read natively (no LibreOffice): text pages skip the engine, each
// embedded picture is a page of its own for OCR, and the manifest says which
// page shows it.
func TestConvert_office_document_is_extracted_with_its_pictures_inline(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, baseConfig(t), newDirStore(t), nil)
	const id = "job-docx"
	_, err := f.conv.Handle(ctx, jobEvent(t, id, "office/scan.docx", nil))
	require.NoError(t, err)
	pages := rendered(t, f.send.take())
	m := manifest(t, f.scratch, id)
	assert.Equal(t, "docx", m.SourceFormat)
	require.Len(t, pages, m.TotalPages)
	require.NotEmpty(t, m.Inline, "a picture-led DOCX has inline pictures")
	host := 0
	for _, p := range pages {
		ref, isPicture := m.Inline[p.Page]
		if !isPicture {
			assert.Equal(t, events.RouteText, p.Route, "page %d: office text needs no engine", p.Page)
			assert.Zero(t, p.WidthPt, "page %d: office text has no page size", p.Page)
			var l structured.Layout
			require.NoError(t, scratch.GetJSON(ctx, f.scratch, p.BlocksKey, &l), "page %d sidecar", p.Page)
			assert.Equal(t, structured.SourceOffice, l.Source, "page %d sidecar", p.Page)
			md, err := scratch.GetBytes(ctx, f.scratch, p.TextKey)
			require.NoError(t, err)
			var texts []string
			for _, b := range l.Blocks {
				assert.Nil(t, b.BBox, "page %d: office blocks have no box", p.Page)
				texts = append(texts, b.Text)
			}
			assert.Equal(t, strings.Join(strings.Fields(string(md)), " "), strings.Join(strings.Fields(strings.Join(texts, " ")), " "), "page %d: the blocks hold the page's text", p.Page)
			host = p.Page
			continue
		}
		assert.Positive(t, p.WidthPt, "picture page %d has a size in points", p.Page)
		assert.Equal(t, events.RouteOCR, p.Route, "picture page %d is OCRed", p.Page)
		assert.Equal(t, host, ref.Page, "picture page %d belongs to the text page before it", p.Page)
		assert.NotEmpty(t, ref.Name)
		img, err := scratch.GetBytes(ctx, f.scratch, p.ImageKey)
		require.NoError(t, err)
		assert.NotEmpty(t, img)
	}
}

// TestConvert_job_with_an_outcome_is_ignored: a redelivered job whose
// outcome is already recorded fetches nothing, publishes nothing and
// replies nothing.
func TestConvert_job_with_an_outcome_is_ignored(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) convertFetcher
	}{
		{"plain_store", func(t *testing.T) convertFetcher { return newDirStore(t) }},
		{"store_that_reuses", func(t *testing.T) convertFetcher {
			return newCapableStore(t, &derivedReport)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			store := tc.store(t)
			f := newFixture(t, baseConfig(t), store, nil)
			const id = "job-ended"
			done, err := events.New(nil, events.FailedID(id), events.TypeJobFailed, "/x", 0, id, events.JobFailed{JobID: id})
			require.NoError(t, err)
			emit, err := scratch.Conclude(ctx, f.scratch, id, "another-event", done)
			require.NoError(t, err)
			require.True(t, emit)

			reply, err := f.conv.Handle(ctx, jobEvent(t, id, "report.pdf", nil))
			require.NoError(t, err)
			assert.Nil(t, reply)
			assert.Empty(t, f.send.take())
			assert.Zero(t, store.fetchCount(), "an ended job is not fetched")
			ok, err := f.scratch.Exists(ctx, scratch.ManifestKey(id))
			require.NoError(t, err)
			assert.False(t, ok, "an ended job gets no manifest")
		})
	}
}

// convertFetcher is a test content store that counts its fetches.
type convertFetcher interface {
	convert.Fetcher
	fetchCount() int
}

func (d *dirStore) fetchCount() int { return int(d.fetches.Load()) }

// TestConvert_send_failure_is_transient_and_retried_whole: a Sender that
// fails makes Handle return a retryable error and no reply, records no
// outcome and no failure; the retry publishes every page.
func TestConvert_send_failure_is_transient_and_retried_whole(t *testing.T) {
	for _, tc := range []struct {
		name      string
		file      string
		failAt    int
		slice     time.Duration
		wantPages []int
	}{
		{name: "started_event", file: "report.pdf", failAt: 1, wantPages: []int{1, 2, 3, 4, 5, 6}},
		{name: "first_text_page", file: "report.pdf", failAt: 2, wantPages: []int{1, 2, 3, 4, 5, 6}},
		{name: "last_text_page", file: "report.pdf", failAt: 7, wantPages: []int{1, 2, 3, 4, 5, 6}},
		{name: "image_page", file: "scanned.pdf", failAt: 3, wantPages: []int{1, 2}},
		{name: "continuation", file: "report.pdf", failAt: 3, slice: time.Nanosecond, wantPages: []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			cfg := baseConfig(t)
			cfg.Slice = tc.slice
			store := newCapableStore(t, nil)
			send := &sender{failAt: tc.failAt}
			f := newFixture(t, cfg, store, send)
			const id = "job-send-fails"
			e := jobEvent(t, id, tc.file, nil)

			reply, err := f.conv.Handle(ctx, e)
			require.Error(t, err)
			assert.ErrorIs(t, err, errBroker)
			assert.True(t, failure.Retryable(err), "a Sender failure must be retried: %v", err)
			assert.Nil(t, reply)
			assert.Empty(t, store.failures, "a transient failure leaves no failure trace")
			_, ended, err := scratch.GetOutcome(ctx, f.scratch, id)
			require.NoError(t, err)
			assert.False(t, ended, "a transient failure ends nothing")

			f.send.take()
			reply, err = f.conv.Handle(ctx, e)
			require.NoError(t, err, "the retry succeeds")
			assert.Nil(t, reply)
			sent := f.send.take()
			assert.Len(t, ofType(sent, events.TypeJobStarted), 1)
			assert.Equal(t, tc.wantPages, pageNumbers(rendered(t, sent)), "the retry publishes the pages again")
			if tc.slice > 0 {
				assert.Len(t, ofType(sent, events.TypeConvertContinue), 1, "the retry hands on the rest")
			}
		})
	}
}

// TestConvert_working_directory_is_removed_whatever_the_outcome: the
// per-job working directory under Config.TempDir goes after a transient
// failure, a failed job and a converted one.
func TestConvert_working_directory_is_removed_whatever_the_outcome(t *testing.T) {
	cfg := baseConfig(t)
	f := newFixture(t, cfg, newDirStore(t), &sender{failAt: 3})
	_, err := f.conv.Handle(t.Context(), jobEvent(t, "job-tmp-1", "report.pdf", nil))
	require.Error(t, err)
	_, err = f.conv.Handle(t.Context(), jobEvent(t, "job-tmp-2", "bad/truncated.pdf", nil))
	require.NoError(t, err)
	_, err = f.conv.Handle(t.Context(), jobEvent(t, "job-tmp-3", "report.pdf", nil))
	require.NoError(t, err)
	left, err := os.ReadDir(cfg.TempDir)
	require.NoError(t, err)
	assert.Empty(t, left, "working directories left behind")
}

// derivedReport is an existing result a content store may hold.
var derivedReport = content.Derived{Ref: "derived-42", Refs: map[string]string{"markdown": "derived-42"}, PageCount: 6, PagesByRoute: map[string]int{"text": 6, "gpu": 0}}

// TestConvert_existing_result_is_reused_unless_forced: a content store
// that holds a result with the job's idempotency key completes the job at
// once (reused, nothing fetched or converted); hint force converts anyway.
func TestConvert_existing_result_is_reused_unless_forced(t *testing.T) {
	for _, tc := range []struct {
		name      string
		existing  *content.Derived
		hints     map[string]string
		outputs   []string // Config.Outputs
		wantReuse bool
		wantKey   string // "" = Existing not asked
		wantAsked string // the outputs Existing is asked for
	}{
		{name: "existing_result_completes_the_job", existing: &derivedReport, wantReuse: true,
			wantKey: recipe.Key(contentID("job-reuse"), ""), wantAsked: "markdown"},
		{name: "store_is_asked_for_the_configured_outputs", existing: &derivedReport, outputs: []string{"markdown", "json"}, wantReuse: true,
			wantKey: recipe.Key(contentID("job-reuse"), ""), wantAsked: "markdown,json"},
		{name: "store_is_asked_for_the_outputs_of_the_hint", existing: &derivedReport, outputs: []string{"markdown", "json"},
			hints: map[string]string{"output_format": "pdf,json"}, wantReuse: true, wantKey: recipe.Key(contentID("job-reuse"), ""), wantAsked: "json,pdf"},
		{name: "mode_hint_is_part_of_the_key", existing: &derivedReport, hints: map[string]string{"resolution": "tiny"}, wantReuse: true,
			wantKey: recipe.Key(contentID("job-reuse"), "tiny"), wantAsked: "markdown"},
		{name: "force_converts_anyway", existing: &derivedReport, hints: map[string]string{"force": "true"}},
		{name: "no_existing_result_converts", wantKey: recipe.Key(contentID("job-reuse"), ""), wantAsked: "markdown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			store := newCapableStore(t, tc.existing)
			cfg := baseConfig(t)
			cfg.Outputs = tc.outputs
			f := newFixture(t, cfg, store, nil)
			const id = "job-reuse"

			reply, err := f.conv.Handle(ctx, jobEvent(t, id, "report.pdf", tc.hints))
			require.NoError(t, err)
			if tc.wantKey == "" {
				assert.Empty(t, store.keys, "Existing must not be asked")
			} else {
				assert.Equal(t, []string{tc.wantKey}, store.keys)
				assert.Equal(t, []string{tc.wantAsked}, store.outputs, "outputs the store is asked for")
			}
			sent := f.send.take()
			if !tc.wantReuse {
				assert.Nil(t, reply)
				assert.Equal(t, 1, store.fetchCount())
				assert.Len(t, rendered(t, sent), 6, "the job is converted")
				return
			}
			require.NotNil(t, reply)
			assert.Equal(t, events.TypeJobCompleted, reply.Type())
			assert.Equal(t, events.CompletedID(id), reply.ID())
			var jc events.JobCompleted
			require.NoError(t, events.Decode(*reply, &jc))
			assert.True(t, jc.Reused)
			assert.Equal(t, id, jc.JobID)
			assert.Equal(t, contentID(id), jc.ContentID)
			assert.Equal(t, derivedReport.Ref, jc.DerivedContentID)
			assert.Equal(t, derivedReport.Refs, jc.DerivedContents, "derived_contents of the reused result")
			assert.Equal(t, derivedReport.PageCount, jc.PageCount)
			assert.Equal(t, derivedReport.PagesByRoute, jc.PagesByRoute)
			assert.Zero(t, store.fetchCount(), "a reused job is not fetched")
			assert.Empty(t, sent, "a reused job publishes nothing")
			o, ended, err := scratch.GetOutcome(ctx, f.scratch, id)
			require.NoError(t, err)
			require.True(t, ended, "reuse ends the job")
			assert.Equal(t, "completed", o.Status)
			assert.Equal(t, reply.ID(), o.EventID)
		})
	}
}

// TestConvert_unusable_source_fails_the_job_once: a job whose source is
// missing, corrupt or of a kind that cannot be read replies ocr.job.failed
// (validation), leaves one failure trace in the content store and
// publishes nothing; a redelivery changes nothing.
func TestConvert_unusable_source_fails_the_job_once(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		hints      map[string]string
		wantMsg    string
	}{
		{name: "missing_file", file: "no-such-file.pdf", wantMsg: "does not exist"},
		{name: "empty_pdf", file: "bad/empty.pdf", wantMsg: "empty"},
		{name: "truncated_pdf", file: "bad/truncated.pdf", wantMsg: "truncated"},
		{name: "broken_xref", file: "bad/broken-xref.pdf", wantMsg: "0 pages"},
		{name: "encrypted_pdf", file: "bad/encrypted.pdf", wantMsg: "encrypted"},
		{name: "huge_image", file: "bad/huge-dimensions.png", wantMsg: "MAX_IMAGE_PIXELS"},
		{name: "text_file_named_pdf", file: "bad/lying-extension.pdf", wantMsg: "unsupported document type"},
		{name: "random_bytes", file: "bad/random.bin", wantMsg: "unsupported document type"},
		{name: "opendocument_without_libreoffice", file: "bad/notes.odt", wantMsg: "LibreOffice"},
		{name: "zip_bomb_docx", file: "office/zipbomb.docx", wantMsg: "zip bomb"},
		{name: "docx_with_path_traversal", file: "office/traversal.docx", wantMsg: "path traversal"},
		{name: "page_range_selects_no_page", file: "report.pdf", hints: map[string]string{"pages": "9-12"}, wantMsg: "selects no page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			cfg := baseConfig(t)
			cfg.Limits.MaxImagePixels = 50_000_000
			store := newCapableStore(t, nil)
			f := newFixture(t, cfg, store, nil)
			const id = "job-bad"
			e := jobEvent(t, id, tc.file, tc.hints)

			reply, err := f.conv.Handle(ctx, e)
			require.NoError(t, err, "a validation failure is a reply, not an error")
			require.NotNil(t, reply)
			assert.Equal(t, events.TypeJobFailed, reply.Type())
			assert.Equal(t, events.FailedID(id), reply.ID())
			var jf events.JobFailed
			require.NoError(t, events.Decode(*reply, &jf))
			assert.Equal(t, id, jf.JobID)
			assert.Equal(t, contentID(id), jf.ContentID)
			assert.Equal(t, "validation", jf.ErrorType)
			assert.Contains(t, strings.ToLower(jf.Message), strings.ToLower(tc.wantMsg))
			assert.Zero(t, jf.RetryCount)
			assert.Empty(t, f.send.take(), "a failed job publishes nothing")

			require.Len(t, store.failures, 1, "one failure trace")
			got := store.failures[0]
			assert.Equal(t, id, got.JobID)
			assert.Equal(t, contentID(id), got.ContentID)
			assert.Equal(t, "validation", got.ErrorType)
			assert.Equal(t, jf.Message, got.Message)
			assert.Equal(t, recipe.Key(contentID(id), ""), got.IdempotencyKey)

			o, ended, err := scratch.GetOutcome(ctx, f.scratch, id)
			require.NoError(t, err)
			require.True(t, ended)
			assert.Equal(t, "failed", o.Status)

			reply, err = f.conv.Handle(ctx, e)
			require.NoError(t, err)
			require.NotNil(t, reply, "the deciding event's redelivery replies ocr.job.failed again (its first reply may have been lost)")
			assert.Equal(t, events.FailedID(id), reply.ID(), "a redelivery repeats the job's own outcome")
			assert.Len(t, store.failures, 1, "still one failure trace")
			assert.Empty(t, f.send.take(), "a redelivery of a failed job publishes nothing")
		})
	}
}

// TestConvert_invalid_job_fails_without_a_trace: a job event that cannot be
// parsed replies ocr.job.failed; with an unusable id nothing is recorded.
func TestConvert_invalid_job_fails_without_a_trace(t *testing.T) {
	for _, tc := range []struct {
		name     string
		id       string
		wantKeys []string // what the scratch store holds after
	}{
		{name: "wrong_uow_is_recorded_under_its_id", id: "job-uow", wantKeys: []string{scratch.OutcomeKey("job-uow")}},
		{name: "unusable_id_is_not_recorded", id: "../escape"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			store := newCapableStore(t, nil)
			f := newFixture(t, baseConfig(t), store, nil)
			e := jobEvent(t, "placeholder", "report.pdf", nil)
			e.SetID(tc.id)
			require.NoError(t, e.SetData("application/json", map[string]any{"job_id": tc.id, "uow": "not-ocr"}))

			reply, err := f.conv.Handle(ctx, e)
			require.NoError(t, err)
			require.NotNil(t, reply)
			assert.Equal(t, events.TypeJobFailed, reply.Type())
			assert.Equal(t, events.FailedID(tc.id), reply.ID())
			var jf events.JobFailed
			require.NoError(t, events.Decode(*reply, &jf))
			assert.Equal(t, "validation", jf.ErrorType)
			assert.Zero(t, store.fetchCount())
			assert.Empty(t, store.failures, "a job without a content id leaves no trace")
			keys, err := f.scratch.List(ctx, "")
			require.NoError(t, err)
			assert.Equal(t, tc.wantKeys, keys, "only a usable id gets its outcome recorded")
		})
	}
}

// TestConvert_outputs_are_decided_once_per_job: the manifest names the
// outputs the job stores (its hint, else the configured default); for a
// searchable PDF the source is kept in the scratch store, and a source
// that cannot have one has it recorded unavailable — or fails the job
// when it is all the job asks for.
func TestConvert_outputs_are_decided_once_per_job(t *testing.T) {
	for _, tc := range []struct {
		name            string
		file            string
		outputs         []string // Config.Outputs
		hints           map[string]string
		wantOutputs     []string
		wantSource      bool
		wantUnavailable bool
		wantFailed      string
	}{
		{name: "nothing_said_is_markdown", file: "page.png", wantOutputs: []string{"markdown"}},
		{name: "configured_default", file: "page.png", outputs: []string{"markdown", "json"}, wantOutputs: []string{"markdown", "json"}},
		{name: "hint_overrides_the_default", file: "page.png", outputs: []string{"markdown", "json"}, hints: map[string]string{"output_format": "json"}, wantOutputs: []string{"json"}},
		{name: "pdf_of_a_pdf_keeps_the_source", file: "scanned.pdf", hints: map[string]string{"output_format": "markdown,pdf"}, wantOutputs: []string{"markdown", "pdf"}, wantSource: true},
		{name: "pdf_of_an_image_keeps_the_source", file: "page.jpg", outputs: []string{"pdf"}, wantOutputs: []string{"pdf"}, wantSource: true},
		{name: "pdf_of_a_docx_is_unavailable", file: "office/report.docx", hints: map[string]string{"output_format": "markdown,json,pdf"}, wantOutputs: []string{"markdown", "json", "pdf"}, wantUnavailable: true},
		{name: "pdf_alone_of_a_docx_fails_the_job", file: "office/report.docx", hints: map[string]string{"output_format": "pdf"}, wantFailed: "output_format pdf: a DOCX read natively has no pages to draw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			cfg := baseConfig(t)
			cfg.Outputs = tc.outputs
			f := newFixture(t, cfg, newDirStore(t), nil)
			id := "job-" + strings.ReplaceAll(tc.name, "_", "-")
			reply, err := f.conv.Handle(ctx, jobEvent(t, id, tc.file, tc.hints))
			require.NoError(t, err)
			if tc.wantFailed != "" {
				require.NotNil(t, reply)
				require.Equal(t, events.TypeJobFailed, reply.Type())
				var jf events.JobFailed
				require.NoError(t, events.Decode(*reply, &jf))
				assert.Equal(t, string(failure.TypeValidation), jf.ErrorType)
				assert.Contains(t, jf.Message, tc.wantFailed)
				return
			}
			m := manifest(t, f.scratch, id)
			assert.Equal(t, tc.wantOutputs, m.Outputs, "manifest outputs")
			if tc.wantUnavailable {
				assert.Contains(t, m.Unavailable["pdf"], "DOCX read natively has no pages to draw", "manifest unavailable")
			} else {
				assert.Empty(t, m.Unavailable, "manifest unavailable")
			}
			if !tc.wantSource {
				assert.Empty(t, m.SourceKey, "no source kept")
				ok, err := f.scratch.Exists(ctx, scratch.SourceKey(id))
				require.NoError(t, err)
				assert.False(t, ok, "no source kept")
				return
			}
			require.Equal(t, scratch.SourceKey(id), m.SourceKey)
			kept, err := scratch.GetBytes(ctx, f.scratch, m.SourceKey)
			require.NoError(t, err)
			want, err := os.ReadFile(testdata + "/" + tc.file)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, kept), "the kept source is the source's bytes")
		})
	}
}

// TestConvert_replay_takes_over_finished_pages_with_their_layout: a replay
// takes over the pages the replayed job finished; their records keep the
// keys of the replayed job's markdown and layout sidecar, and the page
// event names them, so the JSON document and an indexer still find the
// page's blocks.
func TestConvert_replay_takes_over_finished_pages_with_their_layout(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, baseConfig(t), newDirStore(t), nil)
	const old, replay = "job-old", "job-replay"
	require.NoError(t, scratch.CreateJSON(ctx, f.scratch, scratch.ManifestKey(old), scratch.Manifest{JobID: old, TotalPages: 2, Pages: []int{1, 2}}))
	box := structured.Box{72, 72, 300, 90}
	side := scratch.BlocksKey(old, 2)
	require.NoError(t, scratch.PutJSON(ctx, f.scratch, side, structured.Layout{Page: 2, Source: structured.SourceTesseract,
		Blocks: []structured.Block{{Label: structured.LabelText, BBox: &box, Text: "kept"}}}))
	require.NoError(t, scratch.PutRecord(ctx, f.scratch, old, scratch.PageRecord{
		Page: 2, Status: events.PageOK, Route: events.RouteOCR, Engine: "tesseract", MarkdownKey: scratch.PageKey(old, 2, "md"),
		BlocksKey: side, BlockCount: 1, WidthPt: 595, HeightPt: 842,
	}))
	_, err := f.conv.Handle(ctx, jobEvent(t, replay, "scanned.pdf", map[string]string{job.HintReplayOf: old}))
	require.NoError(t, err)
	rec, ok, err := scratch.GetRecord(ctx, f.scratch, replay, 2)
	require.NoError(t, err)
	require.True(t, ok, "the finished page is taken over")
	assert.Equal(t, side, rec.BlocksKey, "the record names the replayed job's sidecar")
	assert.Equal(t, 1, rec.BlockCount)
	var taken []events.PageRecognized
	for _, e := range ofType(f.send.take(), events.TypePageRecognized) {
		var pr events.PageRecognized
		require.NoError(t, events.Decode(e, &pr))
		taken = append(taken, pr)
	}
	require.Len(t, taken, 1, "page 2 is reported straight to finalize")
	assert.Equal(t, side, taken[0].BlocksKey, "recognized = %+v", taken[0])
	assert.Equal(t, 1, taken[0].BlockCount, "recognized = %+v", taken[0])
}
