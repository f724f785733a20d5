package vllmtest

import (
	"fmt"
	"image"
	"image/color"
)

// A marked page carries a machine-readable band at its top: 26 black or
// white cells that encode a document tag (8 bits) and a page number (12
// bits), framed so that the reading direction is unambiguous:
//
//	1 1 0 | tag ×8 | page ×12 | parity | 0 1
//
// The cells are large (3.5 % of the page width each), so the band survives
// rendering to a PDF and back, JPEG at any quality ocrflow uses, and
// scaling down to DeepSeek's tiny mode (512 px). The fake server reads it
// to answer with text that names the page, so tests can check order and
// clean-up without real OCR.
const (
	markerCells = 26
	bandTop     = 0.03
	bandBottom  = 0.08
	bandLeft    = 0.05
	bandRight   = 0.95
	// MaxTag and MaxPage are the largest encodable values.
	MaxTag  = 1<<8 - 1
	MaxPage = 1<<12 - 1
)

func markerBits(tag, page int) []bool {
	bits := []bool{true, true, false}
	parity := false
	for i := 7; i >= 0; i-- {
		b := tag>>i&1 == 1
		parity = parity != b
		bits = append(bits, b)
	}
	for i := 11; i >= 0; i-- {
		b := page>>i&1 == 1
		parity = parity != b
		bits = append(bits, b)
	}
	return append(bits, parity, false, true)
}

// Token is the unique word the fake server writes for a marked page, e.g.
// "t03p0007" for page 7 of document 3.
func Token(tag, page int) string { return fmt.Sprintf("t%02xp%04d", tag, page) }

// PageText is the sentence the fake server reads on a marked page.
func PageText(tag, page int) string {
	return fmt.Sprintf("Page %d of document %d [%s].", page, tag, Token(tag, page))
}

// PageImage draws a synthetic w×h grayscale page: white paper, the marker
// band for (tag, page), and grey bars standing for lines of text. The page
// is then turned counter-clockwise by rotation degrees (0, 90, 180, 270),
// as a page fed into a scanner sideways; ReadMarker reports the turn that
// puts it upright again.
func PageImage(tag, page, w, h, rotation int) *image.Gray {
	if tag < 0 || tag > MaxTag || page < 0 || page > MaxPage {
		panic(fmt.Sprintf("vllmtest: tag %d or page %d out of range", tag, page))
	}
	img := image.NewGray(image.Rect(0, 0, w, h))
	fill(img, 0, 0, w, h, 255)
	y0, y1 := int(bandTop*float64(h)), int(bandBottom*float64(h))
	cell := (bandRight - bandLeft) * float64(w) / markerCells
	for i, b := range markerBits(tag, page) {
		if b {
			x0 := int(bandLeft*float64(w) + float64(i)*cell)
			fill(img, x0, y0, int(bandLeft*float64(w)+float64(i+1)*cell), y1, 0)
		}
	}
	// Lines of "text": bars of varying length, different per page.
	lineH := max(2, h/90)
	seed := uint32(tag*4099 + page*131 + 7)
	for y := int(0.14 * float64(h)); y < int(0.92*float64(h)); y += 3 * lineH {
		seed = seed*1664525 + 1013904223
		length := 0.45 + float64(seed>>24)/255*0.45
		fill(img, int(0.08*float64(w)), y, int((0.08+length*0.84)*float64(w)), y+lineH, 60)
	}
	return rotateCCW(img, rotation)
}

func fill(img *image.Gray, x0, y0, x1, y1 int, v uint8) {
	r := image.Rect(x0, y0, x1, y1).Intersect(img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := img.Pix[img.PixOffset(r.Min.X, y):img.PixOffset(r.Max.X, y)]
		for i := range row {
			row[i] = v
		}
	}
}

