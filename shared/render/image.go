package render

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	_ "image/gif"  // register GIF
	_ "image/jpeg" // register JPEG
	_ "image/png"  // register PNG
	"io"
	"os"

	_ "github.com/gen2brain/avif" // register AVIF (libavif as WebAssembly, or the system's libavif)
	_ "github.com/gen2brain/heic" // register HEIC (libheif as WebAssembly, or the system's libheif)
	_ "golang.org/x/image/bmp"    // register BMP
	_ "golang.org/x/image/webp"   // register WebP

	"github.com/ocrflow/ocrflow/shared/failure"
)

// FromImage decodes an encoded raster image (PNG, JPEG, GIF, BMP, WebP,
// AVIF, HEIC), refusing one over maxPixels before decoding, fits it to t
// and encodes it like a rendered page. The page's size in points is the
// image's at the resolution it states (72 dpi when none).
func FromImage(data []byte, t Target, maxPixels int64) (Page, error) {
	img, err := decode(bytes.NewReader(data), maxPixels)
	if err != nil {
		return Page{}, err
	}
	p, err := Encode(fit(img, t))
	size := imageSize(img, resolution(bytes.NewReader(data)))
	p.WidthPt, p.HeightPt = size.W, size.H
	return p, err
}

// oriented is a decoded image that still has to be turned upright by its
// EXIF orientation; fit applies it after scaling.
type oriented struct {
	image.Image
	orientation int
}

// decodeImage decodes a raster image after checking its header dimensions
// against maxPixels, so a decompression bomb is refused before any pixel
// memory is allocated.
func decodeImage(path string, maxPixels int64) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: nothing is lost
	return decode(f, maxPixels)
}

// decode checks r's header against maxPixels, then decodes it.
func decode(r io.ReadSeeker, maxPixels int64) (image.Image, error) {
	cfg, format, err := image.DecodeConfig(bufio.NewReader(r))
	if err != nil {
		return nil, failure.Validation("the image header is unreadable: %v", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, failure.Validation("the %s image has no pixels (%d×%d)", format, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); maxPixels > 0 && px > maxPixels {
		return nil, failure.Validation("the %s image is %d×%d = %d pixels, more than MAX_IMAGE_PIXELS=%d",
			format, cfg.Width, cfg.Height, px, maxPixels)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind image: %w", err)
	}
	img, _, err := image.Decode(bufio.NewReader(r))
	if err != nil {
		return nil, failure.Validation("the %s image is damaged: %v", format, err)
	}
	if format == "jpeg" {
		if _, err := r.Seek(0, io.SeekStart); err == nil {
			// Scaled first, turned second: same result, far fewer pixels.
			return oriented{img, jpegOrientation(bufio.NewReader(r))}, nil
		}
	}
	return img, nil
}

// DecodeUpright decodes an encoded raster image at its full size,
// refusing one over maxPixels before decoding, and turns it upright by
// its EXIF orientation. It returns the image format's name (png, jpeg, …)
// and whether the stored pixels had to be turned.
func DecodeUpright(data []byte, maxPixels int64) (img image.Image, format string, turned bool, err error) {
	_, format, err = image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, "", false, failure.Validation("the image header is unreadable: %v", err)
	}
	img, err = decode(bytes.NewReader(data), maxPixels)
	if err != nil {
		return nil, "", false, err
	}
	if o, ok := img.(oriented); ok {
		return orient(o.Image, o.orientation), format, o.orientation > 1, nil
	}
	return img, format, false, nil
}
