package convert

import (
	"context"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/render"
)

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
func (s *Stage) open(ctx context.Context, j job.Job, path string, src content.Source) (document, error) {
	format, sniffed, err := render.Sniff(path)
	if err != nil {
		return nil, err
	}
	if src.MIME != "" && sniffed != "" && !strings.HasPrefix(sniffed, src.MIME) {
		s.log.Info("declared type differs from content; using content", "job", j.ID, "declared", src.MIME, "sniffed", sniffed)
	}
	if format.Office() {
		return nil, failure.Validation("%s documents are not supported yet", format)
	}
	doc, err := render.Open(ctx, path, s.cfg.Limits)
	if err != nil {
		return nil, err
	}
	return &rendered{s: s, doc: doc}, nil
}

// rendered is a PDF or image: pages take their text layer or are rendered.
type rendered struct {
	s   *Stage
	doc *render.Document
}

func (r *rendered) format() render.Format { return r.doc.Format() }
func (r *rendered) pages() int            { return r.doc.Pages() }
func (r *rendered) close()                { r.doc.Close() }
func (r *rendered) page(ctx context.Context, parent event.Event, j job.Job, n, total int) error {
	return r.s.page(ctx, parent, j, r.doc, n, total)
}
