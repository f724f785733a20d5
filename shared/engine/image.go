package engine

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decode JPEG pages
	"image/png"
	"sort"

	"golang.org/x/image/draw"

	"github.com/ocrflow/ocrflow/shared/render"
)

// sizing says how large a page image a model reads in one mode.
type sizing struct {
	// longSide bounds a fixed mode: the image's longer side is at most
	// this many pixels.
	longSide int
	// tile > 0 is a dynamic ("gundam") mode: the server resizes the image
	// onto a grid of tile×tile crops (plus a global view), so the image
	// is fitted into that grid and never sent larger.
	tile               int
	minCrops, maxCrops int
	// render is the long side convert renders pages at for this mode.
	render int
}

// renderLongSide is the long side convert should render pages at.
func (s sizing) renderLongSide() int {
	if s.render > 0 {
		return s.render
	}
	return s.longSide
}

// box returns the largest width×height a w×h image is sent at.
func (s sizing) box(w, h int) (int, int) {
	if s.tile <= 0 {
		return s.longSide, s.longSide
	}
	if w <= s.tile && h <= s.tile {
		return s.tile, s.tile // no crops: the global view only
	}
	cols, rows := cropGrid(w, h, s.tile, s.minCrops, s.maxCrops)
	return s.tile * cols, s.tile * rows
}

// cropGrid picks the crop grid vLLM's DeepSeek-OCR processor resizes a
// w×h image onto (count_tiles in vllm/transformers_utils/processors/
// deepseek_ocr.py): among grids of minN..maxN tiles, the one whose aspect
// ratio is closest to the image's; on a tie the later (larger) grid wins
// when the image covers more than half of it.
func cropGrid(w, h, tile, minN, maxN int) (cols, rows int) {
	type grid struct{ c, r int }
	var grids []grid
	for c := 1; c <= maxN; c++ {
		for r := 1; r <= maxN; r++ {
			if n := c * r; n >= minN && n <= maxN {
				grids = append(grids, grid{c, r})
			}
		}
	}
	sort.SliceStable(grids, func(i, j int) bool { return grids[i].c*grids[i].r < grids[j].c*grids[j].r })
	aspect := float64(w) / float64(h)
	best, bestDiff := grid{1, 1}, -1.0
	area := float64(w) * float64(h)
	for _, g := range grids {
		d := aspect - float64(g.c)/float64(g.r)
		if d < 0 {
			d = -d
		}
		switch {
		case bestDiff < 0 || d < bestDiff:
			best, bestDiff = g, d
		case d == bestDiff && area > 0.5*float64(tile*tile*g.c*g.r):
			best = g
		}
	}
	return best.c, best.r
}

// pageImage is a page's encoded image, decoded only when needed.
type pageImage struct {
	raw    []byte
	format string // "jpeg" or "png"
	w, h   int
	img    image.Image
}

// loadPage reads the image header. An unreadable image is a permanent
// failure: no retry will change its bytes.
func loadPage(b []byte) (*pageImage, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, GiveUp(ReasonUnreadable, "", "page image: %v", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, GiveUp(ReasonUnreadable, "", "page image has no pixels (%d×%d)", cfg.Width, cfg.Height)
	}
	return &pageImage{raw: b, format: format, w: cfg.Width, h: cfg.Height}, nil
}

func (p *pageImage) decoded() (image.Image, error) {
	if p.img == nil {
		img, _, err := image.Decode(bytes.NewReader(p.raw))
		if err != nil {
			return nil, GiveUp(ReasonUnreadable, "", "decode page image: %v", err)
		}
		p.img = img
	}
	return p.img, nil
}

// prepared is an image ready for the wire.
type prepared struct {
	data []byte
	mime string
	w, h int
}

// prepare returns the page rotated counter-clockwise by rotation degrees
// (0, 90, 180, 270) and scaled down (never up) to fit sz. A page that
// already fits and needs no rotation is sent as it is: no decoding, no
// second lossy encoding.
func (p *pageImage) prepare(sz sizing, rotation int) (prepared, error) {
	w, h := p.w, p.h
	if rotation == 90 || rotation == 270 {
		w, h = h, w
	}
	bw, bh := sz.box(w, h)
	if rotation == 0 && w <= bw && h <= bh && (p.format == "jpeg" || p.format == "png") {
		return prepared{data: p.raw, mime: "image/" + p.format, w: w, h: h}, nil
	}
	img, err := p.decoded()
	if err != nil {
		return prepared{}, err
	}
	img = fitInto(rotate(img, rotation), bw, bh)
	data, mime, err := encodeImage(img)
	if err != nil {
		return prepared{}, err
	}
	b := img.Bounds()
	return prepared{data: data, mime: mime, w: b.Dx(), h: b.Dy()}, nil
}

