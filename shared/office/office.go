// Package office turns Office Open XML documents (DOCX, PPTX, XLSX) into
// markdown pages without OCR.
//
// DOCX and PPTX are read with the standard library only (archive/zip plus
// streaming encoding/xml tokens), XLSX cell values with excelize. This is
// exact and takes 2–24 ms per file, against 1–1.6 s for a LibreOffice
// render (BenchmarkExtract; docs/performance.md).
//
// Every file is treated as hostile: the zip container is checked before any
// part is read (entry count, entry names, declared sizes), every part is
// read through a byte budget, and XML is decoded token by token so no part
// is ever held whole in memory. encoding/xml expands no DTD or custom
// entities, so entity bombs cannot happen either. Input problems surface as
// errors wrapping failure.ErrValidation with a message a user can act on.
package office

import (
	"context"
	"fmt"
	"mime"
	"regexp"
	"strings"
	"unicode"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// Kind is the OOXML flavour of a file: DOCX, PPTX or XLSX.
type Kind string

// The supported kinds.
const (
	// DOCX is a WordprocessingML document (.docx, .docm, .dotx, .dotm).
	DOCX Kind = "docx"
	// PPTX is a PresentationML deck (.pptx, .pptm, .ppsx, .potx).
	PPTX Kind = "pptx"
	// XLSX is a SpreadsheetML workbook (.xlsx, .xlsm, .xltx).
	XLSX Kind = "xlsx"
)

// Default limits, used for a Limits field that is zero or negative.
const (
	// DefaultMaxEntries caps the number of zip entries.
	DefaultMaxEntries = 10_000
	// DefaultMaxUncompressed caps the total uncompressed bytes (512 MiB).
	DefaultMaxUncompressed int64 = 512 << 20
	// DefaultMaxSheetCells caps the cells of one sheet's table.
	DefaultMaxSheetCells = 1_000_000
)

// Image thresholds: smaller pictures (icons, bullets, rules, logos) carry
// no text worth a GPU call and are dropped without a placeholder.
const (
	// MinImageBytes is the smallest encoded image kept.
	MinImageBytes = 1024
	// MinImageSide is the side of the smallest square image kept: an image
	// needs at least MinImageSide×MinImageSide pixels in all, and no side
	// under MinImageSide/4, so a wide strip of text (600×40) still counts.
	MinImageSide = 64
)

// Limits guard against hostile archives. A zero or negative field takes
// its Default… value.
type Limits struct {
	// MaxEntries caps the number of zip entries (default 10_000).
	MaxEntries int
	// MaxUncompressed caps the total uncompressed bytes: the sum of the
	// sizes the entries declare, and the bytes actually read (default
	// 512 MiB).
	MaxUncompressed int64
	// MaxSheetCells caps the rows × columns of one sheet's table after
	// trimming empty edges (default 1_000_000).
	MaxSheetCells int
}

// withDefaults returns l with every unset field at its default.
func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxUncompressed <= 0 {
		l.MaxUncompressed = DefaultMaxUncompressed
	}
	if l.MaxSheetCells <= 0 {
		l.MaxSheetCells = DefaultMaxSheetCells
	}
	return l
}

// Page is one markdown page of a document.
//
// A DOCX is split into pages at explicit page breaks: w:br w:type="page",
// w:pageBreakBefore, and section breaks whose following section starts on a
// new page (w:type nextPage, oddPage, evenPage, or absent, which the
// standard defines as nextPage). w:lastRenderedPageBreak only records where
// the last layout happened to break and is ignored. Pages left empty are
// dropped; a document always gives at least one page.
//
// A PPTX gives one page per slide in presentation order: the title as
// "# …", then the other text frames, tables and pictures in shape order,
// then the speaker notes as a "> Notes:" blockquote.
//
// An XLSX gives one page per sheet in workbook order: "# <sheet name>"
// (with " (hidden)" for hidden sheets), a markdown table whose first
// non-empty row is the header, formulas as their cached formatted values,
// then the sheet's pictures.
type Page struct {
	// Markdown is the page text. It has no trailing newline. An embedded
	// picture appears as a line "<!-- image: NAME -->" where it occurs (in a
	// table cell for pictures inside cells).
	Markdown string
	// Images are the embedded raster pictures of the page that are large
	// enough to be worth OCR (see MinImageBytes, MinImageSide), each once,
	// in order of first appearance, so the caller can OCR them and put
	// their text in place of the matching placeholder.
	Images []Image
}

