package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRun_content_stores runs the samples through each content store of
// `ocrflow run`: the embedded simple-content (upload, job by content id,
// derived content downloaded into --out) and the directory store.
func TestRun_content_stores(t *testing.T) {
	uuid := `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
	for _, tc := range []struct {
		name    string
		content string
		wantOut []*regexp.Regexp
	}{
		{"embedded_simple_content", "simple-content", []*regexp.Regexp{
			regexp.MustCompile(`content store simple-content`),
			regexp.MustCompile(`simple-content \(embedded\): http://127\.0\.0\.1:\d+/api/v5`),
			regexp.MustCompile(`report\.pdf +completed → ` + uuid),
			regexp.MustCompile(`report\.pdf +derived content ` + uuid + ` \(http://127\.0\.0\.1:\d+/api/v5/files/` + uuid + `\) saved to .*report\.pdf\.md`),
			regexp.MustCompile(`page\.png +derived content ` + uuid),
		}},
		{"directory", "dir", []*regexp.Regexp{
			regexp.MustCompile(`content store dir`),
			regexp.MustCompile(`report\.pdf +completed → .*report\.pdf\.md`),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			out := filepath.Join(t.TempDir(), "md")
			var stdout, stderr syncBuffer
			code := run(t.Context(), []string{"run", "--engine", "fake", "--content", tc.content, "--out", out,
				testdata(t, "report.pdf"), testdata(t, "page.png")}, &stdout, &stderr)
			require.Equal(t, 0, code, "exit code\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			for _, re := range tc.wantOut {
				assert.Regexp(t, re, stdout.String(), "stdout")
			}
			for md, want := range map[string]string{"report.pdf.md": "# Page 1: Introduction and Scope", "page.png.md": "fake-ocr "} {
				b, err := os.ReadFile(filepath.Join(out, md))
				require.NoError(t, err)
				assert.Contains(t, string(b), want, "%s", md)
			}
			assert.NotContains(t, stderr.String(), "INFO", "simple-content's request logs reached stderr")
		})
	}
}

func TestRun_rejects_an_unknown_content_store(t *testing.T) {
	isolate(t)
	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"run", "--content", "s3", testdata(t, "page.png")}, &stdout, &stderr)
	require.Equal(t, 2, code, "exit code")
	assert.Contains(t, stderr.String(), `--content "s3" is not simple-content or dir`, "stderr")
}
