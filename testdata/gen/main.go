// Command gen writes the OCR sample files in testdata/.
//
// Run it from the repository root:
//
//	go run ./testdata/gen            # writes into ./testdata
//	go run ./testdata/gen -out DIR   # writes somewhere else
//
// Every output is deterministic: the PDFs carry no dates or IDs, the noise
// uses fixed seeds, and the generator is single-threaded (go-fitz must not be
// used from several goroutines at once). Re-running it must reproduce the
// files byte for byte on the same platform and MuPDF version.
//
// Outputs:
//
//	report.pdf    6-page born-digital A4 PDF with a real text layer
//	report.txt    the exact text of report.pdf
//	scanned.pdf   2-page image-only PDF (rendered, rotated, noisy JPEG pages)
//	scanned.txt   the text printed on the scanned pages
//	page.png      one rendered page, 8-bit grayscale PNG at 150 DPI
//	page.png.txt  its text
//	page.jpg      one rendered page, grayscale JPEG (q85) at 150 DPI with noise
//	page.jpg.txt  its text
//
// Text files hold, per page, the heading line, a blank line, then each
// paragraph on one line separated by blank lines; pages are separated by a
// line holding a single form feed character.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	fitz "github.com/gen2brain/go-fitz"
)

// page is one page of known text: a heading and its paragraphs.
type page struct {
	heading string
	paras   []string
}

// layout describes how a born-digital page is typeset.
type layout struct {
	width, height float64 // page size in points
	margin        float64 // left, right and top margin in points
	headSize      float64 // heading font size (Helvetica-Bold)
	bodySize      float64 // body font size (Helvetica)
	leading       float64 // baseline distance for body lines
	paraGap       float64 // extra space between paragraphs
}

const (
	a4W = 595.0
	a4H = 842.0
	dpi = 150.0
)

var (
	reportLayout = layout{width: a4W, height: a4H, margin: 72, headSize: 18, bodySize: 11, leading: 14, paraGap: 8}
	scanLayout   = layout{width: a4W, height: a4H, margin: 72, headSize: 18, bodySize: 12, leading: 15.5, paraGap: 9}
	imageLayout  = layout{width: a4W, height: a4H, margin: 72, headSize: 18, bodySize: 12, leading: 15.5, paraGap: 9}
)

