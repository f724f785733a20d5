package finalize

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/searchpdf"
)

// outputsOf returns the outputs job m asks for (markdown for a manifest
// from before outputs were chosen).
func outputsOf(m scratch.Manifest) []string {
	if len(m.Outputs) == 0 {
		return []string{job.OutputMarkdown}
	}
	return m.Outputs
}

// outputs makes the outputs job m asks for besides the markdown md, which
// is always made: the JSON document and the searchable PDF are written to
// the scratch store page by page, like the markdown, and handed to the
// content store as streams from there. unavailable names a requested
// output this source cannot have, with the reason.
func (s *Finalizer) outputs(ctx context.Context, m scratch.Manifest, recs map[int]scratch.PageRecord, in inline, md content.Output, finished time.Time) (outs []content.Output, unavailable map[string]string, meta map[string]any, err error) {
	for _, f := range outputsOf(m) {
		if why, ok := m.Unavailable[f]; ok {
			if unavailable == nil {
				unavailable = map[string]string{}
			}
			unavailable[f] = why
			continue
		}
		switch f {
		case job.OutputMarkdown:
			outs = append(outs, md)
		case job.OutputJSON:
			o, err := s.stream(ctx, scratch.DocumentKey(m.JobID), f, func(w io.Writer) error {
				return s.writeDocument(ctx, w, m, recs, in, finished)
			})
			if err != nil {
				return nil, nil, nil, fmt.Errorf("json document: %w", err)
			}
			outs = append(outs, o)
		case job.OutputPDF:
			var rep searchpdf.Report
			o, err := s.stream(ctx, scratch.PDFKey(m.JobID), f, func(w io.Writer) error {
				var err error
				rep, err = s.writePDF(ctx, w, m, recs)
				return err
			})
			if err != nil {
				return nil, nil, nil, fmt.Errorf("searchable pdf: %w", err)
			}
			outs = append(outs, o)
			meta = map[string]any{"searchable_pdf": pdfReport(rep)}
		}
	}
	return outs, unavailable, meta, nil
}

// stream runs write into the scratch store under key, counting and hashing
// what it writes, and returns the output that reads it back from there.
func (s *Finalizer) stream(ctx context.Context, key, format string, write func(w io.Writer) error) (content.Output, error) {
	pr, pw := io.Pipe()
	h := &hashing{h: sha256.New()}
	done := make(chan error, 1)
	go func() {
		err := write(io.MultiWriter(pw, h))
		pw.CloseWithError(err) // nil: the reader sees EOF
		done <- err
	}()
	err := s.blobs.Put(ctx, key, pr)
	pr.CloseWithError(errStopped) // unblocks a writer Put left behind
	werr := <-done
	switch {
	case werr != nil && !errors.Is(werr, errStopped):
		return content.Output{}, werr // the writer's own failure (Put saw it too)
	case err != nil:
		return content.Output{}, err
	case werr != nil:
		return content.Output{}, werr
	}
	return content.Output{
		Format: format, Size: h.n, SHA256: hex.EncodeToString(h.h.Sum(nil)),
		Open: func(ctx context.Context) (io.ReadCloser, error) { return s.blobs.Get(ctx, key) },
	}, nil
}

// errStopped is what a writer sees when the scratch store stopped reading
// its stream (Put failed, or returned before the end).
var errStopped = errors.New("the scratch store stopped reading")

// hashing counts and hashes what is written to it.
type hashing struct {
	h hash.Hash
	n int64
}

func (w *hashing) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return w.h.Write(p)
}

