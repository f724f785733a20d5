// Package searchpdf writes the searchable PDF of a job: every page as the
// source shows it — the source PDF's own page imported unchanged, or the
// page's picture — with the recognized text laid over it invisibly (text
// rendering mode 3), line by line where the layout put it, so that
// selecting, searching and pdftotext work in any viewer.
//
// The writer is codeberg.org/go-pdf/fpdf (MIT, pure Go) with
// github.com/phpdave11/gofpdi (MIT), which imports the pages of an
// existing PDF as form XObjects: a scan keeps its own image resolution, a
// born-digital page its own vector text. The pages to import are imported
// together up front (gofpdi's per-page import, as fpdf's contrib wrapper
// does it, writes every template again for each page). The invisible text is set in
// DejaVu Sans (embedded, subset, with a ToUnicode map), which covers
// Latin, Greek and Cyrillic scripts and more. No cgo is involved, so the
// nomupdf build writes the same PDFs.
package searchpdf

import (
	"bytes"
	_ "embed" // the invisible text's font
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"codeberg.org/go-pdf/fpdf"
	"github.com/phpdave11/gofpdi"

	"github.com/ocrflow/ocrflow/shared/document"
)

//go:embed font/DejaVuSans.ttf
var dejaVuSans []byte

// fontName is the invisible text's font family in the PDF.
const fontName = "DejaVuSans"

// DejaVu Sans's vertical metrics (hhea, in em): a line of text at size s
// spans ascent·s above its baseline and descent·s below.
const (
	ascent  = 0.928
	descent = 0.236
)

// Line is a line of recognized text and its box in the page's layout
// points (origin top-left).
type Line struct {
	Box  document.Box
	Text string
}

// Page is one page of the searchable PDF.
type Page struct {
	// Number is the page's number (in the source PDF, when there is one).
	Number int
	// WidthPt and HeightPt are the page's size in the layout's points:
	// what the lines' boxes are relative to. For an imported page the
	// boxes are scaled onto the imported page's own size.
	WidthPt, HeightPt float64
	// Image returns the page's picture (any format render decodes), drawn
	// over the whole page when the page is not imported; nil when it has
	// none. It is called only when needed.
	Image func() ([]byte, error)
	// Lines is the text to lay over the page, in reading order.
	Lines []Line
	// OwnText says the page's text is its own (a born-digital page): an
	// imported page keeps it and gets no text laid over it; a page that
	// cannot be imported and has no picture shows Lines visibly instead.
	OwnText bool
}

// Pages yields the pages of the PDF in order to fn; it may be called more
// than once (Write starts again without imports when the source PDF
// cannot be imported).
type Pages func(fn func(Page) error) error

// Report says how the PDF was made.
type Report struct {
	// Pages is the page count; Imported, FromImages and VisibleText count
	// the pages made each way (a page with neither is blank).
	Pages, Imported, FromImages, VisibleText int
	// ImportFailed is why the source PDF's pages could not be imported
	// ("" when they were, or none were asked for): its pages were drawn
	// from their pictures instead.
	ImportFailed string
}

// Options set the document's metadata.
type Options struct {
	// Created is its creation date (the job's start: the same job makes
	// the same bytes).
	Created time.Time
	// Title names the source.
	Title string
	// ImportTimeout bounds reading the source PDF with gofpdi
	// (DefaultImportTimeout when 0).
	ImportTimeout time.Duration
}

// DefaultImportTimeout is the default Options.ImportTimeout.
const DefaultImportTimeout = time.Minute

// Source is the source PDF of a searchable PDF.
type Source struct {
	// Path is the PDF's file ("" when the source is no PDF).
	Path string
	// Sizes maps its pages to their size in the layout's points, rotation
	// applied. A page whose MediaBox, turned by its rotation, is that size
	// (within 1.5 pt: MuPDF states whole points) takes the MediaBox's
	// exact size; a page whose MediaBox is another (a CropBox made the
	// difference, say) is never imported: the layout's boxes would not fit
	// it.
	Sizes map[int][2]float64
	// Import names the pages drawn by importing the source's page. Only a
	// page with the first page's MediaBox is imported (gofpdi takes every
	// page's box from the first page); any other is drawn from its
	// picture.
	Import map[int]bool
}

