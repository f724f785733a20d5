package searchpdf

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"

	"github.com/ocrflow/ocrflow/shared/render"
)

// maxImagePixels bounds a page picture decoded for the PDF (the source
// passed MAX_IMAGE_PIXELS when convert read it).
const maxImagePixels = 1 << 30

// pdfImage returns a page picture as fpdf embeds it: a JPEG or PNG as it
// is when the PDF can hold it unchanged (a JPEG stored upright; an 8-bit,
// non-interlaced PNG), else decoded, turned upright and encoded again —
// as JPEG (quality 92) when it was a lossy photo format, as PNG otherwise.
func pdfImage(data []byte) (out []byte, typ string, err error) {
	_, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("picture: %w", err)
	}
	switch format {
	case "png":
		if pngAsIs(data) {
			return data, "PNG", nil
		}
	case "jpeg":
		// A JPEG that must be turned is decoded below; one stored upright
		// goes in unchanged.
		if render.JPEGOrientation(data) == 1 {
			return data, "JPG", nil
		}
	}
	img, format, _, err := render.DecodeUpright(data, maxImagePixels)
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	switch format {
	case "jpeg", "webp", "avif", "heic", "heif":
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92}); err != nil {
			return nil, "", fmt.Errorf("picture: %w", err)
		}
		return buf.Bytes(), "JPG", nil
	}
	if err := png.Encode(&buf, eightBit(img)); err != nil {
		return nil, "", fmt.Errorf("picture: %w", err)
	}
	return buf.Bytes(), "PNG", nil
}

// pngAsIs reports whether fpdf embeds a PNG unchanged: 8 bits per channel
// or fewer, not interlaced (IHDR: bit depth at byte 24, interlace at 28).
func pngAsIs(data []byte) bool {
	return len(data) > 28 && string(data[12:16]) == "IHDR" && data[24] <= 8 && data[28] == 0
}

// eightBit returns img with 8 bits per channel (png.Encode writes 16-bit
// images as 16-bit PNGs, which fpdf cannot embed).
func eightBit(img image.Image) image.Image {
	switch img.ColorModel() {
	case color.Gray16Model:
		g := image.NewGray(img.Bounds())
		draw.Draw(g, g.Bounds(), img, img.Bounds().Min, draw.Src)
		return g
	case color.RGBA64Model, color.NRGBA64Model:
		n := image.NewNRGBA(img.Bounds())
		draw.Draw(n, n.Bounds(), img, img.Bounds().Min, draw.Src)
		return n
	}
	return img
}
