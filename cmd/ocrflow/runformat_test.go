package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/document/documenttest"
)

// TestRun_format_writes_each_output: --format names the results each
// document leaves in --out, with either content store.
func TestRun_format_writes_each_output(t *testing.T) {
	for _, tc := range []struct {
		name, content, format string
		want, absent          []string
	}{
		{"simple_content_markdown_and_json", "simple-content", "json,markdown", []string{"page.png.md", "page.png.json"}, []string{"page.png.ocr.pdf"}},
		{"directory_json_alone", "dir", "json", []string{"page.png.json"}, []string{"page.png.md", "page.png.ocr.pdf"}},
		{"simple_content_every_output", "simple-content", "markdown,json,pdf", []string{"page.png.md", "page.png.json", "page.png.ocr.pdf"}, nil},
		{"directory_markdown_and_pdf", "dir", "pdf,markdown", []string{"page.png.md", "page.png.ocr.pdf"}, []string{"page.png.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			out := filepath.Join(t.TempDir(), "results")
			var stdout, stderr syncBuffer
			code := run(t.Context(), []string{"run", "--engine", "fake", "--content", tc.content, "--format", tc.format, "--out", out,
				testdata(t, "page.png")}, &stdout, &stderr)
			require.Equal(t, 0, code, "exit code\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			for _, f := range tc.want {
				b, err := os.ReadFile(filepath.Join(out, f))
				require.NoError(t, err, "%s\nstdout:\n%s", f, stdout.String())
				switch filepath.Ext(f) {
				case ".json":
					documenttest.Check(t, b, []int{1})
				case ".pdf":
					assert.True(t, bytes.HasPrefix(b, []byte("%PDF-")), "%s is a PDF", f)
				default:
					assert.Contains(t, string(b), "fake-ocr ", "%s", f)
				}
			}
			if tc.content == "dir" {
				for _, f := range tc.want {
					assert.Contains(t, stdout.String(), filepath.Join(out, f), "the run names each file it wrote")
				}
			}
			for _, f := range tc.absent {
				assert.NoFileExists(t, filepath.Join(out, f), "not asked for")
			}
		})
	}
	t.Run("unknown_format_is_a_usage_error", func(t *testing.T) {
		isolate(t)
		var stdout, stderr syncBuffer
		code := run(t.Context(), []string{"run", "--format", "markdown,docx", testdata(t, "page.png")}, &stdout, &stderr)
		require.Equal(t, 2, code, "exit code")
		assert.Contains(t, stderr.String(), `--format "markdown,docx": "docx" is not an output (markdown, json, pdf)`, "stderr")
	})
}
