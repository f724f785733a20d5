package convert

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/trace"

	"github.com/ocrflow/ocrflow/shared/content"
	structured "github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/office"
	"github.com/ocrflow/ocrflow/shared/render"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// inliner is a document whose picture pages belong inside other pages
// (office documents); finalize folds them back (scratch.Manifest.Inline).
type inliner interface {
	inline() map[int]scratch.Inline
}

// document is a source split into pages, ready to fan out one by one.
type document interface {
	format() render.Format
	pages() int
	// page stores page n of total and publishes it (or a failed page).
	page(ctx context.Context, parent event.Event, j job.Job, n, total int) error
	close()
}

// open sniffs the fetched source and opens it: office documents are
// extracted (text pages, with embedded pictures as OCR pages), everything
// else is rendered.
func (s *Converter) open(ctx context.Context, j job.Job, path string, src content.Source) (document, error) {
	format, sniffed, err := render.Sniff(path)
	if err != nil {
		return nil, err
	}
	if src.MIME != "" && sniffed != "" && !strings.HasPrefix(sniffed, src.MIME) {
		s.log.InfoContext(ctx, "declared type differs from content; using content", "job", j.ID, "declared", src.MIME, "sniffed", sniffed)
	}
	switch {
	case format.Legacy():
		if err := s.canRender(format); err != nil {
			return nil, err
		}
		return s.openThroughPDF(ctx, j, path, format)
	case format.Office():
		if s.cfg.OfficeMode == office.ModeRender {
			return s.openThroughPDF(ctx, j, path, format)
		}
		pages, err := office.Extract(ctx, path, office.Kind(format), s.cfg.Office)
		if err != nil {
			return nil, err
		}
		if s.cfg.OfficeMode == office.ModeAuto && s.cfg.PDF != nil && office.MostlyImages(pages) {
			s.log.InfoContext(ctx, "office document is mostly pictures; rendering it whole", "job", j.ID, "format", format)
			doc, err := s.openThroughPDF(ctx, j, path, format)
			if err == nil || failure.Retryable(err) {
				return doc, err
			}
			// The native reading is still good: use it rather than fail.
			s.log.WarnContext(ctx, "libreoffice failed; using the native reading", "job", j.ID, "format", format, "error", err)
		}
		return s.newOfficeDoc(pages, format)
	}
	doc, err := render.Open(ctx, path, s.limits(path))
	if err != nil {
		return nil, err
	}
	return &rendered{s: s, doc: doc, path: path}, nil
}

// limits are the render limits for a file in a job's working directory:
// whatever opening it needs on disk goes into that directory too.
func (s *Converter) limits(path string) render.Limits {
	lim := s.cfg.Limits
	lim.TempDir = filepath.Dir(path)
	return lim
}

// canRender explains why a legacy or OpenDocument file cannot be read when
// OFFICE_MODE or a missing LibreOffice rules out the conversion.
func (s *Converter) canRender(format render.Format) error {
	switch {
	case s.cfg.OfficeMode == office.ModeNative:
		return failure.Validation("%s documents are read by converting them with LibreOffice, which OFFICE_MODE=native turns off: "+
			"set OFFICE_MODE=auto, or save the file as DOCX, XLSX, PPTX or PDF", format.Describe())
	case s.cfg.PDF == nil:
		return failure.Validation("%s documents are read by converting them with LibreOffice, which is not installed here: "+
			"install it (libreoffice-writer-nogui, -calc-nogui, -impress-nogui), or save the file as DOCX, XLSX, PPTX or PDF", format.Describe())
	}
	return nil
}

// openThroughPDF converts an office document to PDF with LibreOffice (in
// the job's temp dir, next to the source) and opens the PDF: its pages
// then take their text layer or are OCRed like any PDF's, with the page
// layout LibreOffice gives them.
func (s *Converter) openThroughPDF(ctx context.Context, j job.Job, path string, format render.Format) (document, error) {
	if s.cfg.PDF == nil {
		return nil, s.canRender(format)
	}
	start := time.Now()
	pdf, err := s.cfg.PDF.ToPDF(ctx, path, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s to pdf: %w", format.Describe(), err)
	}
	doc, err := render.Open(ctx, pdf, s.limits(pdf))
	if err != nil {
		return nil, fmt.Errorf("%s converted to pdf: %w", format.Describe(), err)
	}
	s.log.InfoContext(ctx, "office document converted with libreoffice", "job", j.ID, "format", format, "pages", doc.Pages(), "ms", time.Since(start).Milliseconds())
	return &rendered{s: s, doc: doc, as: format, path: pdf}, nil
}

