package render_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/render"
)

// TestMain first lets the binary serve as a render child when
// isolate_test.go's isolation tests start it as one (childMain exits), and
// otherwise runs the tests with the goroutine leak check.
func TestMain(m *testing.M) {
	childMain()
	leaktest.Main(m)
}

const testdata = "../../testdata/"

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testdata + name)
	require.NoError(t, err)
	return b
}

// writeTemp writes b to a new file called name in a fresh temp dir.
func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

// pngChunk encodes one PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	body := append([]byte(typ), data...)
	out = append(out, body...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(body))
}

// pngHeaderOnly returns a PNG signature plus one valid IHDR chunk (8-bit
// grayscale, w×h) and nothing else: a decompression bomb's header.
func pngHeaderOnly(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 0, 0, 0, 0) // bit depth 8, grayscale, deflate, filter 0, no interlace
	return append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
}

// pngWithOneRow is a w×h grayscale PNG header followed by pixel data for
// one row: Go's decoder allocates the whole w×h image as soon as it reads
// the IDAT chunk, so decoding it costs w×h bytes before failing.
func pngWithOneRow(t testing.TB, w, h uint32) []byte {
	t.Helper()
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, err := zw.Write(make([]byte, w+1)) // filter byte + w pixels
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	b := append(pngHeaderOnly(w, h), pngChunk("IDAT", z.Bytes())...)
	return append(b, pngChunk("IEND", nil)...)
}

// emptyPageTreePDF is a well-formed PDF (correct xref offsets) whose page
// tree has no pages.
func emptyPageTreePDF() []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [] /Count 0 >>",
	}
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(1)).Read(b)
	return b
}

// pagesOf counts the pages of a testdata .txt (pages are separated by a
// line holding only a form feed, see testdata/README.md).
func pagesOf(t *testing.T, txt string) int {
	t.Helper()
	return strings.Count(string(readTestdata(t, txt)), "\f") + 1
}

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		name       string
		path       func(t *testing.T) string
		wantFormat render.Format
		wantErr    error
		wantMsg    []string
	}{
		{name: "born_digital_pdf", path: fixed("report.pdf"), wantFormat: render.FormatPDF},
		{name: "scanned_pdf", path: fixed("scanned.pdf"), wantFormat: render.FormatPDF},
		{name: "png", path: fixed("page.png"), wantFormat: render.FormatPNG},
		{name: "jpeg", path: fixed("page.jpg"), wantFormat: render.FormatJPEG},
		{name: "xps_by_its_fdseq_part", path: fixed("formats/scan.xps"), wantFormat: render.FormatXPS},
		{name: "avif", path: fixed("formats/page.avif"), wantFormat: render.FormatAVIF},
		{name: "heic", path: fixed("formats/photo.heic"), wantFormat: render.FormatHEIC},
		{name: "cbz_is_only_images", path: fixed("formats/comic.cbz"), wantFormat: render.FormatCBZ},
		{name: "epub", path: fixed("formats/guide.epub"), wantFormat: render.FormatEPUB},
		{name: "odt", path: fixed("office/legacy/report.odt"), wantFormat: render.FormatODT},
		{name: "doc_by_its_WordDocument_stream", path: fixed("office/legacy/report.doc"), wantFormat: render.FormatDOC},
		{name: "xls_by_its_Workbook_stream", path: fixed("office/legacy/ledger.xls"), wantFormat: render.FormatXLS},
		{name: "ppt_by_its_PowerPoint_Document_stream", path: fixed("office/legacy/slides.ppt"), wantFormat: render.FormatPPT},
		{
			name: "password_protected_ooxml_says_so", wantErr: failure.ErrValidation, wantMsg: []string{"password-protected"},
			path: func(t *testing.T) string {
				ole := append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, make([]byte, 4088)...)
				for i, r := range "EncryptedPackage" {
					ole[2048+2*i] = byte(r)
				}
				return writeTemp(t, "secret.docx", ole)
			},
		},
		{
			name: "unknown_ole_file_is_unsupported", wantErr: failure.ErrValidation, wantMsg: []string{"unsupported", "x-ole-storage"},
			path: fixed("office/encrypted.docx"),
		},
		{
			name: "png_named_pdf_is_png", wantFormat: render.FormatPNG,
			path: func(t *testing.T) string { return writeTemp(t, "scan.pdf", readTestdata(t, "page.png")) },
		},
		{
			name: "text_is_unsupported_and_lists_supported_types", path: fixed("report.txt"),
			wantErr: failure.ErrValidation, wantMsg: []string{"unsupported", "text/plain", render.Supported},
		},
		{
			name:    "text_named_pdf_extension_lies",
			path:    func(t *testing.T) string { return writeTemp(t, "report.pdf", readTestdata(t, "report.txt")) },
			wantErr: failure.ErrValidation, wantMsg: []string{"unsupported", "text/plain"},
		},
		{
			name:    "zero_bytes_is_empty",
			path:    func(t *testing.T) string { return writeTemp(t, "empty.pdf", nil) },
			wantErr: failure.ErrValidation, wantMsg: []string{"empty"},
		},
		{
			name:    "random_bytes",
			path:    func(t *testing.T) string { return writeTemp(t, "blob.pdf", randomBytes(4096)) },
			wantErr: failure.ErrValidation, wantMsg: []string{"unsupported", render.Supported},
		},
		{
			name:    "missing_file_is_not_a_validation_error",
			path:    func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent.pdf") },
			wantErr: fs.ErrNotExist,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, mime, err := render.Sniff(tc.path(t))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr, "Sniff err")
				if tc.wantErr == fs.ErrNotExist {
					assert.NotErrorIs(t, err, failure.ErrValidation, "a missing file is an infrastructure error, not the user's input")
				}
				for _, m := range tc.wantMsg {
					assert.ErrorContains(t, err, m, "Sniff err")
				}
				return
			}
			require.NoError(t, err, "Sniff")
			assert.Equal(t, tc.wantFormat, got, "Sniff format (MIME %s)", mime)
			assert.NotEmpty(t, mime, "Sniff returned no MIME type")
		})
	}
}