func main() {
	out := flag.String("out", "testdata", "output directory")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("gen: ")

	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	write := func(name string, data []byte) {
		p := filepath.Join(*out, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-14s %8d bytes\n", name, len(data))
	}

	// 1. report.pdf: born-digital text PDF.
	write("report.pdf", textPDF(reportPages, reportLayout))
	write("report.txt", knownText(reportPages))

	// 2. scanned.pdf: image-only PDF made from rendered, degraded pages.
	scanSrc := textPDF(scanPages, scanLayout)
	angles := []float64{0.4, -0.3}
	var scans [][]byte
	var w, h int
	for i := range scanPages {
		g := renderGray(scanSrc, i)
		g = rotate(g, angles[i])
		addNoise(g, rand.New(rand.NewPCG(20240501, uint64(i+1))), 0.12, 12, 14)
		scans = append(scans, encodeJPEG(g, 75))
		w, h = g.Bounds().Dx(), g.Bounds().Dy()
	}
	write("scanned.pdf", imagePDF(scans, w, h, a4W, a4H))
	write("scanned.txt", knownText(scanPages))

	// 3. page.png and page.jpg: single rendered pages.
	pngSrc := textPDF([]page{pngPage}, imageLayout)
	write("page.png", encodePNG(renderGray(pngSrc, 0)))
	write("page.png.txt", knownText([]page{pngPage}))

	jpgSrc := textPDF([]page{jpgPage}, imageLayout)
	jg := renderGray(jpgSrc, 0)
	addNoise(jg, rand.New(rand.NewPCG(20240502, 7)), 0.08, 10, 6)
	write("page.jpg", encodeJPEG(jg, 85))
	write("page.jpg.txt", knownText([]page{jpgPage}))
}

// knownText renders pages in the documented plain-text format.
func knownText(pages []page) []byte {
	var b strings.Builder
	for i, p := range pages {
		if i > 0 {
			b.WriteString("\f\n")
		}
		b.WriteString(p.heading)
		b.WriteString("\n")
		for _, para := range p.paras {
			b.WriteString("\n")
			b.WriteString(para)
			b.WriteString("\n")
		}
	}
	return []byte(b.String())
}

// ---------------------------------------------------------------------------
// Minimal PDF writer.

type pdfWriter struct {
	buf     bytes.Buffer
	offsets []int // offsets[n-1] is the byte offset of object n
}

func newPDFWriter() *pdfWriter {
	w := &pdfWriter{}
	// The second line holds four bytes >127 so tools treat the file as binary.
	w.buf.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	return w
}

// obj writes object n, which must be the next object number.
func (w *pdfWriter) obj(n int, body string) {
	w.begin(n)
	w.buf.WriteString(body)
	w.buf.WriteString("\nendobj\n")
}

// stream writes object n as a stream; dict holds the entries besides /Length.
func (w *pdfWriter) stream(n int, dict string, data []byte) {
	w.begin(n)
	fmt.Fprintf(&w.buf, "<< %s/Length %d >>\nstream\n", dict, len(data))
	w.buf.Write(data)
	w.buf.WriteString("\nendstream\nendobj\n")
}

func (w *pdfWriter) begin(n int) {
	if n != len(w.offsets)+1 {
		panic(fmt.Sprintf("pdf object %d written out of order", n))
	}
	w.offsets = append(w.offsets, w.buf.Len())
	fmt.Fprintf(&w.buf, "%d 0 obj\n", n)
}

// finish writes the xref table and trailer; object 1 is the catalog.
func (w *pdfWriter) finish() []byte {
	xref := w.buf.Len()
	fmt.Fprintf(&w.buf, "xref\n0 %d\n", len(w.offsets)+1)
	w.buf.WriteString("0000000000 65535 f \n")
	for _, off := range w.offsets {
		fmt.Fprintf(&w.buf, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&w.buf, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(w.offsets)+1, xref)
	return w.buf.Bytes()
}

func kids(first, step, count int) string {
	var refs []string
	for i := range count {
		refs = append(refs, fmt.Sprintf("%d 0 R", first+i*step))
	}
	return strings.Join(refs, " ")
}

// textPDF typesets pages with the standard Helvetica fonts.
// Objects: 1 catalog, 2 pages, 3 Helvetica, 4 Helvetica-Bold, then a
// page object and a content stream per page.
func textPDF(pages []page, l layout) []byte {
	w := newPDFWriter()
	w.obj(1, "<< /Type /Catalog /Pages 2 0 R >>")
	w.obj(2, fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids(5, 2, len(pages)), len(pages)))
	// WinAnsiEncoding maps ' and ` to the ASCII quote glyphs, so text
	// extraction returns exactly the ASCII that was written.
	w.obj(3, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	w.obj(4, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
	for i, p := range pages {
		pageObj, contentObj := 5+2*i, 6+2*i
		w.obj(pageObj, fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] "+
			"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>",
			num(l.width), num(l.height), contentObj))
		w.stream(contentObj, "", pageContent(p, l))
	}
	return w.finish()
}

// pageContent builds the content stream for one text page.
func pageContent(p page, l layout) []byte {
	var b bytes.Buffer
	maxW := l.width - 2*l.margin
	y := l.height - l.margin - l.headSize
	b.WriteString("BT\n")
	line := func(font string, size, y float64, text string) {
		if y < l.margin {
			panic(fmt.Sprintf("text overflows page %q", p.heading))
		}
		fmt.Fprintf(&b, "/%s %s Tf\n1 0 0 1 %s %s Tm\n(%s) Tj\n", font, num(size), num(l.margin), num(y), escape(text))
	}
	for _, hl := range wrap(p.heading, boldWidths, l.headSize, maxW) {
		line("F2", l.headSize, y, hl)
		y -= l.headSize * 1.25
	}
	y -= l.leading*0.6 + l.paraGap
	for _, para := range p.paras {
		for _, bl := range wrap(para, regularWidths, l.bodySize, maxW) {
			line("F1", l.bodySize, y, bl)
			y -= l.leading
		}
		y -= l.paraGap
	}
	b.WriteString("ET")
	return b.Bytes()
}

// imagePDF writes one full-page grayscale JPEG per page.
// Objects: 1 catalog, 2 pages, then page, content and image per page.
func imagePDF(jpegs [][]byte, pxW, pxH int, ptW, ptH float64) []byte {
	w := newPDFWriter()
	w.obj(1, "<< /Type /Catalog /Pages 2 0 R >>")
	w.obj(2, fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids(3, 3, len(jpegs)), len(jpegs)))
	for i, data := range jpegs {
		pageObj, contentObj, imgObj := 3+3*i, 4+3*i, 5+3*i
		w.obj(pageObj, fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] "+
			"/Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>",
			num(ptW), num(ptH), imgObj, contentObj))
		w.stream(contentObj, "", fmt.Appendf(nil, "q %s 0 0 %s 0 0 cm /Im0 Do Q", num(ptW), num(ptH)))
		w.stream(imgObj, fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d "+
			"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode ", pxW, pxH), data)
	}
	return w.finish()
}

