package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/render"
)

// TestParseTesseract_golden reads recorded outputs of tesseract run with
// the txt and tsv renderers (testdata/tesseract/*.out: a real page, and
// edge cases — CRLF, whitespace-only words, words without a confidence, a
// paragraph of nothing) and compares the markdown and the blocks with
// *.md and *.blocks.json (go test -run ParseTesseract_golden -update
// rewrites them).
func TestParseTesseract_golden(t *testing.T) {
	outs, err := filepath.Glob(filepath.Join("testdata", "tesseract", "*.out"))
	require.NoError(t, err)
	require.NotEmpty(t, outs, "no golden inputs")
	for _, out := range outs {
		name := strings.TrimSuffix(filepath.Base(out), ".out")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(out)
			require.NoError(t, err)
			md, blocks := engine.ParseTesseract(string(in))
			js, err := json.MarshalIndent(blocks, "", "  ")
			require.NoError(t, err)
			for _, f := range []struct {
				ext string
				got []byte
			}{{".md", []byte(md)}, {".blocks.json", append(js, '\n')}} {
				path := strings.TrimSuffix(out, ".out") + f.ext
				if *update {
					require.NoError(t, os.WriteFile(path, f.got, 0o644))
				}
				want, err := os.ReadFile(path)
				require.NoError(t, err, "run with -update to create it")
				assert.Equal(t, string(want), string(f.got), "%s differs", path)
			}
			require.NotEmpty(t, blocks, "blocks")
			for i, b := range blocks {
				assert.Equal(t, "text", b.Label, "block %d label", i)
				assert.Len(t, b.Boxes, 1, "block %d: one box, the paragraph's", i)
				assert.Equal(t, b.Text, md[b.Start:b.End], "block %d: its text is its span of the markdown", i)
				if assert.NotNil(t, b.Confidence, "block %d confidence", i) {
					assert.True(t, *b.Confidence >= 0 && *b.Confidence <= 1, "block %d confidence %v, want 0–1", i, *b.Confidence)
				}
				for j, l := range b.Lines {
					box := b.Boxes[0]
					assert.True(t, l.Box[0] >= box[0] && l.Box[1] >= box[1] && l.Box[2] <= box[2] && l.Box[3] <= box[3],
						"block %d line %d box %v outside its paragraph's %v", i, j, l.Box, box)
				}
			}
		})
	}
}

// TestTesseract_markdown_is_what_a_text_only_run_gives: the tsv renderer
// added to the run changes nothing in the markdown of the samples.
func TestTesseract_markdown_is_what_a_text_only_run_gives(t *testing.T) {
	if _, err := exec.LookPath("tesseract"); err != nil {
		t.Skip("tesseract is not installed")
	}
	pageOf := func(t *testing.T, file string, n int) []byte {
		t.Helper()
		d, err := render.Open(context.Background(), "../../testdata/"+file, render.Limits{})
		require.NoError(t, err)
		defer func() { assert.NoError(t, d.Close()) }()
		p, err := d.Render(context.Background(), n, engine.Target(engine.NameTesseract))
		require.NoError(t, err)
		return p.Data
	}
	for _, tc := range []struct {
		name, file string
		page       int
	}{
		{"png_notice", "page.png", 1},
		{"jpeg_notice", "page.jpg", 1},
		{"scanned_pdf_page_1", "scanned.pdf", 1},
		{"scanned_pdf_page_2", "scanned.pdf", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := pageOf(t, tc.file, tc.page)
			cmd := exec.Command("tesseract", "stdin", "stdout", "-l", "eng")
			cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
			cmd.Stdin = bytes.NewReader(img)
			txt, err := cmd.Output()
			require.NoError(t, err, "tesseract, text only")
			res, err := engine.NewTesseract("", "").Recognize(context.Background(), engine.Page{Number: tc.page, Image: img})
			require.NoError(t, err, "Recognize")
			assert.Equal(t, engine.Paragraphs(string(txt)), res.Markdown, "markdown")
			assert.NotEmpty(t, res.Blocks, "blocks")
		})
	}
}