// Image is an embedded picture.
type Image struct {
	// Name is the base name of the picture's part, e.g. "image1.png"; it is
	// the NAME in the page's "<!-- image: NAME -->" placeholder.
	Name string
	// MIME is sniffed from the bytes: image/png, image/jpeg, image/gif,
	// image/bmp, image/tiff or image/webp.
	MIME string
	// Data is the raw encoded picture.
	Data []byte
	// Width and Height are the pixel size from the image header.
	Width, Height int
}

// Extract reads the file at path as kind and returns its pages.
//
// A damaged or non-OOXML file, an entry name that could escape a directory
// ("..", a leading "/", a backslash, a drive letter) or an exceeded limit
// gives an error wrapping failure.ErrValidation whose message names the
// problem, e.g. "the docx expands to more than 512 MiB (zip bomb guard)".
// A cancelled ctx gives ctx's error; other I/O errors are unclassified.
// Extract is safe for concurrent use.
func Extract(ctx context.Context, path string, kind Kind, lim Limits) ([]Page, error) {
	lim = lim.withDefaults()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch kind {
	case DOCX, PPTX:
		a, err := openArchive(ctx, path, kind, lim)
		if err != nil {
			return nil, err
		}
		defer a.close()
		if kind == DOCX {
			return extractDOCX(a)
		}
		return extractPPTX(a)
	case XLSX:
		return extractXLSX(ctx, path, lim)
	default:
		return nil, failure.Validation("office kind %q is not supported (want docx, pptx or xlsx)", kind)
	}
}

// mimeKinds maps OOXML media types, including the macro-enabled, template
// and show variants that share the same package layout, to their Kind.
var mimeKinds = map[string]Kind{
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   DOCX,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.template":   DOCX,
	"application/vnd.ms-word.document.macroenabled.12":                          DOCX,
	"application/vnd.ms-word.template.macroenabled.12":                          DOCX,
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": PPTX,
	"application/vnd.openxmlformats-officedocument.presentationml.slideshow":    PPTX,
	"application/vnd.openxmlformats-officedocument.presentationml.template":     PPTX,
	"application/vnd.ms-powerpoint.presentation.macroenabled.12":                PPTX,
	"application/vnd.ms-powerpoint.slideshow.macroenabled.12":                   PPTX,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         XLSX,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.template":      XLSX,
	"application/vnd.ms-excel.sheet.macroenabled.12":                            XLSX,
	"application/vnd.ms-excel.template.macroenabled.12":                         XLSX,
}

// KindOf maps an OOXML MIME type (parameters and case ignored) to its Kind,
// reporting false for anything else, including the legacy binary formats.
func KindOf(mimeType string) (Kind, bool) {
	mt, _, err := mime.ParseMediaType(mimeType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(mimeType))
	}
	k, ok := mimeKinds[mt]
	return k, ok
}

// sizeText renders a byte count for messages: "512 MiB", "64 KiB", "100 bytes".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// Mode says how office documents are read (OFFICE_MODE).
type Mode string

// The office modes.
const (
	// ModeNative extracts DOCX/PPTX/XLSX text natively and OCRs only the
	// embedded pictures; legacy and OpenDocument files are refused.
	ModeNative Mode = "native"
	// ModeRender converts every office document to PDF with LibreOffice
	// and sends it through the PDF path (layout-faithful OCR).
	ModeRender Mode = "render"
	// ModeAuto extracts natively, but renders through LibreOffice the
	// documents that are mostly pictures (see MostlyImages) and the legacy
	// and OpenDocument files, when LibreOffice is installed.
	ModeAuto Mode = "auto"
)

// ParseMode parses an OFFICE_MODE value (case and surrounding space
// ignored).
func ParseMode(s string) (Mode, bool) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeNative, ModeRender, ModeAuto:
		return m, true
	}
	return "", false
}

// placeholderLine matches a picture placeholder in page markdown.
var placeholderLine = regexp.MustCompile(`<!-- image: [^>]* -->`)

// imageLedText is the most letters a page may hold and still count as led
// by its pictures: a caption or a title, not a body of text.
const imageLedText = 200

// MostlyImages reports whether more than half of the pages are led by
// pictures: each holds at least one picture worth OCR and fewer than 200
// letters and digits of text. Such a document (a scan pasted into Word, a
// deck of screenshots) reads better rendered whole than as text with
// pictures cut out of their layout.
func MostlyImages(pages []Page) bool {
	led := 0
	for _, p := range pages {
		if len(p.Images) == 0 {
			continue
		}
		letters := 0
		for _, r := range placeholderLine.ReplaceAllString(p.Markdown, "") {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				letters++
			}
		}
		if letters < imageLedText {
			led++
		}
	}
	return 2*led > len(pages)
}
