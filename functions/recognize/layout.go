package recognize

import (
	"github.com/ocrflow/ocrflow/shared/document"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
)

// Layout returns the layout sidecar of a page the engine named engineName
// read: the engine's blocks with their pixel boxes mapped onto the page in
// points (x·WidthPt/Width, y·HeightPt/Height of the page event), its
// labels mapped onto the document's, or — for an engine that reports no
// blocks — the markdown's own structure without boxes.
func Layout(p events.PageRendered, engineName string, res engine.Result) document.Layout {
	scale := document.Scale{WidthPx: p.Width, HeightPx: p.Height, WidthPt: p.WidthPt, HeightPt: p.HeightPt}
	if scale.WidthPt <= 0 || scale.HeightPt <= 0 {
		// An event from before page sizes were sent: 1 px = 1 pt.
		scale.WidthPt, scale.HeightPt = float64(p.Width), float64(p.Height)
	}
	l := document.Layout{
		Page: p.Page, Engine: engineName, WidthPt: scale.WidthPt, HeightPt: scale.HeightPt,
		WidthPx: p.Width, HeightPx: p.Height, Steps: res.Steps, Meta: res.Meta,
	}
	switch {
	case len(res.Blocks) == 0:
		l.Source, l.Blocks = document.SourceMarkdown, document.FromMarkdown(res.Markdown)
		return l
	case engineName == engine.NameTesseract:
		l.Source = document.SourceTesseract
	default:
		l.Source = document.SourceGrounding
	}
	l.Blocks = make([]document.Block, 0, len(res.Blocks))
	for _, b := range res.Blocks {
		if b.Text == "" && len(b.Boxes) == 0 {
			continue
		}
		out := document.Block{Label: document.EngineLabel(b.Label), Text: b.Text, Confidence: b.Confidence}
		if b.Label != "" && b.Label != out.Label {
			out.EngineLabel = b.Label
		}
		for i, px := range b.Boxes {
			box := scale.Box(px)
			if i > 0 {
				box = box.Union(*out.BBox)
			}
			out.BBox = &box
		}
		for _, ln := range b.Lines {
			out.Lines = append(out.Lines, document.Line{BBox: scale.Box(ln.Box), Text: ln.Text, Confidence: ln.Confidence})
		}
		l.Blocks = append(l.Blocks, out)
	}
	return l
}
