// Package docgen writes the documents the performance measurements run
// on, deterministically and of any length: born-digital PDFs (a text
// layer, Helvetica), scanned PDFs (one grayscale JPEG per page, no text
// layer) and single page photos (JPEG or PNG, colour or gray).
//
// Long documents are written page by page to an io.Writer, so a
// 3,000-page PDF never sits in memory. The page pictures of a scanned PDF
// come from a few rendered and degraded pages, repeated as separate image
// objects, so every page is decoded on its own when the PDF is read.
package docgen

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"

	fitz "github.com/gen2brain/go-fitz"
)

// Kind is the kind of document Write makes.
type Kind string

// Kinds of documents.
const (
	// BornDigital is a PDF with a text layer: every page typeset text.
	BornDigital Kind = "born-digital"
	// Scanned is an image-only PDF of grayscale JPEG pages at 150 dpi
	// (1240×1754), each a rendered text page with scanner noise.
	Scanned Kind = "scanned"
)

// A4 in points, and the resolution scanned pages are made at.
const (
	a4W     = 595.0
	a4H     = 842.0
	scanDPI = 150.0
	// variants is how many distinct page pictures a scanned PDF cycles
	// through.
	variants = 6
)

// Write writes a PDF of kind with pages pages to w.
func Write(w io.Writer, kind Kind, pages int) error {
	switch kind {
	case BornDigital:
		return bornDigital(w, 1, pages)
	case Scanned:
		return scanned(w, pages)
	}
	return fmt.Errorf("docgen: unknown kind %q", kind)
}

// File writes a PDF of kind with pages pages into dir (named after both,
// e.g. scanned-500.pdf) unless it is there already, and returns its path.
// Generated files are deterministic, so a file left by an earlier run is
// the same file.
func File(dir string, kind Kind, pages int) (string, error) {
	p := filepath.Join(dir, fmt.Sprintf("%s-%d.pdf", kind, pages))
	return p, once(p, func(w io.Writer) error { return Write(w, kind, pages) })
}

// Photo is a single page image Photos writes.
type Photo struct {
	// Name is the file name (page-color.jpg, page-gray.png…).
	Name string
	// Gray is true for a one-channel image.
	Gray bool
}

// PhotoW and PhotoH are the size of a photographed page (a phone camera
// or a 150 dpi scanner on a slightly larger sheet).
const (
	PhotoW = 1265
	PhotoH = 1772
)

// Photos are the page images PhotoFile writes: a colour and a gray JPEG,
// a colour and a gray PNG.
var Photos = []Photo{
	{Name: "photo-color.jpg"}, {Name: "photo-gray.jpg", Gray: true},
	{Name: "photo-color.png"}, {Name: "photo-gray.png", Gray: true},
}

// PhotoFile writes photo ph (PhotoW×PhotoH) into dir unless it is there
// already and returns its path.
func PhotoFile(dir string, ph Photo) (string, error) {
	p := filepath.Join(dir, ph.Name)
	return p, once(p, func(w io.Writer) error { return writePhoto(w, ph) })
}