// Write writes the searchable PDF of pages to w, drawn from src where it
// says so. When the source PDF cannot be imported at all (gofpdi cannot
// parse it), every page is made again from its picture, or from its text
// shown visibly, and the report says why.
func Write(w io.Writer, src Source, pages Pages, opt Options) (Report, error) {
	pdf, rep, err := build(src, pages, opt)
	var ie *importError
	if errors.As(err, &ie) {
		pdf, rep, err = build(Source{}, pages, opt)
		rep.ImportFailed = ie.Error()
	}
	if err != nil {
		return rep, err
	}
	if err := pdf.Output(w); err != nil {
		return rep, fmt.Errorf("write pdf: %w", err)
	}
	return rep, nil
}

// importError is a source PDF gofpdi cannot import.
type importError struct{ cause any }

func (e *importError) Error() string {
	return fmt.Sprintf("the source PDF cannot be imported: %v", e.cause)
}

// build makes the document, drawn from src where it says so.
func build(src Source, pages Pages, opt Options) (*fpdf.Fpdf, Report, error) {
	pdf := fpdf.NewCustom(&fpdf.InitType{UnitStr: "pt", Size: fpdf.SizeType{Wd: 612, Ht: 792}})
	pdf.SetAutoPageBreak(false, 0)
	pdf.SetMargins(0, 0, 0)
	pdf.SetCompression(true)
	pdf.SetCreator("ocrflow", true)
	pdf.SetProducer("ocrflow (codeberg.org/go-pdf/fpdf)", true)
	if opt.Title != "" {
		pdf.SetTitle(opt.Title, true)
	}
	if !opt.Created.IsZero() {
		pdf.SetCreationDate(opt.Created.UTC())
		pdf.SetModificationDate(opt.Created.UTC())
	}
	pdf.AddUTF8FontFromBytes(fontName, "", dejaVuSans)
	if err := pdf.Error(); err != nil {
		return nil, Report{}, fmt.Errorf("font: %w", err)
	}
	d := &doc{pdf: pdf, src: src.Path, tpls: map[int]int{}}
	if src.Path != "" && len(src.Sizes) > 0 {
		timeout := opt.ImportTimeout
		if timeout <= 0 {
			timeout = DefaultImportTimeout
		}
		if err := d.importPages(src, timeout); err != nil {
			return nil, Report{}, err
		}
	}
	err := pages(d.page)
	if err != nil {
		return nil, d.rep, err
	}
	if err := pdf.Error(); err != nil {
		return nil, d.rep, fmt.Errorf("pdf: %w", err)
	}
	return pdf, d.rep, nil
}

// doc is a document being built.
type doc struct {
	pdf *fpdf.Fpdf
	imp *gofpdi.Importer
	src string
	// tpls are the imported pages' templates by page number; sizes the
	// source's exact page sizes (MediaBox, rotation applied) where they
	// fit the layout's.
	tpls  map[int]int
	sizes map[int][2]float64
	rep   Report
	n     int // images registered
}

