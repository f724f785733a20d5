// Package document is ocrflow's structured result: the JSON document
// (docs/ocrflow-document.schema.json) with one entry per page — its size in
// points and in the rendered image's pixels, its route, engine and failure
// reason — and each page's blocks in reading order, with a label, a box in
// page points and the block's markdown.
//
// It also holds the page layout sidecar every route stores beside a page
// (scratch.BlocksKey): the same blocks, already in points, written by
// convert (text layer, office structure) or recognize (the engine's
// blocks), and read by finalize to assemble the JSON document and the
// searchable PDF.
//
// Coordinates are PDF points (1/72 inch) with the origin at the top-left
// corner of the page and y growing downwards, like the page image: a box is
// [x0, y0, x1, y1] with x0 ≤ x1 and y0 ≤ y1. A box from a page image of
// WidthPx×HeightPx pixels maps onto a page of WidthPt×HeightPt points by
// x·WidthPt/WidthPx and y·HeightPt/HeightPx (Scale).
package document

import (
	"math"
	"strings"
)

// SchemaVersion is the version of the JSON document's schema
// (docs/ocrflow-document.schema.json). It changes when a field changes
// meaning or disappears; new optional fields keep it.
const SchemaVersion = "1"

// Block labels: every engine's own labels are mapped onto these.
const (
	LabelTitle    = "title"
	LabelText     = "text"
	LabelTable    = "table"
	LabelFigure   = "figure"
	LabelCaption  = "caption"
	LabelFormula  = "formula"
	LabelListItem = "list_item"
	LabelHeader   = "header"
	LabelFooter   = "footer"
)

// Labels lists every block label, in the schema's order.
var Labels = []string{LabelTitle, LabelText, LabelTable, LabelFigure, LabelCaption, LabelFormula, LabelListItem, LabelHeader, LabelFooter}

// Where a page's blocks come from (Layout.Source, the page's "layout").
const (
	// SourceGrounding: the model's grounding boxes (DeepSeek-OCR).
	SourceGrounding = "grounding"
	// SourceTesseract: tesseract's word boxes and confidences (TSV).
	SourceTesseract = "tesseract"
	// SourceTextLayer: the page's own text layer (MuPDF's positioned lines).
	SourceTextLayer = "text-layer"
	// SourceOffice: the structure of a DOCX, PPTX or XLSX; no boxes.
	SourceOffice = "office"
	// SourceMarkdown: the page markdown's own structure, for engines that
	// report no layout (olmOCR, generic models); no boxes.
	SourceMarkdown = "markdown"
)

// Box is a rectangle [x0, y0, x1, y1] in page points, origin top-left.
type Box [4]float64

// Union returns the smallest box holding b and o.
func (b Box) Union(o Box) Box {
	return Box{math.Min(b[0], o[0]), math.Min(b[1], o[1]), math.Max(b[2], o[2]), math.Max(b[3], o[3])}
}

// Width returns x1 − x0.
func (b Box) Width() float64 { return b[2] - b[0] }

// Height returns y1 − y0.
func (b Box) Height() float64 { return b[3] - b[1] }

// Inside reports whether b lies within a page of w×h points (with a
// tolerance of 0.01 pt for rounding).
func (b Box) Inside(w, h float64) bool {
	const eps = 0.01
	return b[0] >= -eps && b[1] >= -eps && b[2] <= w+eps && b[3] <= h+eps && b[0] <= b[2] && b[1] <= b[3]
}

