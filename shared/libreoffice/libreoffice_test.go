package libreoffice_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
	if err != nil {
		t.Fatalf("%v (make test installs it)", err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	src = filepath.Join(dir, "source")
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return src, dir
}

// pdfText is the text layer of every page of the PDF at path, as markdown.
func pdfText(t *testing.T, path string) (pages int, text string) {
	t.Helper()
	d, err := render.Open(context.Background(), path, render.Limits{})
	if err != nil {
		t.Fatalf("the converted file does not open as a document: %v", err)
	}
	defer d.Close()
	if d.Format() != render.FormatPDF {
		t.Fatalf("converted file is %s, want pdf", d.Format())
	}
	var b strings.Builder
	for n := 1; n <= d.Pages(); n++ {
		html, w, h, _, err := d.PageHTML(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
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
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Dir(pdf) != dir {
				t.Errorf("PDF written to %s, want it in %s", pdf, dir)
			}
			pages, text := pdfText(t, pdf)
			if pages < tc.minPages {
				t.Errorf("%d pages, want at least %d", pages, tc.minPages)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("converted text lacks %q:\n%s", w, text)
				}
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 2 {
				t.Errorf("dir holds %d entries, want the source and the PDF only (profile removed)", len(entries))
			}
		})
	}
}

func TestToPDF_failures_are_classified(t *testing.T) {
	c := converter(t)
	t.Run("document_libreoffice_cannot_load", func(t *testing.T) {
		src, dir := copyAs(t, "bad/notes.odt")
		_, err := c.ToPDF(context.Background(), src, dir)
		if !errors.Is(err, failure.ErrValidation) || !strings.Contains(err.Error(), "could not be loaded") {
			t.Fatalf("err = %v, want a validation error quoting LibreOffice", err)
		}
	})
	t.Run("cancelled_context", func(t *testing.T) {
		src, dir := copyAs(t, "office/legacy/report.doc")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.ToPDF(ctx, src, dir); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestNew_without_libreoffice(t *testing.T) {
	_, err := libreoffice.New(libreoffice.Config{Binary: "no-such-soffice-binary"})
	if !errors.Is(err, libreoffice.ErrNotInstalled) || !strings.Contains(err.Error(), "LIBREOFFICE_PATH") {
		t.Fatalf("err = %v, want ErrNotInstalled naming the way out", err)
	}
}

// TestToPDF_timeout_kills_the_process_group: a stand-in soffice that
// starts a grandchild and hangs is stopped at the timeout, grandchild
// included, and the error is permanent.
func TestToPDF_timeout_kills_the_process_group(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "grandchild.pid")
	script := filepath.Join(dir, "soffice")
	body := "#!/bin/sh\nsleep 300 &\necho $! > " + pidFile + "\nwait\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := libreoffice.New(libreoffice.Config{Binary: script, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	src, work := copyAs(t, "office/legacy/report.doc")
	start := time.Now()
	_, err = c.ToPDF(context.Background(), src, work)
	if !errors.Is(err, failure.ErrPermanent) || !strings.Contains(err.Error(), "took longer than 500ms") {
		t.Fatalf("err = %v, want a permanent timeout error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("ToPDF returned after %s, want soon after the 500ms timeout", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// SIGKILL is delivered asynchronously: give the kernel a moment.
	for deadline := time.Now().Add(5 * time.Second); alive(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d outlived the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	const limit = 768 << 20
	c, err := libreoffice.New(libreoffice.Config{Binary: script, MemoryBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	src, work := copyAs(t, "office/legacy/report.doc")
	if _, err := c.ToPDF(context.Background(), src, work); !errors.Is(err, failure.ErrValidation) {
		t.Fatalf("err = %v, want validation (the stand-in writes no PDF)", err)
	}
	b, err := os.ReadFile(seen)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(limit>>10) {
		t.Fatalf("child saw ulimit -v %s KiB, want %d", got, limit>>10)
	}
}
