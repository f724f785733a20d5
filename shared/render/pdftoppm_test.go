//go:build nomupdf

package render_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/render"
)

// TestPdftoppm_build renders through poppler when built with -tags nomupdf.
func TestPdftoppm_build(t *testing.T) {
	ctx := context.Background()
	doc, err := render.Open(ctx, "../../testdata/report.pdf", render.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer doc.Close()
	if doc.Pages() != 6 {
		t.Fatalf("%d pages, want 6", doc.Pages())
	}
	p, err := doc.Render(ctx, 2, render.Target{LongSide: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if max(p.Width, p.Height) != 1024 {
		t.Fatalf("page is %dx%d, want a 1024 px long side", p.Width, p.Height)
	}
	if _, _, _, ok, _ := doc.PageHTML(ctx, 1); ok {
		t.Fatal("the nomupdf build claims a text layer")
	}
	bad := filepath.Join(t.TempDir(), "cut.pdf")
	if err := os.WriteFile(bad, append([]byte("%PDF-1.4\n"), make([]byte, 100)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := render.Open(ctx, bad, render.Limits{}); !errors.Is(err, failure.ErrValidation) {
		t.Fatalf("damaged pdf: %v, want a validation error", err)
	}
}