// importPages reads the source PDF's page sizes and imports the pages it
// says to as templates, all at once (see Source for which can be). What
// gofpdi cannot parse is an importError: it panics on some damage, and
// loops forever on other — so the file's trailer is checked first, and the
// parse runs under a deadline (ImportTimeout) after which the PDF is drawn
// from its pictures (the parse is left behind: gofpdi cannot be stopped).
func (d *doc) importPages(src Source, timeout time.Duration) error {
	if err := trailer(d.src); err != nil {
		return &importError{cause: err}
	}
	type parsed struct {
		imp   *gofpdi.Importer
		tpls  map[int]int
		sizes map[int][2]float64
		err   error
	}
	done := make(chan parsed, 1)
	go func() {
		var p parsed
		defer func() {
			if r := recover(); r != nil {
				p.err = &importError{cause: r}
			}
			done <- p
		}()
		p.imp, p.tpls, p.sizes = parse(src)
	}()
	var p parsed
	select {
	case p = <-done:
	case <-time.After(timeout):
		return &importError{cause: fmt.Sprintf("gofpdi did not finish reading it in %s", timeout)}
	}
	if p.err != nil {
		return p.err
	}
	d.imp, d.tpls, d.sizes = p.imp, p.tpls, p.sizes
	if len(d.tpls) == 0 {
		return nil
	}
	return d.put()
}

// put adds the imported templates to the document.
func (d *doc) put() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &importError{cause: r}
		}
	}()
	d.pdf.ImportTemplates(d.imp.PutFormXobjectsUnordered())
	d.pdf.ImportObjects(d.imp.GetImportedObjectsUnordered())
	d.pdf.ImportObjPos(d.imp.GetImportedObjHashPos())
	return nil
}

// parse reads src with gofpdi: the exact sizes of its pages that fit the
// layout's, and the templates of those to import (see Source). It panics
// on what gofpdi cannot parse.
func parse(src Source) (*gofpdi.Importer, map[int]int, map[int][2]float64) {
	imp := gofpdi.NewImporter()
	imp.SetSourceFile(src.Path)
	boxes := map[int][2]float64{}
	for n, bs := range imp.GetPageSizes() {
		b := bs["/MediaBox"]
		boxes[n] = [2]float64{b["w"], b["h"]}
	}
	first, ok := boxes[1]
	if !ok {
		panic("the PDF has no first page")
	}
	pages := make([]int, 0, len(src.Sizes))
	for n := range src.Sizes {
		pages = append(pages, n)
	}
	slices.Sort(pages) // templates in page order
	tpls, sizes := map[int]int{}, map[int][2]float64{}
	for _, n := range pages {
		box, ok := boxes[n]
		if !ok {
			continue
		}
		want := src.Sizes[n]
		switch {
		case want == [2]float64{} || near(box, want):
			sizes[n] = box
		case near([2]float64{box[1], box[0]}, want): // /Rotate 90 or 270
			sizes[n] = [2]float64{box[1], box[0]}
		default:
			continue
		}
		if src.Import[n] && near(box, first) {
			tpls[n] = imp.ImportPage(n, "/MediaBox")
		}
	}
	return imp, tpls, sizes
}

// trailer checks what gofpdi needs to find a PDF's cross-reference table
// — "startxref" and an offset inside the file in its last 1500 bytes —
// without which it reads on forever.
func trailer(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read only: nothing is lost
	st, err := f.Stat()
	if err != nil {
		return err
	}
	n := min(st.Size(), 1500)
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, st.Size()-n); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	m := startxref.FindSubmatch(tail)
	if m == nil {
		return errors.New("it has no startxref")
	}
	off, err := strconv.ParseInt(string(m[1]), 10, 64)
	if err != nil || off <= 0 || off >= st.Size() {
		return fmt.Errorf("its startxref %q is outside the file", m[1])
	}
	return nil
}

var startxref = regexp.MustCompile(`startxref\s+(\d+)`)

// near reports whether two page sizes agree within 1.5 pt (MuPDF states
// whole points).
func near(a, b [2]float64) bool { return math.Abs(a[0]-b[0]) <= 1.5 && math.Abs(a[1]-b[1]) <= 1.5 }