// num formats a PDF number without exponent or trailing zeros.
func num(f float64) string {
	s := fmt.Sprintf("%.2f", f)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// escape quotes a string for a PDF literal string.
func escape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`)
	return r.Replace(s)
}

// wrap breaks text into lines no wider than maxW points.
func wrap(text string, widths *[95]int, size, maxW float64) []string {
	var lines []string
	var cur string
	for _, word := range strings.Fields(text) {
		cand := word
		if cur != "" {
			cand = cur + " " + word
		}
		if cur != "" && textWidth(cand, widths, size) > maxW {
			lines = append(lines, cur)
			cand = word
		}
		cur = cand
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

func textWidth(s string, widths *[95]int, size float64) float64 {
	total := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 32 || c > 126 {
			panic(fmt.Sprintf("non-ASCII byte %q in %q", c, s))
		}
		total += widths[c-32]
	}
	return float64(total) * size / 1000
}

// Advance widths (1/1000 em) of ASCII 32..126 from the Adobe AFM files.
var regularWidths = &[95]int{
	278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // space../
	556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0..?
	1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @..O
	667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P.._
	333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // `..o
	556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // p..~
}

var boldWidths = &[95]int{
	278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
	556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
	975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
	667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
	333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
	611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
}

// ---------------------------------------------------------------------------
// Rendering and image degradation.

// renderGray renders page n of an in-memory PDF at 150 DPI as grayscale.
func renderGray(pdf []byte, n int) *image.Gray {
	doc, err := fitz.NewFromMemory(pdf)
	if err != nil {
		log.Fatal(err)
	}
	defer doc.Close()
	rgba, err := doc.ImageDPI(n, dpi)
	if err != nil {
		log.Fatal(err)
	}
	b := rgba.Bounds()
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		src := rgba.Pix[y*rgba.Stride : y*rgba.Stride+4*b.Dx()]
		dst := g.Pix[y*g.Stride : y*g.Stride+b.Dx()]
		for x := range dst {
			r, gr, bl := int(src[4*x]), int(src[4*x+1]), int(src[4*x+2])
			dst[x] = uint8((299*r + 587*gr + 114*bl + 500) / 1000)
		}
	}
	return g
}

// rotate turns src by deg degrees (counter-clockwise as seen on the page)
// around its centre with bilinear sampling; uncovered areas become white.
func rotate(src *image.Gray, deg float64) *image.Gray {
	w, h := src.Bounds().Dx(), src.Bounds().Dy()
	dst := image.NewGray(image.Rect(0, 0, w, h))
	sin, cos := math.Sincos(deg * math.Pi / 180)
	cx, cy := float64(w)/2, float64(h)/2
	at := func(x, y int) float64 {
		if x < 0 || y < 0 || x >= w || y >= h {
			return 255
		}
		return float64(src.Pix[y*src.Stride+x])
	}
	for y := range h {
		for x := range w {
			// Inverse mapping: where in src does this dst pixel come from?
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			sx := cos*dx - sin*dy + cx - 0.5
			sy := sin*dx + cos*dy + cy - 0.5
			x0, y0 := int(math.Floor(sx)), int(math.Floor(sy))
			fx, fy := sx-float64(x0), sy-float64(y0)
			top := at(x0, y0)*(1-fx) + at(x0+1, y0)*fx
			bot := at(x0, y0+1)*(1-fx) + at(x0+1, y0+1)*fx
			v := top*(1-fy) + bot*fy
			dst.Pix[y*dst.Stride+x] = uint8(math.Round(math.Min(255, math.Max(0, v))))
		}
	}
	return dst
}

