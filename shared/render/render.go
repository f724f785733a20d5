// Package render turns a source document into page images sized for the
// recognition engine.
//
// PDFs (and the other formats MuPDF reads) are rendered with go-fitz behind
// one process-wide mutex: MuPDF's global state is not protected when several
// go-fitz Documents are used at once (gen2brain/go-fitz#142 — concurrent use
// crashes the process). Only MuPDF calls hold the lock; image encoding runs
// outside it. Page images are encoded, and JPEG sources decoded (at a
// reduced scale when the target allows), with libjpeg-turbo (package
// turbojpeg; Go's image/jpeg without cgo); the other raster formats with
// the Go standard library and golang.org/x/image, which avoids MuPDF's
// sizing by DPI metadata.
//
// Binaries that link go-fitz link MuPDF, which is AGPL-3.0.
package render

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gabriel-vasile/mimetype"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// Target is the page size an engine wants. Exactly one of DPI and LongSide
// is set: tesseract reads best at ~144 DPI, vision models want a fixed
// number of pixels on the long side.
type Target struct {
	// DPI renders vector pages at this resolution; raster images keep
	// their size (capped at MaxLongSide).
	DPI float64
	// LongSide scales every page so its longer side is at most this many
	// pixels.
	LongSide int
}

// MaxLongSide caps a page image's longer side whatever the target.
const MaxLongSide = 4096

// Limits bound what Open accepts.
type Limits struct {
	// MaxPages rejects documents with more pages.
	MaxPages int
	// MaxImagePixels rejects raster images larger than this (width×height),
	// checked from the header before decoding.
	MaxImagePixels int64
	// Isolation renders in a child process, so a document that crashes
	// MuPDF fails alone instead of taking the process down.
	Isolation Isolation
	// TempDir holds the short-lived files opening a document may need
	// (a link giving MuPDF the file name it picks its handler by);
	// default os.TempDir(). Convert points it into the job's own
	// directory, which goes whatever happens to the job.
	TempDir string
}

// Page is one encoded page image.
type Page struct {
	Data []byte
	MIME string
	// Width and Height are the image's size in pixels.
	Width  int
	Height int
	// WidthPt and HeightPt are the page's size in points (1/72 inch): a
	// PDF page's bounds as the renderer reports them (MuPDF: whole
	// points), an image's pixels at the resolution it states (72 dpi when
	// it states none), upright. Pixel boxes map onto the page by
	// x·WidthPt/Width and y·HeightPt/Height.
	WidthPt  float64
	HeightPt float64
}

// Format names a supported source format.
type Format string

// Supported formats.
const (
	FormatPDF  Format = "pdf"
	FormatPNG  Format = "png"
	FormatJPEG Format = "jpeg"
	FormatGIF  Format = "gif"
	FormatBMP  Format = "bmp"
	FormatWebP Format = "webp"
	FormatTIFF Format = "tiff"
	// AVIF and HEIC decode through libavif and libheif compiled to
	// WebAssembly (gen2brain/avif, gen2brain/heic): the first image in a
	// process pays about a second to compile the module.
	FormatAVIF Format = "avif"
	FormatHEIC Format = "heic"
	// MuPDF also reads these (each verified with a real file).
	FormatSVG  Format = "svg"
	FormatEPUB Format = "epub"
	FormatCBZ  Format = "cbz"
	FormatXPS  Format = "xps"
	// Office formats are sniffed here but not rendered: their text is
	// extracted (package office) and only embedded images are OCRed.
	FormatDOCX Format = "docx"
	FormatPPTX Format = "pptx"
	FormatXLSX Format = "xlsx"
)

// Office reports whether f is an office format (extracted, not rendered).
func (f Format) Office() bool { return f == FormatDOCX || f == FormatPPTX || f == FormatXLSX }

