package convert

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/render"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// outputs decides what job j stores for doc: the outputs it asks for (its
// output_format hint, else Config.Outputs), those doc cannot have (with
// the reason), and — when it asks for a searchable PDF — the file the PDF
// is drawn from, kept in the scratch store under scratch.SourceKey (the
// source PDF or image, or the PDF LibreOffice made of an office document;
// none for TIFF and CBZ, whose PDF is drawn from the page images). A job
// that asks only for what its source cannot have fails as validation.
func (s *Converter) outputs(ctx context.Context, j job.Job, doc document) (outs []string, unavailable map[string]string, sourceKey string, err error) {
	outs = j.OutputsOr(s.outputsDefault())
	if !slices.Contains(outs, job.OutputPDF) {
		return outs, nil, "", nil
	}
	keep, why := pdfSource(doc)
	if why != "" {
		if len(outs) == 1 {
			return nil, nil, "", failure.Validation("output_format pdf: %s; ask for markdown or json", why)
		}
		return outs, map[string]string{job.OutputPDF: why}, "", nil
	}
	if keep == "" {
		return outs, nil, "", nil
	}
	f, err := os.Open(keep)
	if err != nil {
		return nil, nil, "", failure.Transient("keep the source for the searchable PDF: %v", err)
	}
	defer func() { _ = f.Close() }() // read only: nothing is lost
	if err := s.blobs.Put(ctx, scratch.SourceKey(j.ID), f); err != nil {
		return nil, nil, "", fmt.Errorf("keep the source for the searchable PDF: %w", err)
	}
	return outs, nil, scratch.SourceKey(j.ID), nil
}

// pdfSource returns the file a searchable PDF of doc is drawn from ("" when
// it is drawn from the page images), or why doc cannot have one.
func pdfSource(doc document) (path, why string) {
	r, ok := doc.(*rendered)
	if !ok {
		return "", fmt.Sprintf("a %s read natively has no pages to draw (set OFFICE_MODE=render to convert it with LibreOffice first)", doc.format().Describe())
	}
	switch r.doc.Format() {
	case render.FormatPDF:
		return r.path, ""
	case render.FormatPNG, render.FormatJPEG, render.FormatGIF, render.FormatBMP, render.FormatWebP, render.FormatAVIF, render.FormatHEIC:
		return r.path, ""
	case render.FormatTIFF, render.FormatCBZ:
		return "", "" // image pages: drawn from the page images
	}
	return "", fmt.Sprintf("a searchable PDF is made from PDFs and images, not from %s", r.doc.Format().Describe())
}