// Clamp returns b with its corners ordered and inside a page of w×h points
// (a zero w or h leaves that axis unbounded), rounded to 0.01 pt.
func (b Box) Clamp(w, h float64) Box {
	x0, x1 := math.Min(b[0], b[2]), math.Max(b[0], b[2])
	y0, y1 := math.Min(b[1], b[3]), math.Max(b[1], b[3])
	clamp := func(v, hi float64) float64 {
		v = math.Max(0, v)
		if hi > 0 {
			v = math.Min(v, hi)
		}
		return round2(v)
	}
	return Box{clamp(x0, w), clamp(y0, h), clamp(x1, w), clamp(y1, h)}
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// Scale maps pixel coordinates of a rendered page image onto the page in
// points.
type Scale struct {
	WidthPx, HeightPx int
	WidthPt, HeightPt float64
}

// Box maps a pixel box [x0, y0, x1, y1] onto the page: x scales by
// WidthPt/WidthPx, y by HeightPt/HeightPx, and the result is clamped to
// the page and rounded to 0.01 pt. Without a pixel size the box is taken
// as points already (1 px = 1 pt, an image at 72 dpi).
func (s Scale) Box(px [4]int) Box {
	sx, sy := 1.0, 1.0
	if s.WidthPx > 0 && s.WidthPt > 0 {
		sx = s.WidthPt / float64(s.WidthPx)
	}
	if s.HeightPx > 0 && s.HeightPt > 0 {
		sy = s.HeightPt / float64(s.HeightPx)
	}
	b := Box{float64(px[0]) * sx, float64(px[1]) * sy, float64(px[2]) * sx, float64(px[3]) * sy}
	return b.Clamp(s.WidthPt, s.HeightPt)
}

// Line is one line of text of a block, with its box: tesseract's text
// lines, the text layer's positioned lines. The searchable PDF places its
// invisible text line by line.
type Line struct {
	BBox Box    `json:"bbox"`
	Text string `json:"text"`
	// Confidence is the mean word confidence of the line (0–1), when the
	// engine has one.
	Confidence *float64 `json:"confidence,omitempty"`
}

// Block is one layout block of a page, in reading order.
type Block struct {
	// Label is one of the Label constants.
	Label string `json:"label"`
	// EngineLabel is the label the engine itself gave the block, when it
	// differs from Label (DeepSeek's sub_title, image_caption, …).
	EngineLabel string `json:"engine_label,omitempty"`
	// BBox is the block's box in page points; nil when the route has no
	// geometry (office documents, engines without layout).
	BBox *Box `json:"bbox"`
	// Text is the block's markdown, as it appears in the page's markdown
	// (tables as the engine wrote them: markdown from the text layer and
	// office documents, HTML from DeepSeek-OCR).
	Text string `json:"text"`
	// Confidence is the engine's confidence in the block (0–1), when it
	// has one: tesseract's word confidences averaged over the block.
	Confidence *float64 `json:"confidence,omitempty"`
	// Lines are the block's text lines with their boxes, when the route
	// knows them (tesseract, text layer).
	Lines []Line `json:"lines,omitempty"`
}

// Layout is a page's layout sidecar, stored at scratch.BlocksKey by the
// stage that read the page and named by the page record.
type Layout struct {
	Page int `json:"page"`
	// Engine is the engine that read the page (engine_used).
	Engine string `json:"engine"`
	// Source says where the blocks come from (the Source constants).
	Source string `json:"source"`
	// WidthPt and HeightPt are the page's size in points (0 when the page
	// has none: office text).
	WidthPt  float64 `json:"width_pt,omitempty"`
	HeightPt float64 `json:"height_pt,omitempty"`
	// WidthPx and HeightPx are the rendered page image's size in pixels,
	// when an image was rendered.
	WidthPx  int `json:"width_px,omitempty"`
	HeightPx int `json:"height_px,omitempty"`
	// Blocks are the page's blocks in reading order, boxes in points.
	Blocks []Block `json:"blocks"`
	// Steps are the loop-ladder steps the engine climbed before its
	// answer (engine.Result.Steps: loop, empty, rotate).
	Steps []string `json:"steps,omitempty"`
	// Meta holds page facts the engine stated besides its text (olmOCR's
	// front matter, the fallback engine's reason).
	Meta map[string]string `json:"meta,omitempty"`
}

// EngineLabel maps an engine's block label onto the document's labels. It
// knows DeepSeek-OCR's grounding labels; anything else is text.
func EngineLabel(label string) string {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "title", "sub_title", "subtitle", "heading", "section_header", "section-header":
		return LabelTitle
	case "table":
		return LabelTable
	case "image", "figure", "picture", "chart":
		return LabelFigure
	case "image_caption", "table_caption", "caption", "figure_caption", "table_footnote", "image_footnote":
		return LabelCaption
	case "equation", "formula", "interline_equation", "isolate_formula":
		return LabelFormula
	case "list", "list_item", "listitem":
		return LabelListItem
	case "header", "page_header", "page-header":
		return LabelHeader
	case "footer", "page_footer", "page-footer", "page_number", "footnote":
		return LabelFooter
	}
	return LabelText
}