func fixed(name string) func(*testing.T) string {
	return func(*testing.T) string { return testdata + name }
}

func TestOpen_refuses_bad_input_with_a_reason(t *testing.T) {
	lim := render.Limits{MaxPages: 2000, MaxImagePixels: 100_000_000}
	for _, tc := range []struct {
		name  string
		file  string
		bytes func(t *testing.T) []byte
		// wantMsg: every substring must appear in the error.
		wantMsg []string
	}{
		{name: "zero_byte_file", file: "empty.pdf", bytes: func(*testing.T) []byte { return nil }, wantMsg: []string{"empty"}},
		{
			name: "text_file_named_pdf", file: "notes.pdf",
			bytes:   func(t *testing.T) []byte { return readTestdata(t, "report.txt") },
			wantMsg: []string{"unsupported", "text/plain"},
		},
		{name: "random_bytes", file: "data.bin", bytes: func(*testing.T) []byte { return randomBytes(8192) }, wantMsg: []string{"unsupported"}},
		{
			name: "pdf_header_then_garbage", file: "garbage.pdf",
			bytes:   func(*testing.T) []byte { return append([]byte("%PDF-1.7\n"), randomBytes(4096)...) },
			wantMsg: []string{"damaged"},
		},
		{name: "pdf_with_empty_page_tree", file: "nopages.pdf", bytes: func(*testing.T) []byte { return emptyPageTreePDF() }, wantMsg: []string{"0 pages"}},
		{
			// MuPDF would repair the truncated file silently (every page,
			// the missing ones blank); Open refuses it first.
			name: "truncated_pdf_first_5KB", file: "truncated.pdf",
			bytes:   func(t *testing.T) []byte { return readTestdata(t, "report.pdf")[:5<<10] },
			wantMsg: []string{"truncated"},
		},
		{
			name: "truncated_png", file: "truncated.png",
			bytes:   func(t *testing.T) []byte { return readTestdata(t, "page.png")[:2000] },
			wantMsg: []string{"damaged"},
		},
		{
			name: "truncated_jpeg", file: "truncated.jpg",
			bytes:   func(t *testing.T) []byte { return readTestdata(t, "page.jpg")[:1000] },
			wantMsg: []string{"jpeg"},
		},
		{
			name: "png_header_claims_100000x100000", file: "bomb.png",
			bytes:   func(*testing.T) []byte { return pngHeaderOnly(100000, 100000) },
			wantMsg: []string{"100000×100000", "MAX_IMAGE_PIXELS"},
		},
		{
			name: "png_header_claims_zero_width", file: "zero.png",
			bytes:   func(*testing.T) []byte { return pngHeaderOnly(0, 10) },
			wantMsg: []string{"header"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTemp(t, tc.file, tc.bytes(t))
			d, err := render.Open(context.Background(), p, lim)
			if err == nil {
				pages := d.Pages()
				assert.NoError(t, d.Close())
				require.Failf(t, "Open accepted bad input", "Open(%s) succeeded with %d pages, want a validation error", tc.file, pages)
			}
			assert.Nil(t, d, "Open returned a document with its error")
			require.ErrorIs(t, err, failure.ErrValidation, "Open err")
			for _, m := range tc.wantMsg {
				assert.ErrorContains(t, err, m, "Open err")
			}
		})
	}
}

