// Package convert is the first stage: it validates a job, fetches its
// source, sniffs the real type, renders every page to the scratch store and
// fans out one ocr.page.rendered event per page.
package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ocrflow/ocrflow/shared/content"
	structured "github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/office"
	"github.com/ocrflow/ocrflow/shared/render"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/textlayer"
)

// Source is the event source of events convert emits.
const Source = "/ocrflow/convert"

// Sender publishes an event (fan-out cannot be a single reply).
type Sender interface {
	Send(ctx context.Context, e event.Event) error
}

// Fetcher copies a job's source document to a local file.
type Fetcher interface {
	Fetch(ctx context.Context, j job.Job, dst string, maxBytes int64) (content.Source, error)
}

// PDFConverter turns an office document into a PDF in dir and returns the
// PDF's path (libreoffice.Converter).
type PDFConverter interface {
	ToPDF(ctx context.Context, src, dir string) (string, error)
}

// Config configures the stage.
type Config struct {
	// Target is the page size the recognition engine wants.
	Target render.Target
	// Limits bound accepted documents.
	Limits render.Limits
	// MaxSourceBytes bounds the downloaded source (0 = no limit).
	MaxSourceBytes int64
	// Temp makes the per-job working directories (tmpspace.Space: removed
	// whatever happens, refused when the disk is nearly full); nil makes
	// them in TempDir.
	Temp TempSpace
	// TempDir holds per-job working directories when Temp is nil
	// (default os.TempDir()).
	TempDir string
	// TextLayer says when a page's own text replaces OCR (default auto).
	TextLayer textlayer.Mode
	// Office bounds DOCX/PPTX/XLSX extraction (zip-bomb guards; zero
	// values take the office package's defaults).
	Office office.Limits
	// OfficeMode says when office documents are rendered through PDF
	// instead of extracted (default office.ModeAuto).
	OfficeMode office.Mode
	// PDF converts office documents to PDF (LibreOffice); nil when it is
	// not installed, which ModeAuto tolerates and ModeRender does not.
	PDF PDFConverter
	// Slice is how long one delivery converts before it hands the rest
	// of the document to a continuation event (ocr.convert.continue) and
	// returns; at least one page is converted per delivery. Keep it under
	// the convert Trigger's timeout minus one page (default 20 s).
	Slice time.Duration
	// Recipe keys the job's result (content.IdempotencyKey) for reuse and
	// failure traces.
	Recipe content.Recipe
	// Outputs are what a job stores unless its output_format hint says
	// otherwise (OCR_OUTPUTS; default markdown alone).
	Outputs []string
	// Tracer starts the spans of the source's fetch and open and of each
	// page's text layer and render, under the handling's span (default: a
	// no-op tracer).
	Tracer trace.Tracer
}

// DefaultSlice is the default Config.Slice.
const DefaultSlice = 20 * time.Second

// Converter is the convert stage.
type Converter struct {
	cfg     Config
	blobs   scratch.Store
	fetcher Fetcher
	send    Sender
	log     *slog.Logger
}

// TempSpace makes working directories (tmpspace.Space): Dir returns a new
// one and the function that removes it, or a transient error when no new
// work should start here (the disk is nearly full).
type TempSpace interface {
	Dir(pattern string) (dir string, release func(), err error)
}

// osTemp makes working directories in a plain directory.
type osTemp string

// Dir makes a directory under t.
func (t osTemp) Dir(pattern string) (string, func(), error) {
	dir, err := os.MkdirTemp(string(t), pattern)
	if err != nil {
		return "", nil, failure.Transient("temp dir: %v", err)
	}
	return dir, func() { _ = os.RemoveAll(dir) }, nil
}

