//go:build !nomupdf

package render

import (
	"errors"
	"fmt"
	"image"
	"sync"

	"github.com/gen2brain/go-fitz"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// fitzMu serialises every go-fitz call in the process (see the package
// comment). It is the only global state of the package, and deliberately so.
var fitzMu sync.Mutex

// StoreBytes bounds MuPDF's resource store per open document: the cache
// of decoded images, fonts and parsed objects. go-fitz's default (256 MiB)
// lets a long scanned document grow the process by every page image it
// decodes until the store is full — about half a MiB per page, 200 MiB
// and more per document — while pages are rendered once each, in order,
// and gain nothing from it. 16 MiB keeps the fonts and the images shared
// between pages (logos, backgrounds) and is faster too: less memory to
// touch (docs/performance.md, "Memory").
const StoreBytes = 16 << 20

func init() { fitz.MaxStore = StoreBytes }

type pdfDoc struct {
	doc *fitz.Document
}

func openFitz(path string, format Format) (*pdfDoc, error) {
	fitzMu.Lock()
	defer fitzMu.Unlock()
	doc, err := fitz.New(path)
	if err != nil {
		// New returns a live context on these errors: release it.
		if doc != nil && (errors.Is(err, fitz.ErrOpenDocument) || errors.Is(err, fitz.ErrNeedsPassword)) {
			_ = doc.Close() // go-fitz's Close frees C memory and always returns nil
		}
		switch {
		case errors.Is(err, fitz.ErrNeedsPassword):
			return nil, failure.Validation("the %s is encrypted and needs a password", format)
		case errors.Is(err, fitz.ErrOpenDocument):
			return nil, failure.Validation("the %s is damaged and cannot be opened", format)
		default:
			return nil, fmt.Errorf("open %s: %w", format, err)
		}
	}
	return &pdfDoc{doc: doc}, nil
}

func (p *pdfDoc) numPages() int {
	fitzMu.Lock()
	defer fitzMu.Unlock()
	return p.doc.NumPage()
}

func (p *pdfDoc) render(i int, t Target) (*image.RGBA, Size, error) {
	fitzMu.Lock()
	defer fitzMu.Unlock()
	b, err := p.doc.Bound(i)
	if err != nil {
		return nil, Size{}, failure.Validation("page %d cannot be loaded: %v", i+1, err)
	}
	img, err := p.doc.ImageDPI(i, dpiFor(b, t))
	if err != nil {
		return nil, Size{}, failure.Validation("page %d cannot be rendered: %v", i+1, err)
	}
	// go-fitz reports the page bounds in whole points (rotation applied).
	return img, Size{W: float64(b.Dx()), H: float64(b.Dy())}, nil
}

func (p *pdfDoc) html(i int) (string, image.Rectangle, error) {
	fitzMu.Lock()
	defer fitzMu.Unlock()
	b, err := p.doc.Bound(i)
	if err != nil {
		return "", b, failure.Validation("page %d cannot be loaded: %v", i+1, err)
	}
	h, err := p.doc.HTML(i, false)
	if err != nil {
		return "", b, failure.Validation("page %d text cannot be extracted: %v", i+1, err)
	}
	return h, b, nil
}

func (p *pdfDoc) close() {
	fitzMu.Lock()
	defer fitzMu.Unlock()
	_ = p.doc.Close() // go-fitz's Close frees C memory and always returns nil
}

// dpiFor returns the DPI that renders a page of the given size in points at
// target t, keeping the long side within limits.
func dpiFor(bounds image.Rectangle, t Target) float64 {
	longPt := float64(max(bounds.Dx(), bounds.Dy()) + 1) // Bound() is integral: +1 keeps us under
	if longPt <= 1 {
		longPt = 842
	}
	maxDPI := float64(longSide(t)) * 72 / longPt
	if t.DPI > 0 && t.DPI < maxDPI {
		return t.DPI
	}
	return maxDPI
}