// addNoise perturbs a fraction of pixels by up to ±amp gray levels and
// drops a few small dark specks, all from the given seeded generator.
func addNoise(g *image.Gray, rng *rand.Rand, frac float64, amp, specks int) {
	w, h := g.Bounds().Dx(), g.Bounds().Dy()
	for i := range g.Pix {
		if rng.Float64() >= frac {
			continue
		}
		v := int(g.Pix[i]) + rng.IntN(2*amp+1) - amp
		g.Pix[i] = uint8(min(255, max(0, v)))
	}
	for range specks {
		cx, cy := rng.IntN(w), rng.IntN(h)
		r := 1 + rng.IntN(2)
		shade := uint8(30 + rng.IntN(60))
		for y := cy - r; y <= cy+r; y++ {
			for x := cx - r; x <= cx+r; x++ {
				if x < 0 || y < 0 || x >= w || y >= h || (x-cx)*(x-cx)+(y-cy)*(y-cy) > r*r {
					continue
				}
				g.Pix[y*g.Stride+x] = min(g.Pix[y*g.Stride+x], shade)
			}
		}
	}
}

// encodeJPEG encodes a grayscale JPEG and inserts a JFIF header declaring
// 150 DPI so OCR tools know the scale.
func encodeJPEG(g *image.Gray, quality int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, g, &jpeg.Options{Quality: quality}); err != nil {
		log.Fatal(err)
	}
	data := b.Bytes()
	app0 := []byte{0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(app0[12:], uint16(dpi))
	binary.BigEndian.PutUint16(app0[14:], uint16(dpi))
	out := append([]byte{}, data[:2]...) // SOI
	out = append(out, app0...)
	return append(out, data[2:]...)
}

// encodePNG encodes an 8-bit grayscale PNG with a pHYs chunk for 150 DPI.
func encodePNG(g *image.Gray) []byte {
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, g); err != nil {
		log.Fatal(err)
	}
	data := b.Bytes()
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature + IHDR chunk
	ppm := uint32(math.Round(dpi / 0.0254))
	chunk := make([]byte, 4+4+9+4)
	binary.BigEndian.PutUint32(chunk[0:], 9)
	copy(chunk[4:], "pHYs")
	binary.BigEndian.PutUint32(chunk[8:], ppm)
	binary.BigEndian.PutUint32(chunk[12:], ppm)
	chunk[16] = 1 // unit: metre
	binary.BigEndian.PutUint32(chunk[17:], crc32.ChecksumIEEE(chunk[4:17]))
	out := append([]byte{}, data[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, data[ihdrEnd:]...)
}

// ---------------------------------------------------------------------------
// Text content. All ASCII; every page different.