// New returns the convert stage.
func New(cfg Config, blobs scratch.Store, fetcher Fetcher, send Sender, log *slog.Logger) *Converter {
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.Temp == nil {
		cfg.Temp = osTemp(cfg.TempDir)
	}
	if cfg.TextLayer == "" {
		cfg.TextLayer = textlayer.ModeAuto
	}
	if cfg.OfficeMode == "" {
		cfg.OfficeMode = office.ModeAuto
	}
	if cfg.Slice <= 0 {
		cfg.Slice = DefaultSlice
	}
	if cfg.Tracer == nil {
		cfg.Tracer = obs.NoopTracer()
	}
	return &Converter{cfg: cfg, blobs: blobs, fetcher: fetcher, send: send, log: log}
}

// Handle converts one simpleprocess.job. It publishes ocr.job.started and
// then one ocr.page.rendered per page through the Sender (started first, so
// the job's lifecycle is seen in order), and replies nothing. A job whose
// result the content store already holds (content.Reuser; not with hint
// force) replies ocr.job.completed with reused: true instead. A job that
// cannot be processed replies ocr.job.failed, after the content store's
// failure trace (content.FailureRecorder); transient trouble is returned as
// an error for the transport to retry.
//
// A document that takes longer than Config.Slice to convert is converted in
// slices: the delivery publishes ocr.convert.continue naming the next page
// and returns, and that event resumes the job (Handle serves both types).
func (s *Converter) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	start := time.Now()
	parent, next, err := e, 0, error(nil)
	var j job.Job
	if e.Type() == events.TypeConvertContinue {
		parent, next, err = continuation(e)
		j.ID, _ = e.Extensions()[events.ExtJob].(string)
	}
	if err == nil {
		j, err = job.Parse(parent)
	}
	if err == nil {
		// Every event of the job carries its priority (the lanes), also
		// when the producer did not set the extension.
		parent.SetExtension(events.ExtPriority, string(j.Hints.Priority))
		again, ended, err := scratch.Ended(ctx, s.blobs, j.ID, e.ID())
		if err != nil {
			return nil, err
		}
		if ended {
			if again == nil {
				s.log.InfoContext(ctx, "job already finished; ignoring redelivery", "job", j.ID)
			}
			return again, nil
		}
	}
	var reply *event.Event
	handled := false
	if err == nil && next == 0 {
		reply, handled, err = s.reuse(ctx, e, parent, j)
	}
	if err == nil && !handled {
		err = s.convert(ctx, parent, j, next, start)
	}
	if err == nil || failure.Retryable(err) {
		return reply, err
	}
	if !job.ValidID(j.ID) {
		j.ID = ""
	}
	return s.fail(ctx, e, parent, j, err)
}

// continuation unpacks an ocr.convert.continue event: the original job
// event and the index of the next page.
func continuation(e event.Event) (event.Event, int, error) {
	var c events.ConvertContinue
	if err := events.Decode(e, &c); err != nil {
		return e, 0, failure.Validation("continuation %s: %v", e.ID(), err)
	}
	var orig event.Event
	if err := json.Unmarshal(c.Job, &orig); err != nil {
		return e, 0, failure.Validation("continuation %s: job event: %v", e.ID(), err)
	}
	if c.Next < 1 || orig.ID() != c.JobID {
		return e, 0, failure.Validation("continuation %s: next page index %d of job %q does not resume job %q", e.ID(), c.Next, c.JobID, orig.ID())
	}
	return orig, c.Next, nil
}

// continueAt publishes the continuation that resumes job j at index next
// of its page list.
func (s *Converter) continueAt(ctx context.Context, parent event.Event, j job.Job, next int) error {
	raw, err := json.Marshal(parent)
	if err != nil {
		return fmt.Errorf("continuation: %w", err)
	}
	ev, err := events.New(&parent, events.ContinueID(j.ID, next), events.TypeConvertContinue, Source, 0, j.ID,
		events.ConvertContinue{JobID: j.ID, Next: next, Job: raw})
	if err != nil {
		return err
	}
	if err := s.send.Send(ctx, ev); err != nil {
		return fmt.Errorf("send continuation: %w", err)
	}
	return nil
}

