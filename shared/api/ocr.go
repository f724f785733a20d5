package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/inproc"
	"github.com/ocrflow/ocrflow/shared/render"
)

// OCRResult is the JSON answer of POST /v1/ocr.
type OCRResult struct {
	JobID            string              `json:"job_id"`
	Name             string              `json:"name"`
	Markdown         string              `json:"markdown"`
	PageCount        int                 `json:"page_count"`
	PagesByRoute     map[string]int      `json:"pages_by_route"`
	FailedPages      []events.FailedPage `json:"failed_pages,omitempty"`
	ProcessingTimeMS int64               `json:"processing_time_ms"`
}

// Media types POST /v1/ocr answers with.
const (
	ContentTypeMarkdown = "text/markdown"
	ContentTypeJSON     = "application/json"
)

// multipartSlack is what a multipart body may carry besides its file.
const multipartSlack = 64 << 10

// ocr OCRs the request's document synchronously: the raw body (with its
// Content-Type), or the multipart form field "file". Query parameters are
// job hints (pages, text_layer, resolution, …).
func (s *Server) ocr(w http.ResponseWriter, r *http.Request) {
	answer, ok := negotiate(r.Header.Get("Accept"))
	if !ok {
		s.writeProblem(w, r, http.StatusNotAcceptable, ProblemNotAcceptable, "POST /v1/ocr answers text/markdown or application/json")
		return
	}
	if s.cfg.Sync == nil {
		s.writeProblem(w, r, http.StatusServiceUnavailable, ProblemNotReady, "synchronous OCR is not configured on this server")
		return
	}
	max := s.cfg.SyncMaxBytes
	if r.ContentLength > max+multipartSlack {
		s.tooLarge(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, max+multipartSlack)
	dir, err := os.MkdirTemp(s.cfg.TempDir, "ocrflow-api-")
	if err != nil {
		s.writeProblem(w, r, http.StatusServiceUnavailable, ProblemNotReady, "temp dir: "+err.Error())
		return
	}
	defer func() { _ = os.RemoveAll(dir) }() // a leftover temp dir is only disk space
	doc, status, slug, detail := s.receive(r, filepath.Join(dir, "document"))
	if status != 0 {
		if status == http.StatusRequestEntityTooLarge {
			s.tooLarge(w, r)
			return
		}
		s.writeProblem(w, r, status, slug, detail)
		return
	}
	if _, _, err := render.Sniff(doc.Path); err != nil {
		s.writeProblem(w, r, http.StatusUnsupportedMediaType, ProblemNotADocument, failure.Text(err))
		return
	}
	for k, v := range r.URL.Query() {
		if doc.Hints == nil {
			doc.Hints = map[string]string{}
		}
		doc.Hints[k] = v[len(v)-1]
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.SyncTimeout)
	defer cancel()
	res, err := s.cfg.Sync.Run(ctx, doc)
	ctx = WithLogAttrs(ctx, slog.String("job", res.JobID))
	if err != nil {
		s.syncProblem(ctx, w, r, err)
		return
	}
	c := res.Completed
	s.log.InfoContext(ctx, "document recognized", "name", doc.Name, "pages", c.PageCount, "failed_pages", len(c.FailedPages), "ms", c.ProcessingTimeMS)
	h := w.Header()
	h.Set("X-Ocrflow-Job-Id", res.JobID)
	h.Set("X-Ocrflow-Pages", strconv.Itoa(c.PageCount))
	h.Set("X-Ocrflow-Failed-Pages", strconv.Itoa(len(c.FailedPages)))
	if answer == ContentTypeJSON {
		writeJSON(w, http.StatusOK, OCRResult{
			JobID: res.JobID, Name: doc.Name, Markdown: string(res.Markdown), PageCount: c.PageCount,
			PagesByRoute: c.PagesByRoute, FailedPages: c.FailedPages, ProcessingTimeMS: c.ProcessingTimeMS,
		})
		return
	}
	h.Set("Content-Type", ContentTypeMarkdown+"; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Markdown) // the client may be gone; nothing to do
}

func (s *Server) tooLarge(w http.ResponseWriter, r *http.Request) {
	s.writeProblem(w, r, http.StatusRequestEntityTooLarge, ProblemTooLarge,
		fmt.Sprintf("the document is larger than SYNC_MAX_BYTES=%d bytes; submit it as a job (POST /v1/jobs) instead", s.cfg.SyncMaxBytes))
}

// syncProblem answers a run that did not complete.
func (s *Server) syncProblem(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	var je *inproc.JobError
	switch {
	case r.Context().Err() != nil:
		s.log.InfoContext(ctx, "the client went away before its document was done", "error", err)
	case errors.Is(err, context.DeadlineExceeded):
		s.writeProblem(w, r, http.StatusGatewayTimeout, ProblemTimeout,
			fmt.Sprintf("the document was not done within SYNC_TIMEOUT=%s; submit it as a job (POST /v1/jobs) instead", s.cfg.SyncTimeout))
	case errors.As(err, &je) && je.Failed.ErrorType == string(failure.TypeTransient):
		s.writeProblem(w, r, http.StatusServiceUnavailable, ProblemNotReady, je.Failed.Message)
	case errors.As(err, &je):
		s.writeProblem(w, r, http.StatusUnprocessableEntity, ProblemUnprocessable, je.Failed.Message)
	case failure.Classify(err) == failure.TypeValidation:
		s.writeProblem(w, r, http.StatusUnprocessableEntity, ProblemInvalidJob, failure.Text(err))
	default:
		s.writeProblem(w, r, http.StatusServiceUnavailable, ProblemNotReady, failure.Text(err))
	}
}

// receive stores the request's document at dst. On failure it returns
// the status, problem type and detail to answer.
func (s *Server) receive(r *http.Request, dst string) (doc inproc.Document, status int, slug, detail string) {
	ct := r.Header.Get("Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	doc = inproc.Document{Path: dst, Name: "document", MIME: mt}
	body := io.Reader(r.Body)
	if _, p, err := mime.ParseMediaType(r.Header.Get("Content-Disposition")); err == nil && p["filename"] != "" {
		doc.Name = filepath.Base(p["filename"])
	}
	if mt == "multipart/form-data" {
		if params["boundary"] == "" {
			return doc, http.StatusBadRequest, ProblemMalformed, "multipart body without a boundary"
		}
		mr, err := r.MultipartReader()
		if err != nil {
			return doc, http.StatusBadRequest, ProblemMalformed, err.Error()
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				if tooBig(err) {
					return doc, http.StatusRequestEntityTooLarge, "", ""
				}
				if errors.Is(err, io.EOF) {
					return doc, http.StatusBadRequest, ProblemMalformed, `the multipart form has no "file" field`
				}
				return doc, http.StatusBadRequest, ProblemMalformed, err.Error()
			}
			if part.FormName() == "file" {
				if part.FileName() != "" {
					doc.Name = filepath.Base(part.FileName())
				}
				pm, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
				doc.MIME = pm
				body = part
				break
			}
		}
	}
	n, err := save(dst, body, s.cfg.SyncMaxBytes)
	switch {
	case tooBig(err) || n > s.cfg.SyncMaxBytes:
		return doc, http.StatusRequestEntityTooLarge, "", ""
	case err != nil:
		return doc, http.StatusBadRequest, ProblemMalformed, "read the body: " + err.Error()
	case n == 0:
		return doc, http.StatusBadRequest, ProblemMalformed, "the body is empty: send the document's bytes, or a multipart form with a \"file\" field"
	}
	if doc.Name == "" || doc.Name == "." || doc.Name == string(filepath.Separator) {
		doc.Name = "document"
	}
	return doc, 0, "", ""
}

func tooBig(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// save copies at most max+1 bytes of r to a new file at dst.
func save(dst string, r io.Reader, max int64) (n int64, err error) {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	n, err = io.Copy(f, io.LimitReader(r, max+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// negotiate picks the answer's media type from an Accept header: JSON
// when it is preferred, markdown otherwise (also without Accept); false
// when the header accepts neither.
func negotiate(accept string) (string, bool) {
	if strings.TrimSpace(accept) == "" {
		return ContentTypeMarkdown, true
	}
	best, bestQ := "", 0.0
	for _, offer := range []string{ContentTypeMarkdown, ContentTypeJSON} {
		if q := quality(accept, offer); q > bestQ {
			best, bestQ = offer, q
		}
	}
	return best, best != ""
}

// quality returns the q value accept gives the media type mt: the most
// specific matching range counts.
func quality(accept, mt string) float64 {
	typ, _, _ := strings.Cut(mt, "/")
	q, spec := 0.0, -1
	for _, rng := range strings.Split(accept, ",") {
		m, params, err := mime.ParseMediaType(strings.TrimSpace(rng))
		if err != nil {
			continue
		}
		s := -1
		switch m {
		case mt:
			s = 2
		case typ + "/*":
			s = 1
		case "*/*":
			s = 0
		}
		if s <= spec {
			continue
		}
		v := 1.0
		if qs, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(qs, 64); err == nil {
				v = f
			}
		}
		q, spec = v, s
	}
	return q
}