var formatsByMIME = map[string]Format{
	"application/pdf":      FormatPDF,
	"image/png":            FormatPNG,
	"image/jpeg":           FormatJPEG,
	"image/gif":            FormatGIF,
	"image/bmp":            FormatBMP,
	"image/webp":           FormatWebP,
	"image/tiff":           FormatTIFF,
	"image/avif":           FormatAVIF,
	"image/heic":           FormatHEIC,
	"image/heif":           FormatHEIC,
	"image/svg+xml":        FormatSVG,
	"application/epub+zip": FormatEPUB,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   FormatDOCX,
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": FormatPPTX,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         FormatXLSX,
}

// Supported lists the accepted MIME types, for error messages.
const Supported = "application/pdf, image/png, image/jpeg, image/gif, image/bmp, image/webp, image/tiff, image/avif, image/heic, SVG, EPUB, CBZ, XPS, DOCX, PPTX, XLSX; with LibreOffice also DOC, XLS, PPT, ODT, ODS, ODP"

// Sniff detects the format of the file at path from its content (magic
// bytes), never from its name.
func Sniff(path string) (Format, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("sniff: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: nothing is lost
	head := make([]byte, 3072)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", "", fmt.Errorf("sniff: %w", err)
	}
	if n == 0 {
		return "", "", failure.Validation("the file is empty (0 bytes)")
	}
	m := mimetype.Detect(head[:n])
	for mt := m; mt != nil; mt = mt.Parent() {
		if f, ok := formatsByMIME[mt.String()]; ok {
			return f, mt.String(), nil
		}
	}
	if m.Is("application/zip") {
		switch zipFormat(path) {
		case FormatCBZ:
			return FormatCBZ, "application/vnd.comicbook+zip", nil
		case FormatXPS:
			return FormatXPS, "application/vnd.ms-xpsdocument", nil
		}
	}
	for mt := m; mt != nil; mt = mt.Parent() {
		if f, ok := legacyByMIME[mt.String()]; ok {
			return f, mt.String(), nil
		}
	}
	if m.Is("application/x-ole-storage") {
		switch f, encrypted := oleFormat(path); {
		case encrypted:
			return "", m.String(), failure.Validation("the document is a password-protected Office file: remove the password and submit it again")
		case f != "":
			return f, m.String(), nil
		}
	}
	return "", m.String(), failure.Validation("unsupported document type %s (supported: %s)", m.String(), Supported)
}

// Document is an opened source document. It is not safe for concurrent use.
type Document struct {
	format Format
	pages  int
	pdf    pager
	// img is a raster image (when pdf is nil).
	img raster
	// cleanup removes what Open made next to the source (a named link).
	cleanup func()
}

// pager is a paged document behind MuPDF (in process, or in a child process
// when isolated).
type pager interface {
	numPages() int
	// render renders page i and returns it with the page's size in
	// points.
	render(i int, t Target) (*image.RGBA, Size, error)
	html(i int) (string, image.Rectangle, error)
	close()
}

// Open sniffs and opens the file at path. Unreadable, corrupt, encrypted or
// oversized inputs fail with a validation error that says why.
func Open(ctx context.Context, path string, lim Limits) (*Document, error) {
	format, _, err := Sniff(path)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if format.Office() {
		return nil, failure.Validation("%s documents are extracted, not rendered", format)
	}
	if format.Legacy() {
		return nil, failure.Validation("%s documents are converted to PDF with LibreOffice before rendering", format.Describe())
	}
	d := &Document{format: format}
	if format == FormatPDF {
		if err := checkPDFEnd(path); err != nil {
			return nil, err
		}
	}
	switch format {
	case FormatPDF, FormatTIFF, FormatSVG, FormatEPUB, FormatCBZ, FormatXPS:
		// MuPDF picks its document handler by file name: give it one.
		named, cleanup, err := withExtension(path, format, lim.TempDir)
		if err != nil {
			return nil, err
		}
		d.cleanup = cleanup
		if lim.Isolation.Enabled {
			d.pdf, err = openChild(ctx, named, format, lim.Isolation)
		} else {
			d.pdf, err = openFitz(named, format)
		}
		if err != nil {
			cleanup()
			return nil, err
		}
		d.pages = d.pdf.numPages()
		if d.pages == 0 {
			d.release()
			return nil, failure.Validation("the %s has 0 pages: it is corrupt or truncated", format)
		}
	default:
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read image: %w", err)
		}
		d.img, err = openRaster(data, lim.MaxImagePixels)
		if err != nil {
			return nil, err
		}
		d.pages = 1
	}
	if lim.MaxPages > 0 && d.pages > lim.MaxPages {
		d.release()
		return nil, failure.Validation("the document has %d pages, more than MAX_PAGES=%d", d.pages, lim.MaxPages)
	}
	return d, nil
}

