//go:build cgo

// Package turbojpeg decodes and encodes JPEG images with libjpeg-turbo's
// TurboJPEG API: SIMD code, and decoding at a reduced scale (1/8 … 15/16
// of the stored size) in the DCT domain, so a photo fitted to a vision
// model's size is never decoded at full size first.
//
// It links the system's libturbojpeg dynamically (Debian: libturbojpeg0,
// libturbojpeg0-dev to build). That library exports only its tj* functions,
// so it lives beside MuPDF's own, statically linked libjpeg without either
// seeing the other's jpeg_* symbols. A statically linked libturbojpeg.a
// would clash with MuPDF's libjpeg; do not switch.
//
// Images are exchanged as Go images whose pixel memory is Go memory:
// *image.Gray, *image.YCbCr (the planes the JPEG stores, no colour
// conversion either way) and *image.RGBA.
package turbojpeg

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>

// The plane helpers take the three plane pointers one by one: a C array
// of Go pointers may not be built on the Go side.
static int decodePlanes(tjhandle h, const unsigned char *buf, unsigned long n,
		unsigned char *y, unsigned char *u, unsigned char *v,
		int width, int ystride, int cstride, int height) {
	unsigned char *planes[3] = {y, u, v};
	int strides[3] = {ystride, cstride, cstride};
	return tjDecompressToYUVPlanes(h, buf, n, planes, width, strides, height, 0);
}

static int encodePlanes(tjhandle h, const unsigned char *y, const unsigned char *u,
		const unsigned char *v, int width, int ystride, int cstride, int height,
		int subsamp, unsigned char **out, unsigned long *outSize, int quality) {
	const unsigned char *planes[3] = {y, u, v};
	int strides[3] = {ystride, cstride, cstride};
	return tjCompressFromYUVPlanes(h, planes, width, strides, height, subsamp,
		out, outSize, quality, 0);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"unsafe"
)

// ErrUnsupported is returned for what this package does not handle — a
// CMYK or YCCK JPEG, an image kind or chroma layout TurboJPEG has no
// format for. The caller falls back to Go's image/jpeg, which does.
var ErrUnsupported = errors.New("turbojpeg: unsupported")

// info is what a JPEG's header says about its pixels.
type info struct {
	// width and height are the stored size in pixels.
	width, height int
	// gray is a one-channel image; cmyk a four-channel (CMYK or YCCK)
	// one, which Decode refuses with ErrUnsupported.
	gray, cmyk bool
	subsamp    C.int
}

// readInfo reads data's JPEG header with decompressor h.
func readInfo(h C.tjhandle, data []byte) (info, error) {
	var w, ht, sub, cs C.int
	if C.tjDecompressHeader3(h, (*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), &w, &ht, &sub, &cs) != 0 {
		return info{}, fmt.Errorf("turbojpeg: header: %s", C.GoString(C.tjGetErrorStr2(h)))
	}
	return info{
		width: int(w), height: int(ht), subsamp: sub,
		gray: cs == C.TJCS_GRAY,
		cmyk: cs == C.TJCS_CMYK || cs == C.TJCS_YCCK,
	}, nil
}

// ScaledSize returns the size Decode(data, minLong) produces for a JPEG
// of w×h: the smallest of libjpeg-turbo's scaling factors whose long side
// is still at least minLong (the full size when none is, or minLong ≤ 0).
func ScaledSize(w, h, minLong int) (int, int) {
	if minLong <= 0 {
		return w, h
	}
	var n C.int
	factors := unsafe.Slice(C.tjGetScalingFactors(&n), int(n))
	bw, bh := w, h
	for _, f := range factors {
		sw, sh := scaled(w, f), scaled(h, f)
		if max(sw, sh) >= minLong && sw*sh < bw*bh {
			bw, bh = sw, sh
		}
	}
	return bw, bh
}

// scaled is TJSCALED: a dimension at scaling factor f, rounded up.
func scaled(d int, f C.tjscalingfactor) int {
	return (d*int(f.num) + int(f.denom) - 1) / int(f.denom)
}

