package render

import (
	"bytes"
	"encoding/binary"
	"io"
)

// DefaultDPI is the resolution of an image that states none: one pixel is
// one point.
const DefaultDPI = 72

// Resolution bounds: a stated resolution outside them is a broken header,
// not a real scan, and is ignored.
const (
	minStatedDPI = 10
	maxStatedDPI = 10000
)

// pointSize is the size in points of a w×h pixel image at dpi (x, y),
// upright: an EXIF orientation that turns the image (5–8) swaps its
// sides.
func pointSize(w, h, orientation int, dpi [2]float64) Size {
	fw, fh := float64(w), float64(h)
	if orientation >= 5 {
		fw, fh = fh, fw
		dpi = [2]float64{dpi[1], dpi[0]}
	}
	return Size{W: round2(fw * 72 / dpi[0]), H: round2(fh * 72 / dpi[1])}
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// resolution reads the resolution the PNG or JPEG in r states.
func resolution(r io.Reader) [2]float64 {
	def := [2]float64{DefaultDPI, DefaultDPI}
	var head [8]byte
	if _, err := io.ReadFull(r, head[:2]); err != nil {
		return def
	}
	var x, y float64
	switch {
	case head[0] == 0xFF && head[1] == 0xD8:
		x, y = jfifDensity(r)
	case head[0] == 0x89 && head[1] == 'P':
		if _, err := io.ReadFull(r, head[2:]); err != nil || !bytes.Equal(head[:], []byte("\x89PNG\r\n\x1a\n")) {
			return def
		}
		x, y = pngPHYs(r)
	}
	if x < minStatedDPI || x > maxStatedDPI || y < minStatedDPI || y > maxStatedDPI {
		return def
	}
	return [2]float64{x, y}
}

// jfifDensity reads the JFIF APP0 density of a JPEG (after its SOI) in
// dots per inch; 0 when it states none.
func jfifDensity(r io.Reader) (x, y float64) {
	var m [4]byte
	if _, err := io.ReadFull(r, m[:]); err != nil || m[0] != 0xFF || m[1] != 0xE0 {
		return 0, 0 // JFIF's APP0 comes first when there is one
	}
	size := int(binary.BigEndian.Uint16(m[2:])) - 2
	if size < 12 || size > 1<<16 {
		return 0, 0
	}
	seg := make([]byte, size)
	if _, err := io.ReadFull(r, seg); err != nil || !bytes.HasPrefix(seg, []byte("JFIF\x00")) {
		return 0, 0
	}
	units := seg[7]
	dx, dy := float64(binary.BigEndian.Uint16(seg[8:])), float64(binary.BigEndian.Uint16(seg[10:]))
	switch units {
	case 1: // dots per inch
		return dx, dy
	case 2: // dots per centimetre
		return dx * 2.54, dy * 2.54
	}
	return 0, 0 // an aspect ratio only
}

// pngPHYs reads a PNG's pHYs chunk (before its image data) in dots per
// inch; 0 when it states none.
func pngPHYs(r io.Reader) (x, y float64) {
	for range 64 {
		var h [8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return 0, 0
		}
		n, typ := binary.BigEndian.Uint32(h[:4]), string(h[4:])
		if typ == "IDAT" || typ == "IEND" || n > 1<<24 {
			return 0, 0
		}
		if typ != "pHYs" {
			if _, err := io.CopyN(io.Discard, r, int64(n)+4); err != nil {
				return 0, 0
			}
			continue
		}
		if n != 9 {
			return 0, 0
		}
		var d [9]byte
		if _, err := io.ReadFull(r, d[:]); err != nil || d[8] != 1 { // unit 1: per metre
			return 0, 0
		}
		return float64(binary.BigEndian.Uint32(d[:4])) * 0.0254, float64(binary.BigEndian.Uint32(d[4:])) * 0.0254
	}
	return 0, 0
}
