//go:build cgo

package turbojpeg_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/turbojpeg"
)

// page draws a w×h test picture: dark bars on paper, coloured unless gray.
func page(w, h int, gray bool) image.Image {
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{250, 246, 235, 255}
			if (y/16)%3 == 0 && x%97 < 80 {
				c = color.RGBA{20, 30, 120, 255}
			}
			if gray {
				v := uint8((int(c.R) + int(c.G) + int(c.B)) / 3)
				c = color.RGBA{v, v, v, 255}
			}
			rgba.SetRGBA(x, y, c)
		}
	}
	if !gray {
		return rgba
	}
	g := image.NewGray(rgba.Rect)
	for i := range g.Pix {
		g.Pix[i] = rgba.Pix[i*4]
	}
	return g
}

// encodeGo encodes img with Go's encoder: the independent reference.
func encodeGo(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}))
	return b.Bytes()
}

// meanAbsDiff is the mean absolute difference of a and b's gray values.
func meanAbsDiff(t *testing.T, a, b image.Image) float64 {
	t.Helper()
	require.Equal(t, a.Bounds().Size(), b.Bounds().Size(), "sizes")
	var sum float64
	ab, bb := a.Bounds(), b.Bounds()
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			ga := color.GrayModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y)).(color.Gray).Y
			gb := color.GrayModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.Gray).Y
			sum += max(float64(ga)-float64(gb), float64(gb)-float64(ga))
		}
	}
	return sum / float64(ab.Dx()*ab.Dy())
}

func TestDecode_reads_what_Go_encodes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		img      image.Image
		wantKind image.Image
	}{
		{name: "gray_page_decodes_to_one_channel", img: page(300, 420, true), wantKind: &image.Gray{}},
		{name: "colour_page_decodes_to_its_ycbcr_planes", img: page(300, 420, false), wantKind: &image.YCbCr{}},
		{name: "odd_sizes_keep_their_chroma_rounding", img: page(301, 419, false), wantKind: &image.YCbCr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := encodeGo(t, tc.img)
			got, err := turbojpeg.Decode(data, 0)
			require.NoError(t, err)
			assert.IsType(t, tc.wantKind, got)
			ref, err := jpeg.Decode(bytes.NewReader(data))
			require.NoError(t, err)
			// Two correct IDCTs of one stream differ by rounding only.
			assert.Less(t, meanAbsDiff(t, ref, got), 1.0, "turbojpeg's pixels against Go's decoder's")
		})
	}
}

func TestDecode_scales_in_the_DCT_domain_to_the_smallest_size_that_covers_the_target(t *testing.T) {
	data := encodeGo(t, page(1265, 1772, false))
	for _, tc := range []struct {
		name         string
		minLong      int
		wantW, wantH int
	}{
		{name: "no_target_is_full_size", minLong: 0, wantW: 1265, wantH: 1772},
		{name: "model_size_1024_decodes_at_5_8", minLong: 1024, wantW: 791, wantH: 1108},
		{name: "half_size_exactly", minLong: 886, wantW: 633, wantH: 886},
		{name: "small_thumbnail_at_1_8", minLong: 100, wantW: 159, wantH: 222},
		{name: "target_above_the_image_is_full_size", minLong: 4096, wantW: 1265, wantH: 1772},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := turbojpeg.Decode(data, tc.minLong)
			require.NoError(t, err)
			assert.Equal(t, image.Pt(tc.wantW, tc.wantH), got.Bounds().Size())
			w, h := turbojpeg.ScaledSize(1265, 1772, tc.minLong)
			assert.Equal(t, image.Pt(tc.wantW, tc.wantH), image.Pt(w, h), "ScaledSize agrees with Decode")
		})
	}
}

func TestDecode_refuses_damaged_data(t *testing.T) {
	whole := encodeGo(t, page(400, 500, false))
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{name: "empty", data: nil},
		{name: "not_a_jpeg", data: []byte("%PDF-1.7 not an image at all")},
		{name: "truncated_mid_scan", data: whole[:len(whole)/2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := turbojpeg.Decode(tc.data, 0)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "turbojpeg")
		})
	}
}