// page adds one page.
func (d *doc) page(p Page) error {
	w, h := p.WidthPt, p.HeightPt
	sx, sy := 1.0, 1.0
	_, imported := d.tpls[p.Number]
	if size, ok := d.sizes[p.Number]; ok {
		// The source's exact size; the layout's boxes are scaled onto it.
		if w > 0 && h > 0 {
			sx, sy = size[0]/w, size[1]/h
		}
		w, h = size[0], size[1]
	}
	switch {
	case imported:
		d.pdf.AddPageFormat("P", fpdf.SizeType{Wd: w, Ht: h})
		if err := d.use(p.Number, w, h); err != nil {
			return err
		}
		d.rep.Imported++
		if p.OwnText {
			p.Lines = nil // the page's own text is there already
		}
	case p.Image != nil && w > 0 && h > 0:
		img, err := p.Image()
		if err != nil {
			return fmt.Errorf("page %d picture: %w", p.Number, err)
		}
		d.pdf.AddPageFormat("P", fpdf.SizeType{Wd: w, Ht: h})
		if err := d.image(p.Number, img, w, h); err != nil {
			return err
		}
		d.rep.FromImages++
		p.OwnText = false // the picture shows the text: the layer stays invisible
	default:
		if w <= 0 || h <= 0 {
			w, h = 612, 792 // no geometry at all: a US Letter page
		}
		d.pdf.AddPageFormat("P", fpdf.SizeType{Wd: w, Ht: h})
		if p.OwnText && len(p.Lines) > 0 {
			d.rep.VisibleText++
		}
	}
	d.rep.Pages++
	d.text(p.Lines, sx, sy, !p.OwnText)
	if err := d.pdf.Error(); err != nil {
		return fmt.Errorf("page %d: %w", p.Number, err)
	}
	return nil
}

// use draws page n of the source PDF over the whole w×h page.
func (d *doc) use(n int, w, h float64) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &importError{cause: r}
		}
	}()
	name, sx, sy, tx, ty := d.imp.UseTemplate(d.tpls[n], 0, 0, w, h)
	d.pdf.UseImportedTemplate(name, sx, sy, tx, ty)
	return nil
}

// image draws page n's picture over the whole w×h page.
func (d *doc) image(n int, picture []byte, w, h float64) error {
	data, typ, err := pdfImage(picture)
	if err != nil {
		return fmt.Errorf("page %d picture: %w", n, err)
	}
	d.n++
	name := fmt.Sprintf("page-%d-%d", n, d.n)
	opts := fpdf.ImageOptions{ImageType: typ, ReadDpi: false}
	d.pdf.RegisterImageOptionsReader(name, opts, bytes.NewReader(data))
	d.pdf.ImageOptions(name, 0, 0, w, h, false, opts, 0, "")
	return nil
}

// text sets lines over the page: invisible (rendering mode 3) or visible,
// one line per box, its baseline at the box's bottom less the font's
// descent and its size the box height less ascent and descent, so that
// the glyphs fill the box; each line is scaled horizontally to its box's
// width. sx, sy map the layout's points onto the page's.
func (d *doc) text(lines []Line, sx, sy float64, invisible bool) {
	if len(lines) == 0 {
		return
	}
	mode := 0
	if invisible {
		mode = 3
	}
	d.pdf.SetTextRenderingMode(mode)
	d.pdf.SetTextColor(0, 0, 0)
	for _, l := range lines {
		text := strings.TrimSpace(printable(l.Text))
		bw, bh := l.Box.Width()*sx, l.Box.Height()*sy
		if text == "" || bw <= 0 || bh <= 0 {
			continue
		}
		size := bh / (ascent + descent)
		d.pdf.SetFont(fontName, "", size)
		tw := d.pdf.GetStringWidth(text)
		if tw <= 0 {
			continue
		}
		x, y := l.Box[0]*sx, l.Box[3]*sy-descent*size
		d.pdf.TransformBegin()
		d.pdf.TransformScaleX(100*bw/tw, x, y)
		d.pdf.Text(x, y, text)
		d.pdf.TransformEnd()
	}
	d.pdf.SetTextRenderingMode(0)
}

// printable drops what the font cannot show and a PDF text string should
// not hold: control characters.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