func TestOpen_refuses_a_decompression_bomb_before_allocating_it(t *testing.T) {
	const maxAlloc = 50 << 20
	for _, tc := range []struct {
		name string
		png  func(t *testing.T) []byte
	}{
		{"header_only_100000x100000", func(*testing.T) []byte { return pngHeaderOnly(100000, 100000) }},
		{"header_only_wide_1000000x200", func(*testing.T) []byte { return pngHeaderOnly(1000000, 200) }},
		// Decoding this one would allocate 400 MB: proof that the pixel
		// check, not a short file, keeps the allocation away.
		{"with_pixel_data_20000x20000", func(t *testing.T) []byte { return pngWithOneRow(t, 20000, 20000) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTemp(t, "bomb.png", tc.png(t))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			d, err := render.Open(context.Background(), p, render.Limits{MaxImagePixels: 100_000_000})
			runtime.ReadMemStats(&after)
			if err == nil {
				assert.NoError(t, d.Close())
				require.FailNow(t, "Open accepted an image over MAX_IMAGE_PIXELS")
			}
			require.ErrorIs(t, err, failure.ErrValidation, "Open err, want a validation error naming MAX_IMAGE_PIXELS")
			require.ErrorContains(t, err, "MAX_IMAGE_PIXELS", "Open err, want a validation error naming MAX_IMAGE_PIXELS")
			grew := after.TotalAlloc - before.TotalAlloc
			assert.LessOrEqual(t, grew, uint64(maxAlloc), "Open allocated %d MiB refusing the image, want < %d MiB (pixels must not be allocated)", grew>>20, maxAlloc>>20)
		})
	}
}

func TestOpen_limits_and_page_counts(t *testing.T) {
	reportPages := pagesOf(t, "report.txt")
	scannedPages := pagesOf(t, "scanned.txt")
	for _, tc := range []struct {
		name       string
		file       string
		lim        render.Limits
		wantPages  int
		wantFormat render.Format
		wantMsg    string // non-empty: want a validation error with it
	}{
		{name: "report_pdf", file: "report.pdf", wantPages: reportPages, wantFormat: render.FormatPDF},
		{name: "scanned_pdf", file: "scanned.pdf", wantPages: scannedPages, wantFormat: render.FormatPDF},
		{name: "png_is_one_page", file: "page.png", wantPages: 1, wantFormat: render.FormatPNG},
		{name: "jpeg_is_one_page", file: "page.jpg", wantPages: 1, wantFormat: render.FormatJPEG},
		{name: "max_pages_exactly_the_count", file: "report.pdf", lim: render.Limits{MaxPages: reportPages}, wantPages: reportPages, wantFormat: render.FormatPDF},
		{name: "max_pages_below_the_count", file: "report.pdf", lim: render.Limits{MaxPages: reportPages / 2}, wantMsg: "MAX_PAGES"},
		{name: "image_within_pixel_limit", file: "page.png", lim: render.Limits{MaxImagePixels: 100_000_000}, wantPages: 1, wantFormat: render.FormatPNG},
		{name: "image_over_pixel_limit", file: "page.jpg", lim: render.Limits{MaxImagePixels: 1000}, wantMsg: "MAX_IMAGE_PIXELS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := render.Open(context.Background(), testdata+tc.file, tc.lim)
			if tc.wantMsg != "" {
				if err == nil {
					assert.NoError(t, d.Close())
					require.Failf(t, "Open succeeded", "Open succeeded, want a validation error naming %s", tc.wantMsg)
				}
				require.ErrorIs(t, err, failure.ErrValidation, "Open err, want a validation error naming %s", tc.wantMsg)
				assert.ErrorContains(t, err, tc.wantMsg, "Open err, want a validation error naming it")
				return
			}
			require.NoError(t, err, "Open")
			defer func() { assert.NoError(t, d.Close()) }()
			assert.Equal(t, tc.wantPages, d.Pages(), "Open pages")
			assert.Equal(t, tc.wantFormat, d.Format(), "Open format")
		})
	}
}

