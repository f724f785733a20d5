package libreoffice_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/libreoffice"
	"github.com/ocrflow/ocrflow/shared/render"
	"github.com/ocrflow/ocrflow/shared/textlayer"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

const testdata = "../../testdata/"

// converter returns a converter on the installed LibreOffice; make test
// installs it (TEST_APT), so its absence is a failure, not a skip.
func converter(t *testing.T) *libreoffice.Converter {
	t.Helper()
	c, err := newConverter()
	require.NoError(t, err, "make test installs it")
	return c
}

func newConverter() (*libreoffice.Converter, error) {
	return libreoffice.New(libreoffice.Config{Timeout: 2 * time.Minute})
}

// copyAs copies a sample into a fresh dir under a name without extension,
// as convert stores every source: LibreOffice must detect the type from
// the content.
func copyAs(t *testing.T, name string) (src, dir string) {
	t.Helper()
	b, err := os.ReadFile(testdata + name)
	require.NoError(t, err)
	dir = t.TempDir()
	src = filepath.Join(dir, "source")
	require.NoError(t, os.WriteFile(src, b, 0o644))
	return src, dir
}

// pdfText is the text layer of every page of the PDF at path, as markdown.
func pdfText(t *testing.T, path string) (pages int, text string) {
	t.Helper()
	d, err := render.Open(context.Background(), path, render.Limits{})
	require.NoError(t, err, "the converted file does not open as a document")
	defer func() { assert.NoError(t, d.Close()) }()
	require.Equal(t, render.FormatPDF, d.Format(), "format of the converted file")
	var b strings.Builder
	for n := 1; n <= d.Pages(); n++ {
		html, w, h, _, err := d.PageHTML(context.Background(), n)
		require.NoError(t, err, "page %d", n)
		b.WriteString(textlayer.Analyze(html, w, h).Markdown)
		b.WriteString("\n")
	}
	return d.Pages(), b.String()
}

func TestToPDF_converts_each_office_format(t *testing.T) {
	c := converter(t)
	for _, tc := range []struct {
		file     string
		minPages int
		want     []string
	}{
		{"office/legacy/report.doc", 2, []string{"Annual Report 2026", "Regional results", "Expand to two new markets"}},
		{"office/legacy/report.odt", 2, []string{"Annual Report 2026", "Regional results"}},
		{"office/legacy/slides.ppt", 2, []string{"Quarterly Review", "Highlights"}},
		{"office/legacy/ledger.xls", 1, []string{"Toner", "1,249.00", "Growth"}},
		{"office/report.docx", 2, []string{"Annual Report 2026"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			src, dir := copyAs(t, tc.file)
			pdf, err := c.ToPDF(context.Background(), src, dir)
			require.NoError(t, err)
			assert.Equal(t, dir, filepath.Dir(pdf), "PDF written to %s, want it in %s", pdf, dir)
			pages, text := pdfText(t, pdf)
			assert.GreaterOrEqual(t, pages, tc.minPages, "pages")
			for _, w := range tc.want {
				assert.Contains(t, text, w, "converted text lacks %q", w)
			}
			entries, _ := os.ReadDir(dir)
			assert.Len(t, entries, 2, "dir entries, want the source and the PDF only (profile removed)")
		})
	}
}

func TestToPDF_failures_are_classified(t *testing.T) {
	c := converter(t)
	t.Run("document_libreoffice_cannot_load", func(t *testing.T) {
		src, dir := copyAs(t, "bad/notes.odt")
		_, err := c.ToPDF(context.Background(), src, dir)
		assert.ErrorIs(t, err, failure.ErrValidation, "want a validation error quoting LibreOffice")
		assert.ErrorContains(t, err, "could not be loaded", "want a validation error quoting LibreOffice")
	})
	t.Run("cancelled_context", func(t *testing.T) {
		src, dir := copyAs(t, "office/legacy/report.doc")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.ToPDF(ctx, src, dir)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestNew_without_libreoffice(t *testing.T) {
	_, err := libreoffice.New(libreoffice.Config{Binary: "no-such-soffice-binary"})
	assert.ErrorIs(t, err, libreoffice.ErrNotInstalled)
	assert.ErrorContains(t, err, "LIBREOFFICE_PATH", "want ErrNotInstalled naming the way out")
}

// TestToPDF_timeout_kills_the_process_group: a stand-in soffice that
// starts a grandchild and hangs is stopped at the timeout, grandchild
// included, and the error is permanent.
func TestToPDF_timeout_kills_the_process_group(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "grandchild.pid")
	script := filepath.Join(dir, "soffice")
	body := "#!/bin/sh\nsleep 300 &\necho $! > " + pidFile + "\nwait\n"
	require.NoError(t, os.WriteFile(script, []byte(body), 0o755))
	c, err := libreoffice.New(libreoffice.Config{Binary: script, Timeout: 500 * time.Millisecond})
	require.NoError(t, err)
	src, work := copyAs(t, "office/legacy/report.doc")
	start := time.Now()
	_, err = c.ToPDF(context.Background(), src, work)
	require.ErrorIs(t, err, failure.ErrPermanent, "want a permanent timeout error")
	require.ErrorContains(t, err, "took longer than 500ms", "want a permanent timeout error")
	d := time.Since(start)
	assert.LessOrEqual(t, d, 10*time.Second, "ToPDF returned after %s, want soon after the 500ms timeout", d)
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	// SIGKILL is delivered asynchronously: give the kernel a moment.
	assert.Eventually(t, func() bool { return !alive(pid) }, 5*time.Second, 10*time.Millisecond,
		"grandchild %d outlived the timeout", pid)
}

// alive reports whether pid runs (a zombie waiting to be reaped does not).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestToPDF_memory_limit_reaches_the_conversion: a stand-in soffice
// records the address-space limit a child of it sees (soffice.bin is such
// a child), which must be the configured one.
func TestToPDF_memory_limit_reaches_the_conversion(t *testing.T) {
	dir := t.TempDir()
	seen := filepath.Join(dir, "limit")
	script := filepath.Join(dir, "soffice")
	body := "#!/bin/sh\nsh -c 'ulimit -v' > " + seen + "\n"
	require.NoError(t, os.WriteFile(script, []byte(body), 0o755))
	const limit = 768 << 20
	c, err := libreoffice.New(libreoffice.Config{Binary: script, MemoryBytes: limit})
	require.NoError(t, err)
	src, work := copyAs(t, "office/legacy/report.doc")
	_, err = c.ToPDF(context.Background(), src, work)
	require.ErrorIs(t, err, failure.ErrValidation, "want validation (the stand-in writes no PDF)")
	b, err := os.ReadFile(seen)
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(limit>>10), strings.TrimSpace(string(b)), "ulimit -v (KiB) the child saw")
}