// fail ends job j with ocr.job.failed for cause, decided by handling e.
func (s *Converter) fail(ctx context.Context, e, parent event.Event, j job.Job, cause error) (*event.Event, error) {
	ev, err := events.Failed(&parent, Source, j.ID, j.ContentID, string(failure.Classify(cause)),
		failure.Text(cause), stage.Attempt(ctx)-1)
	if err != nil {
		return nil, err
	}
	if j.ID == "" {
		return &ev, nil // nothing can be recorded under an unusable id
	}
	if err := s.recordFailure(ctx, j, cause); err != nil {
		return nil, err
	}
	return scratch.End(ctx, s.blobs, j.ID, e, ev)
}

// convert converts job j's pages from index next of its page list on,
// until they are done or the slice that began at start is used up.
func (s *Converter) convert(ctx context.Context, parent event.Event, j job.Job, next int, start time.Time) error {
	if next == 0 {
		j.LogUnknown(ctx, s.log)
		// Keep the job as it arrived, for status and replay (the first
		// acceptance wins: a submitter may have kept it already).
		if err := scratch.Submit(ctx, s.blobs, j.ID, "convert", parent); err != nil {
			return err
		}
	}

	dir, release, err := s.cfg.Temp.Dir("job-" + j.ID + "-")
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	defer release()

	srcPath := filepath.Join(dir, "source")
	fctx, span := s.cfg.Tracer.Start(ctx, "fetch")
	src, err := s.fetcher.Fetch(fctx, j, srcPath, s.cfg.MaxSourceBytes)
	span.SetAttributes(attribute.Int64("ocrflow.source_bytes", src.Size))
	obs.EndSpan(span, err)
	if err != nil {
		return fmt.Errorf("fetch source: %w", err)
	}
	octx, span := s.cfg.Tracer.Start(ctx, "open")
	doc, err := s.open(octx, j, srcPath, src)
	obs.EndSpan(span, err)
	if err != nil {
		return fmt.Errorf("open %s: %w", src.Name, err)
	}
	defer doc.close()
	pages, err := job.ParsePages(j.Hints.Pages, doc.pages())
	if err != nil {
		return err
	}

	m := scratch.Manifest{
		JobID: j.ID, ContentID: j.ContentID, TenantID: j.TenantID, OwnerID: j.OwnerID,
		SourceName: src.Name, SourceFormat: string(doc.format()), SourceBytes: src.Size,
		TotalPages: doc.pages(), Pages: pages, Hints: hintMap(j), StartedAt: start.UTC(),
	}
	if next == 0 { // a continuation finds all this in the manifest
		if m.Outputs, m.Unavailable, m.SourceKey, err = s.outputs(ctx, j, doc); err != nil {
			return err
		}
	}
	if in, ok := doc.(inliner); ok {
		m.Inline = in.inline()
	}
	// Keep the first manifest: a redelivered job must not move StartedAt or
	// change the page set under a finalize that is already counting.
	if err := scratch.CreateJSON(ctx, s.blobs, scratch.ManifestKey(j.ID), m); errors.Is(err, scratch.ErrExists) {
		if err := scratch.GetJSON(ctx, s.blobs, scratch.ManifestKey(j.ID), &m); err != nil {
			return err
		}
		pages = m.Pages
	} else if err != nil {
		return err
	}
	prev, err := s.previous(ctx, j, m.TotalPages)
	if err != nil {
		return err
	}
	if next > 0 {
		return s.convertFrom(ctx, parent, j, doc, pages, next, start, prev)
	}

	started, err := events.New(&parent, events.StartedID(j.ID), events.TypeJobStarted, Source, 0, j.ID, events.JobStarted{
		JobID: j.ID, ContentID: j.ContentID, TenantID: j.TenantID, SourceFormat: m.SourceFormat,
		Pages: len(pages), Timestamp: start.UTC().Format(time.RFC3339),
	})
	if err != nil {
		return err
	}
	if err := s.send.Send(ctx, started); err != nil {
		return fmt.Errorf("send started: %w", err)
	}

	return s.convertFrom(ctx, parent, j, doc, pages, 0, start, prev)
}