func TestOpen_cancelled_context(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := render.Open(ctx, testdata+"report.pdf", render.Limits{})
	if err == nil {
		assert.NoError(t, d.Close())
	}
	assert.ErrorIs(t, err, context.Canceled, "Open with a cancelled context")
}

// mmToPx converts a paper length in millimetres to pixels at dpi.
func mmToPx(mm, dpi float64) float64 { return mm / 25.4 * dpi }

func TestRender_sizes(t *testing.T) {
	pngCfg := decodeConfig(t, "page.png")
	for _, tc := range []struct {
		name   string
		file   string
		target render.Target
		check  func(t *testing.T, w, h int)
	}{
		{
			name: "pdf_long_side_1024", file: "report.pdf", target: render.Target{LongSide: 1024},
			check: func(t *testing.T, w, h int) {
				assert.GreaterOrEqual(t, max(w, h), 1000, "long side, want in [1000, 1024]")
				assert.LessOrEqual(t, max(w, h), 1024, "long side, want in [1000, 1024]")
			},
		},
		{
			name: "pdf_a4_at_144_dpi", file: "report.pdf", target: render.Target{DPI: 144},
			check: func(t *testing.T, w, h int) {
				// A4 is 210×297 mm.
				wantW, wantH := mmToPx(210, 144), mmToPx(297, 144)
				assert.InDelta(t, wantW, float64(w), 2, "width (±2)")
				assert.InDelta(t, wantH, float64(h), 2, "height (±2)")
			},
		},
		{
			name: "pdf_dpi_capped_at_MaxLongSide", file: "report.pdf", target: render.Target{DPI: 1200},
			check: func(t *testing.T, w, h int) {
				assert.LessOrEqual(t, max(w, h), render.MaxLongSide, "long side, want just under MaxLongSide")
				assert.GreaterOrEqual(t, max(w, h), render.MaxLongSide-30, "long side, want just under MaxLongSide")
			},
		},
		{
			name: "scanned_pdf_long_side_1024", file: "scanned.pdf", target: render.Target{LongSide: 1024},
			check: func(t *testing.T, w, h int) {
				assert.GreaterOrEqual(t, max(w, h), 1000, "long side, want in [1000, 1024]")
				assert.LessOrEqual(t, max(w, h), 1024, "long side, want in [1000, 1024]")
			},
		},
		{
			name: "png_long_side_1024_scales_down_keeping_aspect", file: "page.png", target: render.Target{LongSide: 1024},
			check: func(t *testing.T, w, h int) {
				require.Greater(t, max(pngCfg.Width, pngCfg.Height), 1024, "page.png is %d×%d: too small to test scaling down", pngCfg.Width, pngCfg.Height)
				assert.Equal(t, 1024, max(w, h), "long side")
				srcAspect := float64(pngCfg.Width) / float64(pngCfg.Height)
				assert.InDelta(t, srcAspect, float64(w)/float64(h), 0.01, "aspect, want the source's")
			},
		},
		{
			name: "png_dpi_keeps_its_size", file: "page.png", target: render.Target{DPI: 144},
			check: func(t *testing.T, w, h int) {
				assert.Equal(t, pngCfg.Width, w, "width, want the source's")
				assert.Equal(t, pngCfg.Height, h, "height, want the source's")
			},
		},
		{
			name: "png_long_side_larger_than_image_never_scales_up", file: "page.png", target: render.Target{LongSide: 4000},
			check: func(t *testing.T, w, h int) {
				assert.Equal(t, pngCfg.Width, w, "width, want the source's")
				assert.Equal(t, pngCfg.Height, h, "height, want the source's")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := render.Open(context.Background(), testdata+tc.file, render.Limits{})
			require.NoError(t, err)
			defer func() { assert.NoError(t, d.Close()) }()
			p, err := d.Render(context.Background(), 1, tc.target)
			require.NoError(t, err, "Render")
			img := decodeJPEG(t, p)
			tc.check(t, img.Bounds().Dx(), img.Bounds().Dy())
		})
	}
}