// writeDocument writes job m's JSON document to w, one page at a time:
// only the page being written has its blocks in memory.
func (s *Finalizer) writeDocument(ctx context.Context, w io.Writer, m scratch.Manifest, recs map[int]scratch.PageRecord, in inline, finished time.Time) error {
	dw, err := document.NewWriter(w, document.Header{
		JobID: m.JobID,
		Source: document.Source{
			Name: m.SourceName, Format: m.SourceFormat, ContentID: m.ContentID, PageCount: len(m.Pages), TotalPages: m.TotalPages,
		},
		Engine: s.recipe.Engine, Model: s.recipe.Model, Mode: s.recipe.ModeFor(m.Hints["resolution"]),
		PipelineVersion: s.recipe.PipelineVersion,
		Timings: document.Timings{
			Started: m.StartedAt.UTC(), Finished: finished.UTC(), ProcessingMS: finished.Sub(m.StartedAt).Milliseconds(),
		},
	})
	if err != nil {
		return err
	}
	for _, n := range m.Pages {
		p, err := s.documentPage(ctx, m, recs[n], n, in)
		if err != nil {
			return err
		}
		if err := dw.Page(p); err != nil {
			return err
		}
	}
	return dw.Close()
}

// documentPage is page n's entry of the JSON document: its record, and
// its layout sidecar when it has one.
func (s *Finalizer) documentPage(ctx context.Context, m scratch.Manifest, r scratch.PageRecord, n int, in inline) (document.Page, error) {
	l, err := s.layout(ctx, m.JobID, r)
	if err != nil {
		return document.Page{}, err
	}
	p := document.PageFrom(n, routeOf(r), l)
	p.Engine, p.TextScore = r.Engine, min(1, max(0, r.TextScore))
	if r.Status != events.PageOK {
		p.FailureReason = r.Reason
	}
	if p.WidthPt == nil && r.WidthPt > 0 && r.HeightPt > 0 {
		w, h := r.WidthPt, r.HeightPt
		p.WidthPt, p.HeightPt = &w, &h
	}
	if p.WidthPx == 0 {
		p.WidthPx, p.HeightPx = r.WidthPx, r.HeightPx
	}
	if host, ok := in.host[n]; ok {
		p.Inline = &document.Inline{Page: host, Name: m.Inline[n].Name}
	}
	return p, nil
}

// layout reads the layout sidecar a page record names (nil for a failed
// page, or one whose sidecar is gone).
func (s *Finalizer) layout(ctx context.Context, job string, r scratch.PageRecord) (*document.Layout, error) {
	if r.Status != events.PageOK || r.BlocksKey == "" {
		return nil, nil
	}
	var l document.Layout
	err := scratch.GetJSON(ctx, s.blobs, r.BlocksKey, &l)
	if errors.Is(err, scratch.ErrNotFound) {
		s.log.WarnContext(ctx, "layout sidecar is gone; the page has no blocks", "job", job, "page", r.Page, "key", r.BlocksKey)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("page %d layout: %w", r.Page, err)
	}
	return &l, nil
}

// routeOf is a page's route in the JSON document.
func routeOf(r scratch.PageRecord) string {
	switch {
	case r.Status != events.PageOK:
		return document.RouteFailed
	case r.Route == events.RouteText:
		return document.RouteText
	case r.Fallback:
		return document.RouteFallback
	}
	return document.RouteGPU
}

// storeResult hands the result to the content store: every output, as
// streams, when it can store several (content.OutputStorer); else what
// its Store keeps, with the markdown md read into Result.Markdown (such a
// store — the synchronous API's — holds the result in memory anyway).
func (s *Finalizer) storeResult(ctx context.Context, r content.Result, md content.Output) (content.Stored, error) {
	if os, ok := s.store.(content.OutputStorer); ok {
		return os.StoreOutputs(ctx, r)
	}
	rc, err := md.Reader(ctx)
	if err != nil {
		return content.Stored{}, err
	}
	r.Markdown, err = io.ReadAll(rc)
	_ = rc.Close() // read-only: nothing is lost
	if err != nil {
		return content.Stored{}, fmt.Errorf("read markdown: %w", err)
	}
	ref, err := s.store.Store(ctx, r)
	if err != nil {
		return content.Stored{}, err
	}
	files := r.Files()
	if len(files) > 1 {
		s.log.WarnContext(ctx, "the content store keeps one output; the others are not reported", "job", r.JobID, "store", fmt.Sprintf("%T", s.store))
	}
	return content.Stored{Ref: ref, Refs: map[string]string{files[0].Format: ref}}, nil
}