// convertFrom converts pages[next:] in order, handing the rest to a
// continuation once the slice that began at start is used up. A page prev
// holds (a replay's finished page) is taken over instead of converted.
func (s *Converter) convertFrom(ctx context.Context, parent event.Event, j job.Job, doc document, pages []int, next int, start time.Time, prev map[int]scratch.PageRecord) error {
	if next >= len(pages) {
		return nil // a continuation past the end: the job's pages are all out
	}
	for i := next; i < len(pages); i++ {
		if i > next && time.Since(start) >= s.cfg.Slice {
			s.log.InfoContext(ctx, "converted a slice; continuing", "job", j.ID, "pages", i-next, "next", pages[i], "ms", time.Since(start).Milliseconds())
			return s.continueAt(ctx, parent, j, i)
		}
		if rec, ok := prev[pages[i]]; ok {
			if err := s.takeOver(ctx, parent, j, rec, len(pages)); err != nil {
				return err
			}
			continue
		}
		if err := doc.page(ctx, parent, j, pages[i], len(pages)); err != nil {
			return err
		}
	}
	s.log.InfoContext(ctx, "converted", "job", j.ID, "format", doc.format(), "pages", len(pages)-next, "ms", time.Since(start).Milliseconds())
	return nil
}

// page routes page n: a trustworthy text layer becomes the page's markdown
// and the page skips the engine; otherwise the page is rendered and its
// image stored. Either way one ocr.page.rendered fans it out.
func (s *Converter) page(ctx context.Context, parent event.Event, j job.Job, doc *render.Document, n, total int) error {
	mode := s.cfg.TextLayer
	if m, ok := textlayer.ParseMode(j.Hints.TextLayer); ok {
		mode = m
	}
	score := 0.0
	if mode != textlayer.ModeOff {
		a, ok, err := s.textLayer(ctx, doc, n)
		if err != nil && failure.Retryable(err) {
			return fmt.Errorf("page %d: %w", n, err)
		}
		if err == nil && ok {
			score = a.Score
			if a.Trusted(mode) {
				return s.textPage(ctx, parent, j, n, total, a.Markdown, a.Score, structured.Layout{
					Source: structured.SourceTextLayer, WidthPt: a.WidthPt, HeightPt: a.HeightPt, Blocks: a.Blocks,
				})
			}
		}
	}
	rctx, span := s.cfg.Tracer.Start(ctx, "render", trace.WithAttributes(obs.AttrPage.Int(n)))
	p, err := doc.Render(rctx, n, s.cfg.Target)
	obs.EndSpan(span, err)
	if err != nil {
		if failure.Retryable(err) {
			return fmt.Errorf("page %d: %w", n, err)
		}
		return s.failedPage(ctx, parent, j, n, total, err)
	}
	return s.imagePage(ctx, parent, j, n, total, p, score)
}

// textLayer reads and scores page n's own text (ok is false for a page
// without one).
func (s *Converter) textLayer(ctx context.Context, doc *render.Document, n int) (a textlayer.Analysis, ok bool, err error) {
	ctx, span := s.cfg.Tracer.Start(ctx, "textlayer", trace.WithAttributes(obs.AttrPage.Int(n)))
	defer func() {
		span.SetAttributes(attribute.Bool("ocrflow.text_layer", ok), attribute.Float64("ocrflow.text_score", a.Score))
		obs.EndSpan(span, err)
	}()
	html, w, h, ok, err := doc.PageHTML(ctx, n)
	if err != nil || !ok {
		return a, false, err
	}
	return textlayer.Analyze(html, w, h), true, nil
}