func decodeConfig(t *testing.T, name string) image.Config {
	t.Helper()
	cfg, _, err := image.DecodeConfig(bytes.NewReader(readTestdata(t, name)))
	require.NoError(t, err)
	return cfg
}

// decodeJPEG checks that p is a valid JPEG whose size matches what p says.
func decodeJPEG(t *testing.T, p render.Page) image.Image {
	t.Helper()
	assert.Equal(t, "image/jpeg", p.MIME, "MIME")
	img, err := jpeg.Decode(bytes.NewReader(p.Data))
	require.NoError(t, err, "page is not a valid JPEG")
	assert.Equal(t, p.Width, img.Bounds().Dx(), "JPEG width, as the Page says")
	assert.Equal(t, p.Height, img.Bounds().Dy(), "JPEG height, as the Page says")
	return img
}

// inkShare is the share of pixels darker than mid-grey: a sparse page of
// text gives a few tenths of a percent, a blank page none.
func inkShare(img image.Image) float64 {
	b := img.Bounds()
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, bl, _ := img.At(x, y).RGBA(); (r+g+bl)/3 < 0x8000 {
				dark++
			}
		}
	}
	return float64(dark) / float64(b.Dx()*b.Dy())
}

// TestRender_mupdf_formats_draw_their_content: each sample of a format
// MuPDF (or a WebAssembly decoder) reads opens with the right page count
// and every page renders with ink on it (a handler that opens but draws
// nothing would pass a page count check alone).
func TestRender_mupdf_formats_draw_their_content(t *testing.T) {
	for _, tc := range []struct {
		file   string
		format render.Format
		pages  int
	}{
		{"formats/scan.xps", render.FormatXPS, 2},
		{"formats/comic.cbz", render.FormatCBZ, 2},
		{"formats/guide.epub", render.FormatEPUB, 1},
		{"formats/page.svg", render.FormatSVG, 1},
		{"formats/page.avif", render.FormatAVIF, 1},
		{"formats/photo.heic", render.FormatHEIC, 1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			d, err := render.Open(context.Background(), testdata+tc.file, render.Limits{})
			require.NoError(t, err)
			defer func() { assert.NoError(t, d.Close()) }()
			require.Equal(t, tc.format, d.Format(), "opened as")
			require.Equal(t, tc.pages, d.Pages(), "pages")
			for n := 1; n <= d.Pages(); n++ {
				p, err := d.Render(context.Background(), n, render.Target{LongSide: 1024})
				require.NoError(t, err, "Render page %d", n)
				ink := inkShare(decodeJPEG(t, p))
				assert.GreaterOrEqual(t, ink, 0.001, "page %d has %.2f%% ink: drawn blank", n, 100*ink)
			}
		})
	}
}

func TestRender_every_page_is_a_valid_jpeg(t *testing.T) {
	for _, file := range []string{"report.pdf", "scanned.pdf", "page.png", "page.jpg"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			d, err := render.Open(context.Background(), testdata+file, render.Limits{})
			require.NoError(t, err)
			defer func() { assert.NoError(t, d.Close()) }()
			for n := 1; n <= d.Pages(); n++ {
				p, err := d.Render(context.Background(), n, render.Target{LongSide: 1024})
				require.NoError(t, err, "Render page %d", n)
				decodeJPEG(t, p)
			}
		})
	}
}

func TestRender_refuses(t *testing.T) {
	d, err := render.Open(context.Background(), testdata+"report.pdf", render.Limits{})
	require.NoError(t, err)
	defer func() { assert.NoError(t, d.Close()) }()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		page    int
		wantErr error // nil: any error
	}{
		{name: "page_zero", ctx: context.Background(), page: 0},
		{name: "page_after_last", ctx: context.Background(), page: d.Pages() + 1},
		{name: "cancelled_context", ctx: cancelled, page: 1, wantErr: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := d.Render(tc.ctx, tc.page, render.Target{LongSide: 512})
			require.Error(t, err, "Render(%d) = %d bytes, want an error", tc.page, len(p.Data))
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr, "Render err")
			}
		})
	}
}

