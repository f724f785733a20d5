// Package engine recognizes page images as markdown. Each engine adapter
// owns its prompt, request shape, image sizing and output clean-up, because
// those differ per model family.
package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/ocrflow/ocrflow/shared/render"
)

// Page is one page image to recognize.
type Page struct {
	JobID  string
	Number int
	Image  []byte
	MIME   string
	Width  int
	Height int
}

// Result is an engine's answer for one page.
type Result struct {
	// Markdown is the cleaned page text.
	Markdown string
	// Raw is the engine's unprocessed output, kept beside the result.
	Raw string
}

// Names of the built-in engines.
const (
	NameTesseract = "tesseract"
	NameFake      = "fake"
)

// Config selects and configures an engine.
type Config struct {
	// Name is tesseract or fake.
	Name string
	// TesseractLangs is passed to tesseract -l (e.g. "eng+deu").
	TesseractLangs string
	// TesseractPath is the tesseract binary (default: "tesseract" on PATH).
	TesseractPath string
}

// Target returns the page size the named engine reads best: tesseract
// wants ~144 DPI (1024 px costs it about 2 points of character error rate),
// vision models a fixed long side.
func Target(name string) render.Target {
	if name == NameTesseract {
		return render.Target{DPI: 144}
	}
	return render.Target{LongSide: 1024}
}

// Engine recognizes one page. Implementations must be safe for concurrent
// use and must classify errors with package failure.
type Engine interface {
	Recognize(ctx context.Context, p Page) (Result, error)
	// Name is recorded per page as engine_used.
	Name() string
}

// New builds the engine named in cfg.
func New(cfg Config) (Engine, error) {
	switch strings.ToLower(cfg.Name) {
	case NameTesseract, "":
		return NewTesseract(cfg.TesseractPath, cfg.TesseractLangs), nil
	case NameFake:
		return &Fake{}, nil
	default:
		return nil, fmt.Errorf("engine %q is unknown (known: %s, %s)", cfg.Name, NameTesseract, NameFake)
	}
}