func TestEncode_round_trips_every_kind_it_takes(t *testing.T) {
	ycc, err := jpeg.Decode(bytes.NewReader(encodeGo(t, page(333, 444, false))))
	require.NoError(t, err)
	require.IsType(t, &image.YCbCr{}, ycc)
	// image.NewYCbCr's planes are exactly the image's size, narrower
	// than TurboJPEG's padded ones at odd sizes.
	oddYCC := image.NewYCbCr(image.Rect(0, 0, 301, 419), image.YCbCrSubsampleRatio420)
	for i := range oddYCC.Y {
		oddYCC.Y[i] = uint8(i % 251)
	}
	for i := range oddYCC.Cb {
		oddYCC.Cb[i], oddYCC.Cr[i] = 100, 160
	}
	require.Equal(t, 301, oddYCC.YStride)
	sub := page(500, 600, false).(*image.RGBA).SubImage(image.Rect(10, 20, 310, 420))
	for _, tc := range []struct {
		name     string
		img      image.Image
		wantGray bool
	}{
		{name: "gray_is_one_channel", img: page(320, 400, true), wantGray: true},
		{name: "rgba_is_colour", img: page(320, 400, false)},
		{name: "rgba_sub_image_starts_at_its_origin", img: sub},
		{name: "ycbcr_from_its_planes", img: ycc},
		{name: "ycbcr_of_odd_size_is_padded_first", img: oddYCC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := turbojpeg.Encode(tc.img, 90)
			require.NoError(t, err)
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
			require.NoError(t, err, "Go's decoder reads it")
			assert.Equal(t, tc.img.Bounds().Dx(), cfg.Width)
			assert.Equal(t, tc.img.Bounds().Dy(), cfg.Height)
			assert.Equal(t, tc.wantGray, cfg.ColorModel == color.GrayModel, "gray stays gray, colour stays colour")
			back, err := jpeg.Decode(bytes.NewReader(data))
			require.NoError(t, err)
			assert.Less(t, meanAbsDiff(t, tc.img, back), 3.0, "quality 90 keeps the picture")
		})
	}
}

func TestEncode_refuses_kinds_it_has_no_format_for(t *testing.T) {
	_, err := turbojpeg.Encode(image.NewNRGBA64(image.Rect(0, 0, 8, 8)), 90)
	require.ErrorIs(t, err, turbojpeg.ErrUnsupported)
	_, err = turbojpeg.Encode(image.NewGray(image.Rect(0, 0, 0, 0)), 90)
	require.Error(t, err)
}

// BenchmarkDecode compares a photo's decode to the model's size: Go's
// full-size decode against TurboJPEG's at 5/8.
//
//	go test -run '^$' -bench . ./shared/turbojpeg/
func BenchmarkDecode(b *testing.B) {
	img := page(1265, 1772, false)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.Run("go_full_size", func(b *testing.B) {
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("turbojpeg_full_size", func(b *testing.B) {
		for b.Loop() {
			if _, err := turbojpeg.Decode(data, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("turbojpeg_at_1024", func(b *testing.B) {
		for b.Loop() {
			if _, err := turbojpeg.Decode(data, 1024); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEncode compares encoding a 1024 px page: Go's encoder against
// TurboJPEG's, gray and colour.
func BenchmarkEncode(b *testing.B) {
	for _, gray := range []bool{true, false} {
		img := page(731, 1024, gray)
		name := map[bool]string{true: "gray", false: "colour"}[gray]
		b.Run(name+"/go", func(b *testing.B) {
			for b.Loop() {
				if err := jpeg.Encode(&bytes.Buffer{}, img, &jpeg.Options{Quality: 90}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/turbojpeg", func(b *testing.B) {
			for b.Loop() {
				if _, err := turbojpeg.Encode(img, 90); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
