package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
			}
			for _, re := range tc.wantOut {
				if !re.MatchString(stdout.String()) {
					t.Errorf("stdout does not match %s:\n%s", re, stdout.String())
				}
			}
			for md, want := range map[string]string{"report.pdf.md": "# Page 1: Introduction and Scope", "page.png.md": "fake-ocr "} {
				b, err := os.ReadFile(filepath.Join(out, md))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), want) {
					t.Errorf("%s lacks %q:\n%s", md, want, b)
				}
			}
			if strings.Contains(stderr.String(), "INFO") {
				t.Errorf("simple-content's request logs reached stderr:\n%s", stderr.String())
			}
		})
	}
}

func TestRun_rejects_an_unknown_content_store(t *testing.T) {
	isolate(t)
	var stdout, stderr syncBuffer
	if code := run(t.Context(), []string{"run", "--content", "s3", testdata(t, "page.png")}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `--content "s3" is not simple-content or dir`) {
		t.Fatalf("stderr = %s", stderr.String())
	}
}
