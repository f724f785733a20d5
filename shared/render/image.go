package render

import (
	"bytes"
	"image"
	_ "image/gif"  // register GIF
	_ "image/jpeg" // register JPEG (header; the pixels: decodeJPEG)
	_ "image/png"  // register PNG

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
	r, err := openRaster(data, maxPixels)
	if err != nil {
		return Page{}, err
	}
	img, err := r.fitted(t)
	if err != nil {
		return Page{}, err
	}
	p, err := Encode(img)
	p.WidthPt, p.HeightPt = r.size.W, r.size.H
	return p, err
}

// raster is an opened raster image. A JPEG stays encoded until its
// target is known, so it is decoded once, at the smallest DCT scale that
// still covers the target; any other format is decoded when opened (its
// codec has no reduced-scale decoding, and a damaged file is refused at
// once).
type raster struct {
	// img is the decoded image (not a JPEG).
	img image.Image
	// jpeg is the encoded JPEG, its header already checked, and
	// orientation its EXIF orientation.
	jpeg        []byte
	orientation int
	// size is the image's size in points, upright.
	size Size
}

// openRaster checks data's header against maxPixels and opens it.
func openRaster(data []byte, maxPixels int64) (raster, error) {
	cfg, format, err := checkHeader(data, maxPixels)
	if err != nil {
		return raster{}, err
	}
	dpi := resolution(bytes.NewReader(data))
	if format == "jpeg" {
		if jpegTruncated(data) {
			return raster{}, failure.Validation("the jpeg image is damaged: it is truncated (no end-of-image marker after its data)")
		}
		o := jpegOrientation(bytes.NewReader(data))
		return raster{jpeg: data, orientation: o, size: pointSize(cfg.Width, cfg.Height, o, dpi)}, nil
	}
	img, err := decodePixels(data, format, 0)
	if err != nil {
		return raster{}, err
	}
	return raster{img: img, size: pointSize(cfg.Width, cfg.Height, 1, dpi)}, nil
}

// fitted returns the image fitted to t (see fit), decoding a JPEG now.
func (r raster) fitted(t Target) (image.Image, error) {
	if r.jpeg == nil {
		return fit(r.img, t), nil
	}
	img, err := decodePixels(r.jpeg, "jpeg", longSide(t))
	if err != nil {
		return nil, err
	}
	// Scaled first, turned second: same result, far fewer pixels.
	return fit(oriented{img, r.orientation}, t), nil
}

// oriented is a decoded image that still has to be turned upright by its
// EXIF orientation; fit applies it after scaling.
type oriented struct {
	image.Image
	orientation int
}

// checkHeader reads data's image header and refuses it over maxPixels,
// so a decompression bomb is refused before any pixel memory is
// allocated.
func checkHeader(data []byte, maxPixels int64) (image.Config, string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return cfg, "", failure.Validation("the image header is unreadable: %v", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return cfg, "", failure.Validation("the %s image has no pixels (%d×%d)", format, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); maxPixels > 0 && px > maxPixels {
		return cfg, "", failure.Validation("the %s image is %d×%d = %d pixels, more than MAX_IMAGE_PIXELS=%d",
			format, cfg.Width, cfg.Height, px, maxPixels)
	}
	return cfg, format, nil
}

// decodePixels decodes data, whose header checkHeader passed as format:
// a JPEG at the smallest DCT scale whose long side still covers minLong
// (full size when minLong ≤ 0), any other format at full size. EXIF
// orientation is the caller's.
func decodePixels(data []byte, format string, minLong int) (image.Image, error) {
	var img image.Image
	var err error
	if format == "jpeg" {
		img, err = decodeJPEG(data, minLong)
	} else {
		img, _, err = image.Decode(bytes.NewReader(data))
	}
	if err != nil {
		return nil, failure.Validation("the %s image is damaged: %v", format, err)
	}
	return img, nil
}

// DecodeUpright decodes an encoded raster image at its full size,
// refusing one over maxPixels before decoding, and turns it upright by
// its EXIF orientation. It returns the image format's name (png, jpeg, …)
// and whether the stored pixels had to be turned.
func DecodeUpright(data []byte, maxPixels int64) (img image.Image, format string, turned bool, err error) {
	_, format, err = checkHeader(data, maxPixels)
	if err != nil {
		return nil, "", false, err
	}
	img, err = decodePixels(data, format, 0)
	if err != nil {
		return nil, "", false, err
	}
	if format == "jpeg" {
		o := jpegOrientation(bytes.NewReader(data))
		return orient(img, o), format, o > 1, nil
	}
	return img, format, false, nil
}