// fitInto scales img down so it fits bw×bh, keeping its aspect ratio
// (Catmull-Rom). It scales into RGBA, which x/image/draw has fast paths
// for (a Gray destination takes its generic per-pixel path, ~10× slower),
// and returns a gray page as *image.Gray again.
func fitInto(img image.Image, bw, bh int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= bw && h <= bh {
		return img
	}
	scale := min(float64(bw)/float64(w), float64(bh)/float64(h))
	nw := max(1, min(bw, int(float64(w)*scale+0.5)))
	nh := max(1, min(bh, int(float64(h)*scale+0.5)))
	dst := image.NewRGBA(image.Rect(0, 0, nw, nh))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	if _, ok := img.(*image.Gray); ok {
		return toGray(dst)
	}
	return dst
}

// toGray copies the red channel of a gray RGBA image.
func toGray(src *image.RGBA) *image.Gray {
	b := src.Bounds()
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		row := src.Pix[y*src.Stride : y*src.Stride+4*b.Dx()]
		out := g.Pix[y*g.Stride : y*g.Stride+b.Dx()]
		for x := range out {
			out[x] = row[4*x]
		}
	}
	return g
}

// rotate turns img counter-clockwise by deg (a multiple of 90), the way
// PIL's Image.Transpose.ROTATE_<deg> does, as olmOCR's pipeline applies
// its rotation_correction.
func rotate(img image.Image, deg int) image.Image {
	deg = ((deg % 360) + 360) % 360
	if deg == 0 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if deg != 180 {
		dw, dh = h, w
	}
	// where maps a source pixel to its place in the turned image.
	where := func(x, y int) (int, int) {
		switch deg {
		case 90: // counter-clockwise
			return y, w - 1 - x
		case 180:
			return w - 1 - x, h - 1 - y
		default: // 270: clockwise
			return h - 1 - y, x
		}
	}
	if g, ok := img.(*image.Gray); ok {
		dst := image.NewGray(image.Rect(0, 0, dw, dh))
		for y := range h {
			row := g.Pix[g.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				nx, ny := where(x, y)
				dst.Pix[ny*dst.Stride+nx] = row[x]
			}
		}
		return dst
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range h {
		for x := range w {
			nx, ny := where(x, y)
			dst.Set(nx, ny, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return dst
}

// lineArtGrain is the share of small steps between neighbouring pixels
// (a gray difference of 1–6: film grain, scanner noise, JPEG ringing)
// below which a resized page is line art. PNG encodes line art smaller
// than JPEG (by 10–16 %) at about the same cost and without a second
// generation of JPEG loss; on anything grainier PNG is up to 2× larger and
// 1.5–2× slower. Measured on ocrflow's samples resized to 640 and 1024 px
// (docs/engines.md, "Image format"; BenchmarkEncode): born-digital
// 0.022–0.039 and a clean page image 0.011–0.020 (PNG smaller); a page
// saved as JPEG 0.048–0.074, a scan with an OCR layer 0.087–0.121, a scan
// 0.18–0.20 (JPEG smaller). The rule picks the smaller format on all ten.
const lineArtGrain = 0.045

// encodeImage encodes a page the engine had to resize or turn: PNG for
// line art, JPEG quality 90 (gray when colourless) for everything else.
func encodeImage(img image.Image) ([]byte, string, error) {
	if grain(img) < lineArtGrain {
		data, err := encodePNG(img)
		return data, "image/png", err
	}
	p, err := render.Encode(img)
	if err != nil {
		return nil, "", err
	}
	return p.Data, p.MIME, nil
}

// grain returns the share of horizontal neighbour pairs (on every other
// row) whose gray values differ by 1 to 6.
func grain(img image.Image) float64 {
	b := img.Bounds()
	small, n := 0, 0
	g, isGray := img.(*image.Gray)
	at := func(x, y int) int {
		if isGray {
			return int(g.GrayAt(x, y).Y)
		}
		return int(color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y)
	}
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		prev := at(b.Min.X, y)
		for x := b.Min.X + 1; x < b.Max.X; x++ {
			v := at(x, y)
			if d := v - prev; (d >= 1 && d <= 6) || (d <= -1 && d >= -6) {
				small++
			}
			prev = v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(small) / float64(n)
}

// encodePNG encodes img as PNG at the fastest compression level.
func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// inkThreshold is the share of dark pixels above which a page visibly has
// content: a blank scan with dust stays well below it, a page with one
// short line of text is above it.
const inkThreshold = 0.001

// inkRatio returns the share of dark pixels (luma < 128) on a grid that
// samples every 4th pixel in both directions.
func inkRatio(img image.Image) float64 {
	b := img.Bounds()
	dark, n := 0, 0
	g, isGray := img.(*image.Gray)
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			var v uint8
			if isGray {
				v = g.GrayAt(x, y).Y
			} else {
				v = color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
			}
			if v < 128 {
				dark++
			}
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(dark) / float64(n)
}