// Format returns the sniffed format.
func (d *Document) Format() Format { return d.format }

// Pages returns the page count (≥ 1).
func (d *Document) Pages() int { return d.pages }

// Close releases the document. It is safe to call more than once. Nothing
// in a document is written, so it always returns nil.
func (d *Document) Close() error {
	d.release()
	return nil
}

// release frees the renderer (MuPDF, or the child process) and removes what
// Open made next to the source.
func (d *Document) release() {
	if d.pdf != nil {
		d.pdf.close()
		d.pdf = nil
	}
	if d.cleanup != nil {
		d.cleanup()
		d.cleanup = nil
	}
	d.img = raster{}
}

// Render renders page n (1-based) at target t and encodes it as JPEG
// quality 90: 5–18× cheaper to encode than PNG on scans and no larger on
// born-digital pages at these sizes.
func (d *Document) Render(ctx context.Context, n int, t Target) (Page, error) {
	if n < 1 || n > d.pages {
		return Page{}, fmt.Errorf("render page %d of %d: out of range", n, d.pages)
	}
	if err := ctx.Err(); err != nil {
		return Page{}, err
	}
	var img image.Image
	var size Size
	if d.pdf != nil {
		rgba, sz, err := d.pdf.render(n-1, t)
		if err != nil {
			return Page{}, err
		}
		img, size = rgba, sz
	} else {
		fitted, err := d.img.fitted(t)
		if err != nil {
			return Page{}, err
		}
		img, size = fitted, d.img.size
	}
	p, err := Encode(img)
	p.WidthPt, p.HeightPt = size.W, size.H
	return p, err
}

// Size is a page's size in points.
type Size struct{ W, H float64 }

// PageHTML returns MuPDF's positioned HTML for page n (1-based) and the
// page size in points, for text-layer analysis. Raster images have no text
// layer: ok is false.
func (d *Document) PageHTML(ctx context.Context, n int) (html string, widthPt, heightPt float64, ok bool, err error) {
	if d.pdf == nil {
		return "", 0, 0, false, nil
	}
	if n < 1 || n > d.pages {
		return "", 0, 0, false, fmt.Errorf("page html %d of %d: out of range", n, d.pages)
	}
	if err := ctx.Err(); err != nil {
		return "", 0, 0, false, err
	}
	html, b, err := d.pdf.html(n - 1)
	if err != nil || html == "" {
		return "", 0, 0, false, err
	}
	return html, float64(b.Dx()), float64(b.Dy()), true, nil
}

// Encode encodes img as JPEG quality 90. A page with no colour (text,
// most scans) is encoded as one-channel grayscale, which is about three
// times cheaper than YCbCr and smaller.
func Encode(img image.Image) (Page, error) {
	switch m := img.(type) {
	case *image.RGBA:
		if g := grayOf(m); g != nil {
			img = g
		}
	case *image.YCbCr:
		if colourless(m) {
			img = &image.Gray{Pix: m.Y, Stride: m.YStride, Rect: m.Rect}
		}
	}
	data, err := encodeJPEG(img, jpegQuality)
	if err != nil {
		return Page{}, fmt.Errorf("encode page: %w", err)
	}
	b := img.Bounds()
	return Page{Data: data, MIME: "image/jpeg", Width: b.Dx(), Height: b.Dy()}, nil
}