// Decode decodes data at the smallest scale whose long side is at least
// minLong pixels (full size when minLong ≤ 0): *image.Gray for a gray
// JPEG, *image.YCbCr with the stored chroma layout otherwise (no colour
// conversion). Any warning libjpeg-turbo raises — a truncated or corrupt
// stream — is an error: a damaged page is reported, not half-read.
func Decode(data []byte, minLong int) (image.Image, error) {
	if len(data) == 0 {
		return nil, errors.New("turbojpeg: no data")
	}
	h := C.tjInitDecompress()
	if h == nil {
		return nil, fmt.Errorf("turbojpeg: init: %s", C.GoString(C.tjGetErrorStr2(nil)))
	}
	defer C.tjDestroy(h)
	hd, err := readInfo(h, data)
	if err != nil {
		return nil, err
	}
	if hd.cmyk {
		return nil, fmt.Errorf("%w: a CMYK JPEG", ErrUnsupported)
	}
	w, ht := ScaledSize(hd.width, hd.height, minLong)
	src := (*C.uchar)(unsafe.Pointer(&data[0]))
	n := C.ulong(len(data))
	if hd.gray {
		g := image.NewGray(image.Rect(0, 0, w, ht))
		if C.tjDecompress2(h, src, n, (*C.uchar)(unsafe.Pointer(&g.Pix[0])), C.int(w), C.int(g.Stride), C.int(ht), C.TJPF_GRAY, 0) != 0 {
			return nil, decodeErr(h)
		}
		return g, nil
	}
	ratio, ok := ratios[hd.subsamp]
	if !ok {
		return decodeRGBA(h, data, w, ht)
	}
	y := newPlanes(w, ht, ratio, hd.subsamp)
	if C.decodePlanes(h, src, n,
		(*C.uchar)(unsafe.Pointer(&y.Y[0])), (*C.uchar)(unsafe.Pointer(&y.Cb[0])), (*C.uchar)(unsafe.Pointer(&y.Cr[0])),
		C.int(w), C.int(y.YStride), C.int(y.CStride), C.int(ht)) != 0 {
		return nil, decodeErr(h)
	}
	return y, nil
}

// decodeRGBA decodes to RGBA (opaque): the chroma layouts Go's YCbCr has
// no ratio for.
func decodeRGBA(h C.tjhandle, data []byte, w, ht int) (image.Image, error) {
	m := image.NewRGBA(image.Rect(0, 0, w, ht))
	if C.tjDecompress2(h, (*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)),
		(*C.uchar)(unsafe.Pointer(&m.Pix[0])), C.int(w), C.int(m.Stride), C.int(ht), C.TJPF_RGBA, 0) != 0 {
		return nil, decodeErr(h)
	}
	return m, nil
}

func decodeErr(h C.tjhandle) error {
	return fmt.Errorf("turbojpeg: decode: %s", C.GoString(C.tjGetErrorStr2(h)))
}

// ratios maps TurboJPEG's chroma subsampling to Go's.
var ratios = map[C.int]image.YCbCrSubsampleRatio{
	C.TJSAMP_444: image.YCbCrSubsampleRatio444,
	C.TJSAMP_422: image.YCbCrSubsampleRatio422,
	C.TJSAMP_420: image.YCbCrSubsampleRatio420,
	C.TJSAMP_440: image.YCbCrSubsampleRatio440,
	C.TJSAMP_411: image.YCbCrSubsampleRatio411,
}

// planeSize is the size of plane c (0 luma, 1 and 2 chroma) TurboJPEG
// reads or writes for a w×h image with subsampling sub: the luma plane
// padded to whole chroma samples, so it can be a pixel or three larger
// than the image.
func planeSize(c, w, h int, sub C.int) (int, int) {
	return int(C.tjPlaneWidth(C.int(c), C.int(w), sub)), int(C.tjPlaneHeight(C.int(c), C.int(h), sub))
}

// newPlanes returns a w×h YCbCr image whose planes have TurboJPEG's
// padded sizes (Go reads only the w×h part).
func newPlanes(w, h int, ratio image.YCbCrSubsampleRatio, sub C.int) *image.YCbCr {
	yw, yh := planeSize(0, w, h, sub)
	cw, ch := planeSize(1, w, h, sub)
	buf := make([]byte, yw*yh+2*cw*ch)
	return &image.YCbCr{
		Y: buf[: yw*yh : yw*yh], Cb: buf[yw*yh : yw*yh+cw*ch : yw*yh+cw*ch], Cr: buf[yw*yh+cw*ch:],
		YStride: yw, CStride: cw, SubsampleRatio: ratio, Rect: image.Rect(0, 0, w, h),
	}
}

// planesFit reports whether m's planes are as large as TurboJPEG reads
// for subsampling sub.
func planesFit(m *image.YCbCr, sub C.int) bool {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	yw, yh := planeSize(0, w, h, sub)
	cw, ch := planeSize(1, w, h, sub)
	return m.YStride >= yw && len(m.Y) >= m.YStride*(yh-1)+yw &&
		m.CStride >= cw && len(m.Cb) >= m.CStride*(ch-1)+cw && len(m.Cr) >= m.CStride*(ch-1)+cw
}