// imagePage stores a rendered page image and fans it out on route ocr.
func (s *Converter) imagePage(ctx context.Context, parent event.Event, j job.Job, n, total int, p render.Page, score float64) error {
	key := scratch.PageKey(j.ID, n, "jpg")
	if err := s.blobs.Put(ctx, key, bytes.NewReader(p.Data)); err != nil {
		return err
	}
	ev, err := events.New(&parent, events.PageRenderedID(j.ID, n), events.TypePageRendered, Source, n, j.ID, events.PageRendered{
		JobID: j.ID, Page: n, Pages: total, Route: events.RouteOCR, ImageKey: key,
		Width: p.Width, Height: p.Height, WidthPt: p.WidthPt, HeightPt: p.HeightPt,
		TimeoutSeconds: j.Hints.TimeoutSeconds, TextScore: score,
	})
	if err != nil {
		return err
	}
	if err := s.send.Send(ctx, ev); err != nil {
		return fmt.Errorf("send page %d: %w", n, err)
	}
	return nil
}

// textPage stores the page's text layer as its markdown, and its layout
// (blocks, page size) as its sidecar, and fans it out on route text.
func (s *Converter) textPage(ctx context.Context, parent event.Event, j job.Job, n, total int, markdown string, score float64, layout structured.Layout) error {
	key := scratch.PageKey(j.ID, n, "text.md")
	if err := s.blobs.Put(ctx, key, strings.NewReader(markdown)); err != nil {
		return err
	}
	layout.Page, layout.Engine = n, structured.SourceTextLayer
	if layout.Blocks == nil {
		layout.Blocks = []structured.Block{}
	}
	side := scratch.BlocksKey(j.ID, n)
	if err := scratch.PutJSON(ctx, s.blobs, side, layout); err != nil {
		return err
	}
	ev, err := events.New(&parent, events.PageRenderedID(j.ID, n), events.TypePageRendered, Source, n, j.ID, events.PageRendered{
		JobID: j.ID, Page: n, Pages: total, Route: events.RouteText, TextKey: key, TextScore: score,
		WidthPt: layout.WidthPt, HeightPt: layout.HeightPt, BlocksKey: side,
	})
	if err != nil {
		return err
	}
	if err := s.send.Send(ctx, ev); err != nil {
		return fmt.Errorf("send page %d: %w", n, err)
	}
	return nil
}

// failedPage records a page that cannot be rendered (a damaged page in an
// otherwise readable document) and reports it straight to finalize, so the
// job completes with a placeholder instead of losing the other pages.
func (s *Converter) failedPage(ctx context.Context, parent event.Event, j job.Job, n, total int, cause error) error {
	rec := scratch.PageRecord{
		Page: n, Status: events.PageFailed, Route: events.RouteOCR, EventID: events.PageRenderedID(j.ID, n),
		Reason: failure.Reason(cause),
	}
	s.log.WarnContext(ctx, "page cannot be rendered", "job", j.ID, "page", n, "reason", rec.Reason)
	if err := scratch.PutRecord(ctx, s.blobs, j.ID, rec); err != nil {
		return err
	}
	ev, err := scratch.RecognizedEvent(&parent, Source, j.ID, total, rec)
	if err != nil {
		return err
	}
	if err := s.send.Send(ctx, *ev); err != nil {
		return fmt.Errorf("send failed page %d: %w", n, err)
	}
	return nil
}

func hintMap(j job.Job) map[string]string {
	h := map[string]string{}
	if j.Hints.Resolution != "" {
		h["resolution"] = j.Hints.Resolution
	}
	if j.Hints.Pages != "" {
		h["pages"] = j.Hints.Pages
	}
	if j.Hints.Force {
		h["force"] = "true"
	}
	if j.Hints.TextLayer != "" {
		h["text_layer"] = j.Hints.TextLayer
	}
	if j.Hints.ReplayOf != "" {
		h[job.HintReplayOf] = j.Hints.ReplayOf
	}
	if r := j.Hints.MaxPageErrorRate; r != nil {
		h[job.HintMaxPageErrorRate] = strconv.FormatFloat(*r, 'g', -1, 64)
	}
	return h
}