// once writes path with write unless it exists, through a temporary
// file, so a half-written file is never taken for a finished one.
func once(path string, write func(io.Writer) error) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("docgen: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".docgen-*")
	if err != nil {
		return fmt.Errorf("docgen: %w", err)
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriterSize(f, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("docgen %s: %w", filepath.Base(path), err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("docgen: %w", err)
	}
	return os.Rename(f.Name(), path)
}

// pdfWriter writes a PDF's objects in order, remembering their offsets
// for the cross-reference table.
type pdfWriter struct {
	w       io.Writer
	n       int64
	offsets []int64
	err     error
}

func (p *pdfWriter) write(b []byte) {
	if p.err != nil {
		return
	}
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.err = err
}

func (p *pdfWriter) printf(format string, args ...any) { p.write(fmt.Appendf(nil, format, args...)) }

// obj writes the next object.
func (p *pdfWriter) obj(body string) {
	p.offsets = append(p.offsets, p.n)
	p.printf("%d 0 obj\n%s\nendobj\n", len(p.offsets), body)
}

// stream writes the next object as a stream; dict holds its entries
// besides /Length.
func (p *pdfWriter) stream(dict string, data []byte) {
	p.offsets = append(p.offsets, p.n)
	p.printf("%d 0 obj\n<< %s/Length %d >>\nstream\n", len(p.offsets), dict, len(data))
	p.write(data)
	p.write([]byte("\nendstream\nendobj\n"))
}

// finish writes the cross-reference table and the trailer (object 1 is
// the catalog).
func (p *pdfWriter) finish() error {
	xref := p.n
	p.printf("xref\n0 %d\n0000000000 65535 f \n", len(p.offsets)+1)
	for _, o := range p.offsets {
		p.printf("%010d 00000 n \n", o)
	}
	p.printf("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(p.offsets)+1, xref)
	return p.err
}

func newPDF(w io.Writer) *pdfWriter {
	p := &pdfWriter{w: w}
	p.write([]byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"))
	return p
}

func kids(first, step, count int) string {
	var b strings.Builder
	for i := range count {
		fmt.Fprintf(&b, "%d 0 R ", first+i*step)
	}
	return b.String()
}

// bornDigital writes pages pages of typeset text, the first with the text
// of page first. Objects: 1 catalog, 2 pages, 3 Helvetica, 4
// Helvetica-Bold, then a page and its content stream per page.
func bornDigital(w io.Writer, first, pages int) error {
	p := newPDF(w)
	p.obj("<< /Type /Catalog /Pages 2 0 R >>")
	p.obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids(5, 2, pages), pages))
	p.obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	p.obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
	for i := range pages {
		p.obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] "+
			"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>", a4W, a4H, 6+2*i))
		p.stream("", textPage(first+i))
	}
	return p.finish()
}

// words is the vocabulary of the generated text.
var words = strings.Fields(`the of and to in a is that for it as was with be by on not he this are or his
from at which but have an they you were her she there had been one all we their has would when if so no
what more out up into do will its about some can time only new could them other than then now
document page scanner archive report invoice contract section table figure result value number
pipeline recognition engine market quarterly revenue customer account balance payment summary`)

// textPage is the content stream of born-digital page n: a heading and
// about 45 lines of 11 pt text, different on every page.
func textPage(n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 20261206))
	var b bytes.Buffer
	b.WriteString("BT\n")
	fmt.Fprintf(&b, "/F2 18 Tf\n1 0 0 1 72 752 Tm\n(Section %d: %s %s) Tj\n", n, words[rng.IntN(len(words))], words[rng.IntN(len(words))])
	y := 720.0
	for y > 80 {
		var line strings.Builder
		for line.Len() < 80 {
			if line.Len() > 0 {
				line.WriteByte(' ')
			}
			line.WriteString(words[rng.IntN(len(words))])
		}
		fmt.Fprintf(&b, "/F1 11 Tf\n1 0 0 1 72 %g Tm\n(%s) Tj\n", y, line.String())
		y -= 14
		if rng.IntN(8) == 0 {
			y -= 8 // a paragraph break
		}
	}
	b.WriteString("ET")
	return b.Bytes()
}

// scanned writes pages image-only pages. Objects: 1 catalog, 2 pages,
// then a page, its content stream and its image per page.
func scanned(w io.Writer, pages int) error {
	scans, err := scans()
	if err != nil {
		return err
	}
	p := newPDF(w)
	p.obj("<< /Type /Catalog /Pages 2 0 R >>")
	p.obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids(3, 3, pages), pages))
	draw := fmt.Appendf(nil, "q %g 0 0 %g 0 0 cm /Im0 Do Q", a4W, a4H)
	for i := range pages {
		s := scans[i%len(scans)]
		p.obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] "+
			"/Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>", a4W, a4H, 5+3*i, 4+3*i))
		p.stream("", draw)
		p.stream(fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d "+
			"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode ", s.w, s.h), s.jpeg)
	}
	return p.finish()
}

type scan struct {
	jpeg []byte
	w, h int
}

var (
	scansOnce sync.Once
	scanPages []scan
	scansErr  error
)