// padded copies m into planes of TurboJPEG's sizes, repeating the last
// column and row into the padding as libjpeg does at an image's edge.
func padded(m *image.YCbCr, sub C.int) *image.YCbCr {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	p := newPlanes(w, h, m.SubsampleRatio, sub)
	cw, ch := chroma(m)
	copyPlane(p.Y, p.YStride, len(p.Y)/p.YStride, m.Y, m.YStride, w, h)
	copyPlane(p.Cb, p.CStride, len(p.Cb)/p.CStride, m.Cb, m.CStride, cw, ch)
	copyPlane(p.Cr, p.CStride, len(p.Cr)/p.CStride, m.Cr, m.CStride, cw, ch)
	return p
}

// chroma is the size of m's chroma planes, from Go's own addressing of
// its samples (the last column and row).
func chroma(m *image.YCbCr) (int, int) {
	b := m.Rect
	o := m.COffset(b.Min.X, b.Min.Y)
	return m.COffset(b.Max.X-1, b.Min.Y) - o + 1, (m.COffset(b.Min.X, b.Max.Y-1)-o)/m.CStride + 1
}

// copyPlane copies a w×h plane into dst (stride ds, dh rows), repeating
// the last column and row into the rest of dst.
func copyPlane(dst []byte, ds, dh int, src []byte, ss, w, h int) {
	for y := range dh {
		row := dst[y*ds : y*ds+ds]
		sy := min(y, h-1)
		n := copy(row, src[sy*ss:sy*ss+w])
		for x := n; x < ds; x++ {
			row[x] = row[n-1]
		}
	}
}

// Encode encodes img as a baseline JPEG at quality (1–100): *image.Gray
// as one channel; *image.YCbCr from its planes, keeping its chroma
// layout; *image.RGBA (alpha ignored) as 4:2:0, like Go's encoder. Other
// kinds, and YCbCr layouts TurboJPEG has none for, are ErrUnsupported.
func Encode(img image.Image, quality int) ([]byte, error) {
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, errors.New("turbojpeg: encode: empty image")
	}
	h := C.tjInitCompress()
	if h == nil {
		return nil, fmt.Errorf("turbojpeg: init: %s", C.GoString(C.tjGetErrorStr2(nil)))
	}
	defer C.tjDestroy(h)
	var out *C.uchar
	var size C.ulong
	w, ht, q := C.int(b.Dx()), C.int(b.Dy()), C.int(quality)
	var rc C.int
	switch m := img.(type) {
	case *image.Gray:
		rc = C.tjCompress2(h, (*C.uchar)(unsafe.Pointer(&m.Pix[m.PixOffset(b.Min.X, b.Min.Y)])), w, C.int(m.Stride), ht,
			C.TJPF_GRAY, &out, &size, C.TJSAMP_GRAY, q, 0) //nolint:gocritic // cgo's pointer check expands to x == x
	case *image.RGBA:
		rc = C.tjCompress2(h, (*C.uchar)(unsafe.Pointer(&m.Pix[m.PixOffset(b.Min.X, b.Min.Y)])), w, C.int(m.Stride), ht,
			C.TJPF_RGBA, &out, &size, C.TJSAMP_420, q, 0) //nolint:gocritic // cgo's pointer check expands to x == x
	case *image.YCbCr:
		sub, ok := subsamps[m.SubsampleRatio]
		if !ok || b.Min != (image.Point{}) {
			return nil, fmt.Errorf("%w: YCbCr %v at %v", ErrUnsupported, m.SubsampleRatio, b.Min)
		}
		if !planesFit(m, sub) {
			m = padded(m, sub)
		}
		rc = C.encodePlanes(h, (*C.uchar)(unsafe.Pointer(&m.Y[0])), (*C.uchar)(unsafe.Pointer(&m.Cb[0])), (*C.uchar)(unsafe.Pointer(&m.Cr[0])),
			w, C.int(m.YStride), C.int(m.CStride), ht, sub, &out, &size, q) //nolint:gocritic // cgo's pointer check expands to x == x
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnsupported, img)
	}
	if out != nil {
		defer C.tjFree(out)
	}
	if rc != 0 {
		return nil, fmt.Errorf("turbojpeg: encode: %s", C.GoString(C.tjGetErrorStr2(h)))
	}
	return C.GoBytes(unsafe.Pointer(out), C.int(size)), nil
}

// subsamps is ratios inverted.
var subsamps = func() map[image.YCbCrSubsampleRatio]C.int {
	m := make(map[image.YCbCrSubsampleRatio]C.int, len(ratios))
	for k, v := range ratios {
		m[v] = k
	}
	return m
}()
