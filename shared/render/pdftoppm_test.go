//go:build nomupdf

package render_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/render"
)

// TestPdftoppm_build renders through poppler when built with -tags nomupdf.
func TestPdftoppm_build(t *testing.T) {
	ctx := context.Background()
	doc, err := render.Open(ctx, "../../testdata/report.pdf", render.Limits{})
	require.NoError(t, err)
	defer func() { assert.NoError(t, doc.Close()) }()
	require.Equal(t, 6, doc.Pages(), "pages")
	p, err := doc.Render(ctx, 2, render.Target{LongSide: 1024})
	require.NoError(t, err)
	assert.Equal(t, 1024, max(p.Width, p.Height), "page is %dx%d, want a 1024 px long side", p.Width, p.Height)
	_, _, _, ok, _ := doc.PageHTML(ctx, 1)
	assert.False(t, ok, "the nomupdf build claims a text layer")
	bad := filepath.Join(t.TempDir(), "cut.pdf")
	require.NoError(t, os.WriteFile(bad, append([]byte("%PDF-1.4\n"), make([]byte, 100)...), 0o644))
	_, err = render.Open(ctx, bad, render.Limits{})
	assert.ErrorIs(t, err, failure.ErrValidation, "damaged pdf, want a validation error")
}