// scans returns the page pictures of scanned PDFs: born-digital pages
// rendered at 150 dpi in gray, with noise, as JPEG quality 60.
func scans() ([]scan, error) {
	scansOnce.Do(func() {
		for i := range variants {
			g, err := renderPage(i+1, scanDPI)
			if err != nil {
				scansErr = err
				return
			}
			noise(g.Pix, rand.New(rand.NewPCG(uint64(i), 7)))
			var b bytes.Buffer
			if err := jpeg.Encode(&b, g, &jpeg.Options{Quality: 60}); err != nil {
				scansErr = err
				return
			}
			scanPages = append(scanPages, scan{jpeg: b.Bytes(), w: g.Rect.Dx(), h: g.Rect.Dy()})
		}
	})
	return scanPages, scansErr
}

// fitzMu serialises go-fitz, which must not be used from several
// goroutines at once.
var fitzMu sync.Mutex

// renderPage renders born-digital page n at dpi in gray.
func renderPage(n int, dpi float64) (*image.Gray, error) {
	var pdf bytes.Buffer
	if err := bornDigital(&pdf, n, 1); err != nil {
		return nil, err
	}
	fitzMu.Lock()
	defer fitzMu.Unlock()
	doc, err := fitz.NewFromMemory(pdf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("docgen: render: %w", err)
	}
	defer func() { _ = doc.Close() }() // go-fitz's Close frees C memory and always returns nil
	rgba, err := doc.ImageDPI(0, dpi)
	if err != nil {
		return nil, fmt.Errorf("docgen: render: %w", err)
	}
	b := rgba.Bounds()
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		src := rgba.Pix[y*rgba.Stride:]
		for x := range b.Dx() {
			r, gr, bl := int(src[4*x]), int(src[4*x+1]), int(src[4*x+2])
			g.Pix[y*g.Stride+x] = uint8((299*r + 587*gr + 114*bl + 500) / 1000)
		}
	}
	return g, nil
}

// noise perturbs one pixel in 400 by up to ±10 levels and greys the
// paper slightly, as a scanner does.
func noise(pix []uint8, rng *rand.Rand) {
	for i, v := range pix {
		if v > 250 {
			v = 246
		}
		if rng.IntN(400) == 0 {
			v = uint8(min(255, max(0, int(v)+rng.IntN(21)-10)))
		}
		pix[i] = v
	}
}

// writePhoto writes a PhotoW×PhotoH picture of a text page: gray, or
// colour with a warm paper tone and colour noise (a phone photo).
func writePhoto(w io.Writer, ph Photo) error {
	// The page rendered so that it covers PhotoW×PhotoH.
	g, err := renderPage(1, float64(PhotoH)*72/a4H+0.5)
	if err != nil {
		return err
	}
	rect := image.Rect(0, 0, PhotoW, PhotoH)
	rng := rand.New(rand.NewPCG(3, 11))
	var img image.Image
	if ph.Gray {
		out := image.NewGray(rect)
		for y := range PhotoH {
			for x := range PhotoW {
				out.Pix[y*out.Stride+x] = at(g, x, y)
			}
		}
		noise(out.Pix, rng)
		img = out
	} else {
		out := image.NewRGBA(rect)
		for y := range PhotoH {
			for x := range PhotoW {
				v := int(at(g, x, y))
				// light falls off towards the bottom right
				shade := 1 - 0.12*float64(x+y)/float64(PhotoW+PhotoH)
				n := rng.IntN(13) - 6
				c := func(k float64) uint8 { return uint8(min(255, max(0, int(float64(v)*k*shade)+n))) }
				out.SetRGBA(x, y, color.RGBA{R: c(1), G: c(0.96), B: c(0.88), A: 255})
			}
		}
		img = out
	}
	if strings.HasSuffix(ph.Name, ".png") {
		return png.Encode(w, img)
	}
	return jpeg.Encode(w, img, &jpeg.Options{Quality: 85})
}

// at is g's pixel at (x, y), white outside it.
func at(g *image.Gray, x, y int) uint8 {
	if !(image.Point{X: x, Y: y}).In(g.Rect) {
		return 255
	}
	return g.Pix[y*g.Stride+x]
}
