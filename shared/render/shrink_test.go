package render

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stripes is a w×h picture of vertical stripes two pixels wide, black
// and white, in the kind of image make returns.
func stripes(w, h int, set func(x, y int, v uint8)) {
	for y := range h {
		for x := range w {
			v := uint8(0)
			if x/2%2 == 1 {
				v = 255
			}
			set(x, y, v)
		}
	}
}

func TestShrink_keeps_the_kind_of_image_and_averages_areas(t *testing.T) {
	const w, h = 64, 48
	gray := image.NewGray(image.Rect(0, 0, w, h))
	stripes(w, h, func(x, y int, v uint8) { gray.SetGray(x, y, color.Gray{Y: v}) })
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	stripes(w, h, func(x, y int, v uint8) { rgba.SetRGBA(x, y, color.RGBA{R: v, G: v, B: v, A: 255}) })
	ycc := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	stripes(w, h, func(x, y int, v uint8) { ycc.Y[y*ycc.YStride+x] = v })
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = 128, 128
	}
	pal := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.Black, color.White})
	stripes(w, h, func(x, y int, v uint8) { pal.SetColorIndex(x, y, v&1) })
	for _, tc := range []struct {
		name string
		src  image.Image
		want string // the kind shrink returns
	}{
		{name: "gray_stays_gray", src: gray, want: "*image.Gray"},
		{name: "rgba_stays_rgba", src: rgba, want: "*image.RGBA"},
		{name: "jpeg_ycbcr_stays_ycbcr", src: ycc, want: "*image.YCbCr"},
		{name: "other_kinds_become_rgba", src: pal, want: "*image.RGBA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Stripes two pixels wide, shrunk by four: every output
			// pixel covers one black and one white stripe.
			got := shrink(tc.src, w/4, h/4)
			assert.Equal(t, tc.want, typeName(got))
			require.Equal(t, image.Rect(0, 0, w/4, h/4), got.Bounds())
			for y := range h / 4 {
				for x := range w / 4 {
					r, g, b, _ := got.At(x, y).RGBA()
					assert.InDelta(t, 127.5, float64(r>>8), 1, "(%d,%d) red", x, y)
					assert.InDelta(t, float64(r>>8), float64(g>>8), 1, "(%d,%d) green", x, y)
					assert.InDelta(t, float64(r>>8), float64(b>>8), 1, "(%d,%d) blue", x, y)
				}
			}
		})
	}
	t.Run("fractional_reduction_keeps_flat_areas_exact", func(t *testing.T) {
		src := image.NewGray(image.Rect(0, 0, 1265, 1772))
		for i := range src.Pix {
			src.Pix[i] = 200
		}
		got := shrink(src, 731, 1024).(*image.Gray)
		for _, v := range got.Pix {
			require.Equal(t, uint8(200), v)
		}
	})
	t.Run("no_larger_is_no_change", func(t *testing.T) {
		assert.Same(t, gray, shrink(gray, w, h))
	})
}

func typeName(img image.Image) string {
	switch img.(type) {
	case *image.Gray:
		return "*image.Gray"
	case *image.RGBA:
		return "*image.RGBA"
	case *image.YCbCr:
		return "*image.YCbCr"
	}
	return "other"
}

func TestEncode_gray_content_is_encoded_gray(t *testing.T) {
	colour := image.NewYCbCr(image.Rect(0, 0, 32, 32), image.YCbCrSubsampleRatio420)
	for i := range colour.Cb {
		colour.Cb[i], colour.Cr[i] = 128, 128
	}
	tinted := image.NewYCbCr(image.Rect(0, 0, 32, 32), image.YCbCrSubsampleRatio420)
	for i := range tinted.Cb {
		tinted.Cb[i], tinted.Cr[i] = 120, 140
	}
	for _, tc := range []struct {
		name string
		img  image.Image
		gray bool
	}{
		{name: "colourless_ycbcr_is_gray", img: colour, gray: true},
		{name: "tinted_ycbcr_stays_colour", img: tinted, gray: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Encode(tc.img)
			require.NoError(t, err)
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(p.Data))
			require.NoError(t, err)
			assert.Equal(t, tc.gray, cfg.ColorModel == color.GrayModel, "colour model %v", cfg.ColorModel)
		})
	}
}