// rotateCCW turns img counter-clockwise by deg (a multiple of 90).
func rotateCCW(img *image.Gray, deg int) *image.Gray {
	deg = ((deg % 360) + 360) % 360
	if deg == 0 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := h, w
	if deg == 180 {
		dw, dh = w, h
	}
	dst := image.NewGray(image.Rect(0, 0, dw, dh))
	for y := range h {
		for x := range w {
			var nx, ny int
			switch deg {
			case 90:
				nx, ny = y, w-1-x
			case 180:
				nx, ny = w-1-x, h-1-y
			case 270:
				nx, ny = h-1-y, x
			}
			dst.Pix[ny*dst.Stride+nx] = img.Pix[img.PixOffset(b.Min.X+x, b.Min.Y+y)]
		}
	}
	return dst
}

// ReadMarker finds the marker band of a page image. correction is the
// counter-clockwise turn (0, 90, 180, 270) that makes the page upright
// (olmOCR's rotation_correction). ok is false for an unmarked page.
func ReadMarker(img image.Image) (tag, page, correction int, ok bool) {
	for _, c := range []int{0, 90, 180, 270} {
		if tag, page, ok := readBand(img, c); ok {
			return tag, page, c, true
		}
	}
	return 0, 0, 0, false
}

// readBand reads the band assuming that turning img by correction degrees
// counter-clockwise makes it upright.
func readBand(img image.Image, correction int) (tag, page int, ok bool) {
	b := img.Bounds()
	// Map upright page coordinates (u, v) in [0,1]² onto img: img is the
	// upright page turned by (360-correction) counter-clockwise, and one
	// counter-clockwise quarter turn maps (u, v) to (v, 1-u).
	turns := ((360 - correction) / 90) % 4
	at := func(u, v float64) float64 {
		for range turns {
			u, v = v, 1-u
		}
		x := b.Min.X + int(u*float64(b.Dx()))
		y := b.Min.Y + int(v*float64(b.Dy()))
		return luma(img, x, y)
	}
	cell := (bandRight - bandLeft) / markerCells
	vmid, vh := (bandTop+bandBottom)/2, (bandBottom-bandTop)/4
	bits := make([]bool, markerCells)
	for i := range bits {
		umid := bandLeft + (float64(i)+0.5)*cell
		sum, n := 0.0, 0
		for dy := -1.0; dy <= 1; dy++ {
			for dx := -1.0; dx <= 1; dx++ {
				sum += at(umid+dx*cell/4, vmid+dy*vh)
				n++
			}
		}
		bits[i] = sum/float64(n) < 128
	}
	want := markerBits(0, 0)
	for _, i := range []int{0, 1, 2, markerCells - 2, markerCells - 1} {
		if bits[i] != want[i] {
			return 0, 0, false
		}
	}
	parity := false
	for i := 3; i < 3+20; i++ {
		parity = parity != bits[i]
		if i < 11 {
			tag = tag<<1 | btoi(bits[i])
		} else {
			page = page<<1 | btoi(bits[i])
		}
	}
	if parity != bits[23] {
		return 0, 0, false
	}
	return tag, page, true
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func luma(img image.Image, x, y int) float64 {
	if !(image.Point{X: x, Y: y}).In(img.Bounds()) {
		return 255
	}
	return float64(color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y)
}

// aHash is an 8×8 average hash of img, the text the fake server reads on
// unmarked pages: the same picture gives the same text at any size.
func aHash(img image.Image) uint64 {
	b := img.Bounds()
	var cells [64]float64
	for i := range cells {
		cx, cy := i%8, i/8
		sum, n := 0.0, 0
		for y := b.Min.Y + cy*b.Dy()/8; y < b.Min.Y+(cy+1)*b.Dy()/8; y += max(1, b.Dy()/64) {
			for x := b.Min.X + cx*b.Dx()/8; x < b.Min.X+(cx+1)*b.Dx()/8; x += max(1, b.Dx()/64) {
				sum += luma(img, x, y)
				n++
			}
		}
		if n > 0 {
			cells[i] = sum / float64(n)
		}
	}
	mean := 0.0
	for _, c := range cells {
		mean += c / 64
	}
	var h uint64
	for i, c := range cells {
		if c > mean {
			h |= 1 << i
		}
	}
	return h
}