var reportPages = []page{
	{
		heading: "Page 1: Introduction and Scope",
		paras: []string{
			"This review describes the operations of the Riverside Municipal Water Authority during the fiscal year that ended on the thirtieth of June. It was prepared by the planning office at the request of the board, and it draws on plant logs, field reports, customer surveys and the audited accounts. Where figures are estimates rather than measurements, the text says so plainly.",
			"The Authority serves roughly 148,000 residents across four districts, from the dense streets of the old town to the scattered farms along the northern valley. Demand in the summer months rose sharply, as it has in each of the last three years, and the network was pushed close to its design limits during the long dry spell in August. Even so, supply was never interrupted for more than a few hours in any one neighbourhood.",
			"The document is organised as follows. The next section covers the two treatment plants and the quality of the water leaving them. It is followed by an account of the distribution network, including the new acoustic leak detection programme, and then by a summary of customer service. The financial results come next, and the final section sets out the priorities that staff believe should guide the coming year.",
			"Readers who want the underlying data can request the full set of tables from the records office. Comments on this draft are welcome until the end of the month.",
		},
	},
	{
		heading: "Page 2: Treatment Plant Performance",
		paras: []string{
			"Both treatment plants met every regulatory standard for the full year. The Eastbank plant, which draws from the river, processed an average of 41.6 million litres per day, while the smaller Hillcrest plant, fed by three deep wells, averaged 12.3 million litres. Turbidity at the Eastbank outlet stayed below 0.1 units on all but two days, both of them during the spring floods when the intake screens were partly blocked by debris.",
			"The most significant event was the replacement of the ozone generator at Eastbank in November. The old unit had been in service for nineteen years and its efficiency had fallen steadily. Engineers scheduled the work for the quietest week of the year and ran the plant on chlorine disinfection alone for six days. Sampling was doubled during that period, and no irregular results were recorded.",
			"At Hillcrest, the iron and manganese filters were backwashed more often than in previous years because the well water carried more sediment after the wet winter. Operators noticed the change early and adjusted the schedule before it affected the taste or colour of the supply. A study is now under way to find out whether a fourth well, drilled further up the slope, would give cleaner water at a lower pumping cost.",
			"Energy use per cubic metre treated fell by about 4 percent overall, thanks mostly to the new variable speed drives on the high lift pumps.",
		},
	},
	{
		heading: "Page 3: Distribution Network and Leak Detection",
		paras: []string{
			"The Authority maintains about 1,120 kilometres of mains, the oldest of which were laid in cast iron more than a century ago. Roughly one fifth of the network is now past its expected service life. Pipe bursts remain most common in the old town, where narrow streets make repairs slow and disruptive, and where traffic has to be diverted each time a crew opens the road.",
			"In March the field team began a pilot of acoustic leak detection. Small sensors were fixed to hydrants and valves in two districts, and each night they listened for the steady hiss that a hidden leak produces. Over the following months the sensors flagged 63 suspected leaks, of which 51 were confirmed by excavation. Several of them had been losing water for years without ever reaching the surface.",
			"Non-revenue water, which is the share of treated water that never reaches a paying customer, fell from 22 percent to just under 19 percent. Part of that gain comes from the leak programme and part from the replacement of about 2,400 old meters that had been under-recording. The team believes a further reduction of two or three points is realistic if the sensors are rolled out across the whole network.",
			"Crews also completed the new 600 millimetre trunk main beneath Station Road (Phase 2), two weeks ahead of schedule and within budget.",
		},
	},
	{
		heading: "Page 4: Customer Service and Billing",
		paras: []string{
			"The customer contact centre answered 86,400 calls during the year, a modest drop from the year before. The average wait before a call was answered was 74 seconds, and nine out of ten callers reached an adviser within three minutes. Online requests grew quickly: almost a third of all meter readings are now submitted through the web portal rather than by post or telephone.",
			"Complaints about water quality were rare and usually concerned discoloured water after work on nearby mains. Each complaint was logged, and where a visit was needed an inspector attended within one working day. Complaints about billing were more frequent. Most arose from estimated bills for properties where the meter could not be read, which is one reason the meter replacement scheme was given priority.",
			"The annual satisfaction survey was sent to 3,000 households chosen at random, and 1,146 replied. Overall satisfaction rose to 81 percent. Respondents praised the speed of repairs but were less happy with the notice given before planned interruptions. Several asked for text message alerts, and a trial of that service will start in the spring.",
			"The hardship fund helped 412 households who were struggling to pay, mainly through payment plans and small grants toward arrears.",
		},
	},
	{
		heading: "Page 5: Financial Summary",
		paras: []string{
			"Total operating income for the year was 38.7 million, an increase of 3.1 percent, almost all of it from the tariff adjustment approved by the board last spring. Operating costs rose more slowly, to 31.2 million, leaving a surplus that was transferred to the capital reserve as planned. Electricity remains the largest single cost after staff, and its price was volatile for most of the year.",
			"Capital spending reached 14.9 million. The largest items were mains renewal (6.2 million), the ozone generator at Eastbank (2.8 million), the meter replacement scheme (1.9 million) and the leak detection pilot (0.6 million). The balance was spread across dozens of smaller projects, from pump refurbishment to new vehicles for the field crews.",
			"Borrowing stood at 52.4 million at the end of the year, slightly lower than twelve months earlier, and interest costs were covered more than four times by the operating surplus. The auditors raised no material concerns, although they did recommend that the asset register be brought up to date more often, since several items recorded as in service had in fact been retired.",
			"All amounts in this section are given in units of local currency and are drawn from the audited statements, which are available on request.",
		},
	},
	{
		heading: "Page 6: Outlook and Recommendations",
		paras: []string{
			"Looking ahead, the pressures on the Authority are unlikely to ease. Population growth in the eastern district, hotter summers and an ageing network all point toward higher demand and higher costs. At the same time, the pilot projects described in this review show that targeted investment can deliver real savings, both in water and in money.",
			"Staff recommend four priorities for the coming year. First, extend acoustic leak detection to the remaining districts. Second, raise the rate of mains renewal to at least 15 kilometres a year, focusing on the old town. Third, complete the study of the proposed Hillcrest well and decide whether to proceed. Fourth, introduce text message alerts for planned interruptions, which customers have asked for repeatedly.",
			"None of these steps is cheap, but each is expected to pay for itself within a reasonable period. The planning office will prepare detailed cases for the board meeting in October, together with options for phasing the work if funding proves tighter than expected.",
			`The spreadsheets used to prepare this review are kept on the shared drive under S:\Planning\Annual\Review and may be copied by any member of staff. Questions should go to the planning office (extension 214).`,
		},
	},
}

