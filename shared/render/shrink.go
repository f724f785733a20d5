package render

import (
	"image"
	"image/draw"
)

// shrink scales src down to w×h (each no larger than src's) by area
// averaging: every output pixel is the mean of the source area it covers,
// partial pixels weighted by their share. It is a box filter of exactly
// the reduction's width — for shrinking, where a page image loses detail
// anyway, as sharp as Catmull-Rom to a reader (and to a model), at a
// tenth of the cost: two passes of a few integer multiply-adds per source
// pixel.
//
// The kind of image is kept: gray stays one channel, a JPEG's YCbCr
// stays YCbCr (its chroma planes shrunk at their own, smaller size, so no
// colour conversion happens at all), RGBA stays RGBA. Any other kind is
// drawn into RGBA first.
func shrink(src image.Image, w, h int) image.Image {
	b := src.Bounds()
	if w >= b.Dx() && h >= b.Dy() {
		return src
	}
	switch s := src.(type) {
	case *image.Gray:
		dst := image.NewGray(image.Rect(0, 0, w, h))
		shrinkPlane(s.Pix[s.PixOffset(b.Min.X, b.Min.Y):], s.Stride, b.Dx(), b.Dy(), 1, dst.Pix, dst.Stride, w, h)
		return dst
	case *image.YCbCr:
		if b.Min == (image.Point{}) {
			dst := image.NewYCbCr(image.Rect(0, 0, w, h), s.SubsampleRatio)
			shrinkPlane(s.Y, s.YStride, b.Dx(), b.Dy(), 1, dst.Y, dst.YStride, w, h)
			cw, ch := chromaSize(s.Rect, s.SubsampleRatio)
			dw, dh := chromaSize(dst.Rect, dst.SubsampleRatio)
			shrinkPlane(s.Cb, s.CStride, cw, ch, 1, dst.Cb, dst.CStride, dw, dh)
			shrinkPlane(s.Cr, s.CStride, cw, ch, 1, dst.Cr, dst.CStride, dw, dh)
			return dst
		}
	case *image.RGBA:
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		shrinkPlane(s.Pix[s.PixOffset(b.Min.X, b.Min.Y):], s.Stride, b.Dx(), b.Dy(), 4, dst.Pix, dst.Stride, w, h)
		return dst
	}
	rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(rgba, rgba.Rect, src, b.Min, draw.Src)
	return shrink(rgba, w, h)
}

// chromaSize is the size of the chroma planes of a YCbCr image of rect
// with ratio r (image.NewYCbCr's rounding).
func chromaSize(rect image.Rectangle, r image.YCbCrSubsampleRatio) (int, int) {
	w, h := rect.Dx(), rect.Dy()
	switch r {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return w, h
}

// weightBits is the fixed-point precision of the weights.
const weightBits = 14

// taps says, for each of n outputs, which source pixels it averages and
// with what weights: output i averages sources first[i] … first[i]+width-1
// with weights[i*width:(i+1)*width] (summing to 1<<weightBits; unused
// taps weigh 0).
type taps struct {
	first   []int
	weights []int32
	width   int
}

// areaTaps returns the taps of n outputs covering src source pixels.
func areaTaps(src, n int) taps {
	scale := float64(src) / float64(n)
	t := taps{first: make([]int, n), width: int(scale) + 2}
	t.weights = make([]int32, n*t.width)
	for i := range n {
		lo, hi := float64(i)*scale, float64(i+1)*scale
		first := int(lo)
		last := min(src-1, int(hi-1e-9))
		ws := t.weights[i*t.width : (i+1)*t.width]
		total, big := int32(0), 0
		for k := first; k <= last; k++ {
			cover := min(hi, float64(k+1)) - max(lo, float64(k))
			ws[k-first] = int32(cover/scale*(1<<weightBits) + 0.5)
			total += ws[k-first]
			if ws[k-first] > ws[big] {
				big = k - first
			}
		}
		ws[big] += 1<<weightBits - total // rounding: the weights sum exactly to one
		t.first[i] = first
	}
	return t
}

// shrinkPlane area-averages an sw×sh plane of n interleaved 8-bit
// channels into a dw×dh one, one output row at a time: the source rows
// it covers are summed (weighted) into one row of extra precision, which
// is then averaged across.
func shrinkPlane(src []uint8, sstride, sw, sh, n int, dst []uint8, dstride, dw, dh int) {
	xt, yt := areaTaps(sw, dw), areaTaps(sh, dh)
	acc := make([]int32, sw*n)
	// row holds the column sums at 6 extra bits, padded for the unused
	// taps of the last outputs.
	row := make([]int32, (sw+xt.width)*n)
	for y := range dh {
		clear(acc)
		first := yt.first[y]
		for k, wgt := range yt.weights[y*yt.width : (y+1)*yt.width] {
			if wgt == 0 {
				continue
			}
			in := src[(first+k)*sstride : (first+k)*sstride+sw*n]
			for i, v := range in {
				acc[i] += wgt * int32(v)
			}
		}
		for i, a := range acc {
			row[i] = (a + 1<<7) >> 8
		}
		out := dst[y*dstride : y*dstride+dw*n]
		w := xt.width
		if n == 1 {
			for x := range dw {
				ws := xt.weights[x*w : (x+1)*w]
				in := row[xt.first[x] : xt.first[x]+w]
				sum := int32(1 << (weightBits + 5))
				for k, wgt := range ws {
					sum += wgt * in[k]
				}
				out[x] = uint8(min(255, sum>>(weightBits+6)))
			}
			continue
		}
		for x := range dw {
			ws := xt.weights[x*w : (x+1)*w]
			base := xt.first[x] * n
			for c := range n {
				sum := int32(1 << (weightBits + 5))
				for k, wgt := range ws {
					sum += wgt * row[base+k*n+c]
				}
				out[x*n+c] = uint8(min(255, sum>>(weightBits+6)))
			}
		}
	}
}