// fit scales a raster image down so its long side fits t (never up), and
// turns it upright when it carries an EXIF orientation.
func fit(src image.Image, t Target) image.Image {
	if o, ok := src.(oriented); ok {
		return orient(fit(o.Image, t), o.orientation)
	}
	limit := longSide(t)
	b := src.Bounds()
	long := max(b.Dx(), b.Dy())
	if long <= limit {
		return src
	}
	scale := float64(limit) / float64(long)
	w := max(1, int(float64(b.Dx())*scale+0.5))
	h := max(1, int(float64(b.Dy())*scale+0.5))
	return shrink(src, w, h)
}

// longSide is the most pixels t allows on a page image's long side.
func longSide(t Target) int {
	if t.LongSide > 0 && t.LongSide < MaxLongSide {
		return t.LongSide
	}
	return MaxLongSide
}

// grayOf returns rgba as *image.Gray if every pixel is gray (r == g == b),
// else nil. One pass: it converts while checking and stops at the first
// coloured pixel.
func grayOf(rgba *image.RGBA) *image.Gray {
	b := rgba.Bounds()
	w, h := b.Dx(), b.Dy()
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		row := rgba.Pix[y*rgba.Stride : y*rgba.Stride+w*4]
		dst := g.Pix[y*g.Stride : y*g.Stride+w]
		for x := range dst {
			p := row[x*4 : x*4+3 : x*4+3]
			if p[0] != p[1] || p[0] != p[2] {
				return nil
			}
			dst[x] = p[0]
		}
	}
	return g
}

// colourless reports whether a YCbCr image has no colour: every chroma
// sample neutral (a gray page saved as a colour JPEG). Its luma plane is
// then the gray image.
func colourless(m *image.YCbCr) bool {
	if m.Rect.Min != (image.Point{}) {
		return false
	}
	for _, plane := range [][]uint8{m.Cb, m.Cr} {
		for _, v := range plane {
			if v != 128 {
				return false
			}
		}
	}
	return true
}

// checkPDFEnd refuses a PDF without %%EOF near its end. MuPDF silently
// "repairs" a truncated file and renders the missing pages blank, which
// would turn a cut-off upload into a completed job of empty pages.
func checkPDFEnd(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open pdf: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: nothing is lost
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open pdf: %w", err)
	}
	const tail = 4096
	off := max(0, st.Size()-tail)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read pdf: %w", err)
	}
	if !bytes.Contains(buf, []byte("%%EOF")) {
		return failure.Validation("the pdf is truncated or damaged: it does not end with %%%%EOF")
	}
	return nil
}

// withExtension returns a name for path that ends in format's extension (a
// symbolic link in a fresh directory under tempDir when path has another
// name) and the function that removes it.
func withExtension(path string, format Format, tempDir string) (string, func(), error) {
	ext := "." + string(format)
	if strings.EqualFold(filepath.Ext(path), ext) {
		return path, func() {}, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, fmt.Errorf("open %s: %w", format, err)
	}
	dir, err := os.MkdirTemp(tempDir, "ocrflow-open-")
	if err != nil {
		return "", nil, fmt.Errorf("open %s: %w", format, err)
	}
	link := filepath.Join(dir, "document"+ext)
	if err := os.Symlink(abs, link); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("open %s: %w", format, err)
	}
	return link, func() { os.RemoveAll(dir) }, nil
}

// zipFormat tells the zip packages MuPDF renders apart: an XPS document
// (it has a FixedDocumentSequence part, *.fdseq, which OpenXPS keeps) or a
// comic-book archive (nothing but images, one page each). Anything else,
// including an unreadable zip, gives "".
func zipFormat(path string) Format {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return ""
	}
	defer func() { _ = zr.Close() }() // read-only: nothing is lost
	images, other := 0, 0
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		switch strings.ToLower(filepath.Ext(f.Name)) {
		case ".fdseq":
			return FormatXPS
		case ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff":
			images++
		default:
			other++
		}
	}
	if images > 0 && other == 0 {
		return FormatCBZ
	}
	return ""
}
