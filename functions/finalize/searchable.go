package finalize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/searchpdf"
)

// withExtra returns meta with extra's entries added.
func withExtra(meta, extra map[string]any) map[string]any {
	maps.Copy(meta, extra)
	return meta
}

// pdfReport is what the result's metadata says about the searchable PDF.
func pdfReport(r searchpdf.Report) map[string]any {
	m := map[string]any{
		"pages": r.Pages, "pages_imported": r.Imported, "pages_from_images": r.FromImages, "pages_visible_text": r.VisibleText,
	}
	if r.ImportFailed != "" {
		m["import_failed"] = r.ImportFailed
	}
	return m
}

// writePDF writes job m's searchable PDF to w. What each page shows:
//   - a PDF source's page, imported unchanged — with the recognized text
//     laid over it invisibly, unless it took its own text layer (a
//     born-digital page keeps its own text);
//   - an OCR page whose PDF page had a text layer the pipeline did not
//     trust (text score above 0: an old, poor OCR layer) is drawn from its
//     page image instead, so the old text does not double the new;
//   - an image source: the image, full size;
//   - no source kept (TIFF, CBZ): each page's image as convert rendered it.
func (s *Finalizer) writePDF(ctx context.Context, w io.Writer, m scratch.Manifest, recs map[int]scratch.PageRecord) (searchpdf.Report, error) {
	var srcPath, gone string
	var srcImage []byte
	if m.SourceKey != "" {
		path, isPDF, err := s.keepSource(ctx, m.SourceKey)
		switch {
		case errors.Is(err, scratch.ErrNotFound):
			// The scratch state was cleaned up under the job: the pages'
			// images are all there is to draw.
			gone = "the source kept for the searchable PDF is gone: pages drawn from their images"
			s.log.WarnContext(ctx, gone, "job", m.JobID, "key", m.SourceKey)
		case err != nil:
			return searchpdf.Report{}, err
		default:
			defer os.Remove(path)
			if isPDF {
				srcPath = path
			} else if srcImage, err = os.ReadFile(path); err != nil {
				return searchpdf.Report{}, fmt.Errorf("source image: %w", err)
			}
		}
	}
	src := searchpdf.Source{Path: srcPath, Sizes: map[int][2]float64{}, Import: map[int]bool{}}
	if srcPath != "" {
		for _, n := range m.Pages {
			r := recs[n]
			src.Sizes[n], src.Import[n] = [2]float64{r.WidthPt, r.HeightPt}, importable(r)
		}
	}
	pages := func(fn func(searchpdf.Page) error) error {
		for _, n := range m.Pages {
			p, err := s.pdfPage(ctx, m, recs[n], n, srcImage)
			if err != nil {
				return err
			}
			if err := fn(p); err != nil {
				return err
			}
		}
		return nil
	}
	rep, err := searchpdf.Write(w, src, pages, searchpdf.Options{Created: m.StartedAt, Title: m.SourceName})
	if gone != "" && rep.ImportFailed == "" {
		rep.ImportFailed = gone
	}
	return rep, err
}

// importable reports whether the searchable PDF imports the source PDF's
// page for record r (see writePDF).
func importable(r scratch.PageRecord) bool {
	return r.Status != events.PageOK || r.Route == events.RouteText || r.TextScore <= 0
}

// pdfPage is page n of the searchable PDF.
func (s *Finalizer) pdfPage(ctx context.Context, m scratch.Manifest, r scratch.PageRecord, n int, srcImage []byte) (searchpdf.Page, error) {
	l, err := s.layout(ctx, m.JobID, r)
	if err != nil {
		return searchpdf.Page{}, err
	}
	p := searchpdf.Page{Number: n, WidthPt: r.WidthPt, HeightPt: r.HeightPt, OwnText: r.Status == events.PageOK && r.Route == events.RouteText}
	if l != nil {
		p.Lines = searchpdf.LinesOf(*l)
		if p.WidthPt <= 0 {
			p.WidthPt, p.HeightPt = l.WidthPt, l.HeightPt
		}
	}
	if srcImage != nil {
		p.Image = func() ([]byte, error) { return srcImage, nil }
		return p, nil
	}
	if r.ImageKey != "" {
		key := r.ImageKey
		p.Image = func() ([]byte, error) { return scratch.GetBytes(ctx, s.blobs, key) }
	}
	return p, nil
}

// keepSource copies the source kept in the scratch store to a temporary
// file (gofpdi reads a file) and says whether it is a PDF.
func (s *Finalizer) keepSource(ctx context.Context, key string) (path string, isPDF bool, err error) {
	rc, err := s.blobs.Get(ctx, key)
	if err != nil {
		return "", false, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(s.cfg.TempDir, "ocrflow-source-*")
	if err != nil {
		return "", false, fmt.Errorf("source copy: %w", err)
	}
	path = f.Name()
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", false, fmt.Errorf("source copy: %w", err)
	}
	head := make([]byte, 1024)
	if g, err := os.Open(path); err == nil {
		n, _ := io.ReadFull(g, head)
		_ = g.Close()
		head = head[:n]
	}
	return path, bytes.Contains(head, []byte("%PDF-")), nil
}