var scanPages = []page{
	{
		heading: "Page 1: Library Board Meeting Minutes",
		paras: []string{
			"The regular meeting of the Oakfield Public Library Board was called to order at seven in the evening in the community room of the main branch. Five of the seven trustees were present, along with the head librarian, the finance officer and two members of the public. The minutes of the previous meeting were read and approved without amendment.",
			"The head librarian reported that visits to the main branch rose by eleven percent compared with the same quarter last year. Much of the increase came from the new homework club, which now meets four afternoons a week and regularly fills every seat at the long tables near the windows. Loans of printed books were steady, while loans of audiobooks and electronic titles continued to grow.",
			"The finance officer presented the budget for the second half of the year. Spending on heating was higher than planned because of the cold spell in January, but savings on postage and printing covered most of the gap. The trustees asked for a breakdown of the costs of the mobile library van, which is due for a major service before the summer.",
			"A member of the public asked whether the branch could open earlier on Saturdays. The chair thanked her for the suggestion and promised that the board would look at staffing before the next meeting.",
		},
	},
	{
		heading: "Page 2: Building Works and Next Steps",
		paras: []string{
			"The chair of the buildings committee gave an update on the repairs to the roof of the west reading room. The contractor has finished replacing the damaged slates and expects to complete the new gutters within three weeks, weather permitting. The reading room will stay closed until the ceiling plaster has dried out and been inspected, probably at the end of next month.",
			"Trustees discussed the plan to convert the old storage basement into a small local history archive. Several boxes of parish records, photographs and maps have been donated over the years and are at risk of damage where they are now kept. The committee will obtain two quotes for shelving, lighting and a dehumidifier and will report back with a firm estimate.",
			"Under any other business, the board agreed to send a letter of thanks to the volunteers who ran the book sale in March, which raised a record sum for the summer reading programme for children. The date of the next meeting was confirmed as the second Tuesday of next month, at the same time and place.",
			"There being no further business, the meeting closed at half past eight. A copy of these minutes will be posted on the notice board in the entrance hall of each branch.",
		},
	},
}

var pngPage = page{
	heading: "Notice: Weekend Waste Collection Changes",
	paras: []string{
		"From the first Saturday of next month, household waste in the northern district will be collected on Saturday mornings instead of Friday afternoons. The change is needed because the Friday route now overlaps with heavy market traffic, which has delayed the crews on most weeks this year.",
		"Please put your bins out by seven o'clock on Saturday morning and bring them back in by the evening. Garden waste and recycling are not affected and will be collected on the usual days. If you have any questions, call the council helpline or visit the service desk at the town hall, which is open from nine until five on weekdays.",
	},
}

var jpgPage = page{
	heading: "Field Notes: Spring Bird Survey at Marsh Lane",
	paras: []string{
		"We walked the usual transect along Marsh Lane between six and nine in the morning under a light westerly breeze. The reed beds were still flooded after the recent rain, and the path near the old sluice gate was muddy but passable. In total we recorded 34 species, which is three more than at the same point last spring.",
		"Highlights included a pair of marsh harriers quartering the northern reeds, at least six singing sedge warblers and a single little egret feeding in the drainage ditch. Swallows had arrived in good numbers over the pasture. The count sheets have been entered into the survey database, and the next visit is planned for the middle of May.",
	},
}
