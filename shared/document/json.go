package document

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Page routes in the JSON document.
const (
	// RouteText: the page took its own text layer (or is office text).
	RouteText = "text"
	// RouteGPU: the recognition engine read the page (whichever engine it
	// is: tesseract counts as "gpu" too, as in pages_by_route).
	RouteGPU = "gpu"
	// RouteFallback: the fallback engine read the page because the
	// primary stayed unavailable.
	RouteFallback = "fallback"
	// RouteFailed: the page could not be read; its markdown is a
	// placeholder.
	RouteFailed = "failed"
)

// Header is what the JSON document says about the whole document; the
// pages follow it.
type Header struct {
	SchemaVersion   string  `json:"schema_version"`
	JobID           string  `json:"job_id"`
	Source          Source  `json:"source"`
	Engine          string  `json:"engine"`
	Model           string  `json:"model"`
	Mode            string  `json:"mode"`
	PipelineVersion string  `json:"pipeline_version"`
	Timings         Timings `json:"timings"`
}

// Source describes the source document.
type Source struct {
	// Name is the source's file name.
	Name string `json:"name"`
	// Format is the format sniffed from its bytes (pdf, png, docx, …).
	Format string `json:"format"`
	// ContentID is the source content (simple-content), when there is one.
	ContentID string `json:"content_id,omitempty"`
	// PageCount is how many pages the job converted (its pages hint
	// applied; office pictures count as pages).
	PageCount int `json:"page_count"`
	// TotalPages is how many pages the source has.
	TotalPages int `json:"total_pages"`
}

// Timings say when the job ran.
type Timings struct {
	Started      time.Time `json:"started"`
	Finished     time.Time `json:"finished"`
	ProcessingMS int64     `json:"processing_ms"`
}

// Inline says that a page is a picture of an office document shown inside
// another page: the markdown has its text after the picture's placeholder
// there, not as a page of its own.
type Inline struct {
	Page int    `json:"page"`
	Name string `json:"name"`
}

// Page is one page of the JSON document.
type Page struct {
	Page int `json:"page"`
	// WidthPt and HeightPt are the page's size in points; nil when the
	// page has no geometry (office text).
	WidthPt  *float64 `json:"width_pt"`
	HeightPt *float64 `json:"height_pt"`
	// WidthPx and HeightPx are the rendered page image's size, when one
	// was rendered.
	WidthPx  int `json:"width_px,omitempty"`
	HeightPx int `json:"height_px,omitempty"`
	// Route is one of the Route constants.
	Route string `json:"route"`
	// Engine is the engine that read the page (text-layer for pages that
	// took their own text).
	Engine string `json:"engine,omitempty"`
	// TextScore rates the page's own text layer (0–1); 0 when it has none.
	TextScore float64 `json:"text_score"`
	// Layout says where the blocks come from (the Source constants).
	Layout string `json:"layout,omitempty"`
	// Steps are the loop-ladder steps the engine climbed before its
	// answer, as it reported them (loop, empty, rotate: why it asked the
	// model again).
	Steps []string `json:"steps,omitempty"`
	// FailureReason says why a failed page could not be read.
	FailureReason string `json:"failure_reason,omitempty"`
	// Inline is set on an office picture shown inside another page.
	Inline *Inline `json:"inline,omitempty"`
	// Meta holds page facts the engine stated besides its text.
	Meta map[string]string `json:"meta,omitempty"`
	// Blocks are the page's blocks in reading order (empty for a failed
	// page).
	Blocks []Block `json:"blocks"`
}

// PageFrom returns the JSON document's page for a page of route with its
// layout (nil for a failed page or one without a sidecar).
func PageFrom(n int, route string, l *Layout) Page {
	p := Page{Page: n, Route: route, Blocks: []Block{}}
	if l == nil {
		return p
	}
	if l.WidthPt > 0 && l.HeightPt > 0 {
		w, h := l.WidthPt, l.HeightPt
		p.WidthPt, p.HeightPt = &w, &h
	}
	p.WidthPx, p.HeightPx = l.WidthPx, l.HeightPx
	p.Layout, p.Steps = l.Source, l.Steps
	if len(l.Meta) > 0 {
		p.Meta = l.Meta
	}
	if l.Blocks != nil {
		p.Blocks = l.Blocks
	}
	return p
}

// Writer streams a JSON document: the header, then one page at a time,
// so no more than one page's blocks are held at once.
type Writer struct {
	w     io.Writer
	enc   *json.Encoder
	pages int
	err   error
}

// NewWriter writes h as the start of a JSON document to w and returns the
// writer for its pages.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if h.SchemaVersion == "" {
		h.SchemaVersion = SchemaVersion
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return nil, fmt.Errorf("document header: %w", err)
	}
	head := bytes.TrimSuffix(bytes.TrimRight(buf.Bytes(), "\n"), []byte("}")) // the header object, still open
	head = append(head, `,"pages":[`...)
	if _, err := w.Write(head); err != nil {
		return nil, fmt.Errorf("document header: %w", err)
	}
	enc = json.NewEncoder(w)
	enc.SetEscapeHTML(false) // markdown keeps its < and > readable
	return &Writer{w: w, enc: enc}, nil
}

// Page appends p to the document. Pages must come in order.
func (w *Writer) Page(p Page) error {
	if w.err != nil {
		return w.err
	}
	if p.Blocks == nil {
		p.Blocks = []Block{}
	}
	if w.pages > 0 {
		if _, err := io.WriteString(w.w, ","); err != nil {
			w.err = fmt.Errorf("document page %d: %w", p.Page, err)
			return w.err
		}
	}
	if err := w.enc.Encode(p); err != nil {
		w.err = fmt.Errorf("document page %d: %w", p.Page, err)
		return w.err
	}
	w.pages++
	return nil
}

// Close ends the document. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if _, err := io.WriteString(w.w, "]}\n"); err != nil {
		return fmt.Errorf("document end: %w", err)
	}
	w.err = errors.New("document: writer closed")
	return nil
}