// rendered is a PDF or image: pages take their text layer or are rendered.
type rendered struct {
	s   *Converter
	doc *render.Document
	// as is the source format when doc is a conversion of it (an office
	// document rendered through LibreOffice); "" when doc is the source.
	as render.Format
	// path is the file doc was opened from: the source, or its conversion.
	path string
}

func (r *rendered) format() render.Format {
	if r.as != "" {
		return r.as
	}
	return r.doc.Format()
}
func (r *rendered) pages() int { return r.doc.Pages() }
func (r *rendered) close()     { _ = r.doc.Close() } // read only: nothing is lost
func (r *rendered) page(ctx context.Context, parent event.Event, j job.Job, n, total int) error {
	return r.s.page(ctx, parent, j, r.doc, n, total)
}

// officePage is one page of an office document: markdown text, or an
// embedded picture to OCR.
type officePage struct {
	markdown string
	image    *office.Image
}

// officeDoc is an extracted DOCX, PPTX or XLSX. Its text needs no engine;
// each embedded picture becomes its own OCR page right after the page it
// appears on, which finalize folds back into that page (inline).
type officeDoc struct {
	s     *Converter
	kind  render.Format
	items []officePage
}

// newOfficeDoc lays out extracted pages: each page's text, then each of its
// pictures as a page of its own.
func (s *Converter) newOfficeDoc(pages []office.Page, format render.Format) (*officeDoc, error) {
	d := &officeDoc{s: s, kind: format}
	for _, p := range pages {
		d.items = append(d.items, officePage{markdown: p.Markdown})
		for i := range p.Images {
			d.items = append(d.items, officePage{image: &p.Images[i]})
		}
	}
	if len(d.items) == 0 {
		return nil, failure.Validation("the %s has no content", format)
	}
	if lim := s.cfg.Limits.MaxPages; lim > 0 && len(d.items) > lim {
		return nil, failure.Validation("the %s has %d pages and pictures, more than MAX_PAGES=%d", format, len(d.items), lim)
	}
	return d, nil
}

// inline maps each picture page to the text page it appears on.
func (d *officeDoc) inline() map[int]scratch.Inline {
	out := map[int]scratch.Inline{}
	host := 0
	for i, it := range d.items {
		switch {
		case it.image == nil:
			host = i + 1
		case host > 0:
			out[i+1] = scratch.Inline{Page: host, Name: it.image.Name}
		}
	}
	return out
}

func (d *officeDoc) format() render.Format { return d.kind }
func (d *officeDoc) pages() int            { return len(d.items) }
func (d *officeDoc) close()                { d.items = nil }

func (d *officeDoc) page(ctx context.Context, parent event.Event, j job.Job, n, total int) error {
	it := d.items[n-1]
	if it.image == nil {
		return d.s.textPage(ctx, parent, j, n, total, it.markdown, 1, structured.Layout{
			Source: structured.SourceOffice, Blocks: structured.FromMarkdown(it.markdown),
		})
	}
	_, span := d.s.cfg.Tracer.Start(ctx, "render", trace.WithAttributes(obs.AttrPage.Int(n)))
	p, err := render.FromImage(it.image.Data, d.s.cfg.Target, d.s.cfg.Limits.MaxImagePixels)
	obs.EndSpan(span, err)
	if err != nil {
		if failure.Retryable(err) {
			return fmt.Errorf("picture %s: %w", it.image.Name, err)
		}
		return d.s.failedPage(ctx, parent, j, n, total, fmt.Errorf("picture %s: %w", it.image.Name, err))
	}
	return d.s.imagePage(ctx, parent, j, n, total, p, 0)
}
