package office

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/failure"
)

func TestSafeName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"word/document.xml", true},
		{"[Content_Types].xml", true},
		{"word/media/", true},
		{"a/./b", true},
		{"a..b/c", true},
		{"../evil.txt", false},
		{"word/../../evil.txt", false},
		{"word/..", false},
		{"/etc/passwd", false},
		{`word\..\evil`, false},
		{"C:/Windows/evil", false},
		{"nul\x00byte", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.ok, safeName(tc.name), "safeName(%q)", tc.name)
		})
	}
}

func TestResolveTarget(t *testing.T) {
	for _, tc := range []struct {
		name, source, target, want string
		ok                         bool
	}{
		{"relative", "word/document.xml", "media/image1.png", "word/media/image1.png", true},
		{"parent", "ppt/slides/slide1.xml", "../media/image1.png", "ppt/media/image1.png", true},
		{"absolute", "word/document.xml", "/word/styles.xml", "word/styles.xml", true},
		{"root_rels", "", "word/document.xml", "word/document.xml", true},
		{"percent_encoded", "word/document.xml", "media/my%20image.png", "word/media/my image.png", true},
		{"escapes_package", "word/document.xml", "../../evil.png", "", false},
		{"absolute_escape", "word/document.xml", "/../evil.png", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := resolveTarget(tc.source, tc.target)
			assert.Equal(t, tc.want, got, "resolveTarget(%q, %q)", tc.source, tc.target)
			assert.Equal(t, tc.ok, ok, "resolveTarget(%q, %q) ok", tc.source, tc.target)
		})
	}
}

// TestBudgetReader_counts_actual_bytes checks the running budget on its
// own, with the declared-size check already passed: the package budget is
// enforced on the bytes actually read, stopping one byte past it. (A part
// cap is met by the declared size first; archive/zip refuses to inflate
// past a declared size, so the reader's own part cap is a second line.)
func TestBudgetReader_counts_actual_bytes(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("big.xml")
	require.NoError(t, err)
	_, err = w.Write(bytes.Repeat([]byte("a"), 100_000))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	path := filepath.Join(t.TempDir(), "x.docx")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))

	for _, tc := range []struct {
		name    string
		budget  int64
		partCap int64
		wantMsg string
	}{
		{"package_budget", 10_000, 1 << 20, "expands to more than 10000 bytes (zip bomb guard)"},
		{"part_cap_declared", 1 << 20, 10_000, "part big.xml is larger than 10000 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := openArchive(context.Background(), path, DOCX, Limits{}.withDefaults())
			require.NoError(t, err)
			defer a.close()
			a.lim.MaxUncompressed = tc.budget // after the declared-size check passed
			var n int64
			rc, err := a.open("big.xml", tc.partCap)
			if err == nil {
				n, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			require.ErrorIs(t, err, failure.ErrValidation)
			assert.ErrorContains(t, err, tc.wantMsg)
			assert.LessOrEqual(t, n, min(tc.budget, tc.partCap)+1, "bytes read")
		})
	}
}

func TestCountEntries(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 50 {
		_, err := zw.Create(strings.Repeat("x", i+1))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	r := bytes.NewReader(buf.Bytes())
	for _, tc := range []struct {
		name string
		max  int
		want int
	}{
		{"under_limit_counts_all", 100, 50},
		{"over_limit_stops_early", 10, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := countEntries(r, int64(buf.Len()), tc.max)
			assert.True(t, ok, "countEntries ok")
			assert.Equal(t, tc.want, n, "countEntries")
		})
	}
	_, ok := countEntries(bytes.NewReader([]byte("not a zip at all")), 16, 10)
	assert.False(t, ok, "countEntries on garbage reported ok")
}

func TestInlineRender(t *testing.T) {
	var in inline
	in.add("plain ", false, false)
	in.add(" bold ", true, false)
	in.add("both", true, true)
	in.add("   ", false, true)
	in.add("it", false, true)
	assert.Equal(t, "plain  **bold** ***both***   *it*", in.render(false), "render")
	assert.Equal(t, "plain  bold both   it", in.render(true), "render(plain)")
}