func TestDocument_Close_twice(t *testing.T) {
	for _, file := range []string{"report.pdf", "page.png"} {
		t.Run(file, func(t *testing.T) {
			d, err := render.Open(context.Background(), testdata+file, render.Limits{})
			require.NoError(t, err)
			require.NoError(t, d.Close())
			assert.NoError(t, d.Close(), "second Close")
		})
	}
}

func TestEncode_grayscale_pages_become_one_channel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		colour   color.RGBA
		wantGray bool
	}{
		{"gray_pixels", color.RGBA{R: 90, G: 90, B: 90, A: 255}, true},
		{"one_coloured_pixel", color.RGBA{R: 200, G: 10, B: 10, A: 255}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := image.NewRGBA(image.Rect(0, 0, 64, 48))
			for i := range img.Pix {
				img.Pix[i] = 255
			}
			img.SetRGBA(10, 10, tc.colour)
			p, err := render.Encode(img)
			require.NoError(t, err)
			out := decodeJPEG(t, p)
			_, isGray := out.(*image.Gray)
			assert.Equal(t, tc.wantGray, isGray, "decoded %T, grayscale", out)
			assert.Equal(t, 64, p.Width, "width")
			assert.Equal(t, 48, p.Height, "height")
		})
	}
}

// TestRender_concurrent_documents_match_sequential checks the process-wide
// MuPDF lock: documents opened and rendered from several goroutines at once
// neither crash nor differ from a sequential render.
func TestRender_concurrent_documents_match_sequential(t *testing.T) {
	const workers = 4
	ctx := context.Background()
	target := render.Target{LongSide: 1024}
	renderAll := func() ([][]byte, error) {
		d, err := render.Open(ctx, testdata+"report.pdf", render.Limits{})
		if err != nil {
			return nil, err
		}
		defer func() { assert.NoError(t, d.Close()) }()
		var out [][]byte
		for n := 1; n <= d.Pages(); n++ {
			p, err := d.Render(ctx, n, target)
			if err != nil {
				return nil, fmt.Errorf("page %d: %w", n, err)
			}
			out = append(out, p.Data)
		}
		return out, nil
	}
	want, err := renderAll()
	require.NoError(t, err)
	got := make([][][]byte, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { got[i], errs[i] = renderAll() })
	}
	wg.Wait()
	for i := range workers {
		if !assert.NoError(t, errs[i], "worker %d", i) || !assert.Len(t, got[i], len(want), "worker %d rendered pages", i) {
			continue
		}
		for n := range want {
			assert.True(t, bytes.Equal(got[i][n], want[n]), "worker %d page %d differs from the sequential render", i, n+1)
		}
	}
}

// FuzzSniff feeds arbitrary leading bytes to Sniff: it must never panic,
// must refuse empty input, and must only ever name a supported format.
// Seeds are short (magic bytes decide the format), which keeps the fuzzer's
// minimisation of new inputs fast.
func FuzzSniff(f *testing.F) {
	for _, name := range []string{"report.pdf", "scanned.pdf", "page.png", "page.jpg", "report.txt"} {
		b := readTestdata(f, name)
		f.Add(b[:min(len(b), 64)])
	}
	f.Add([]byte{})
	f.Add(pngHeaderOnly(100000, 100000))
	f.Add([]byte("%PDF-1.7\n"))
	supported := map[render.Format]bool{
		render.FormatPDF: true, render.FormatPNG: true, render.FormatJPEG: true, render.FormatGIF: true,
		render.FormatBMP: true, render.FormatWebP: true, render.FormatTIFF: true,
	}
	// A fuzz worker runs one input at a time, so one file is reused.
	p := filepath.Join(f.TempDir(), "input")
	f.Fuzz(func(t *testing.T, data []byte) {
		require.NoError(t, os.WriteFile(p, data, 0o600))
		format, mime, err := render.Sniff(p)
		switch {
		case len(data) == 0:
			if !errors.Is(err, failure.ErrValidation) {
				t.Fatalf("Sniff(empty) err = %v, want validation", err)
			}
		case err != nil:
			if !errors.Is(err, failure.ErrValidation) {
				t.Fatalf("Sniff err = %v, want only validation errors for file content", err)
			}
		case !supported[format]:
			t.Fatalf("Sniff = %q (%s), not a supported format", format, mime)
		}
	})
}
