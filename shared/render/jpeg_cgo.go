//go:build cgo

package render

import (
	"errors"
	"image"

	"github.com/ocrflow/ocrflow/shared/turbojpeg"
)

// decodeJPEG decodes a JPEG with libjpeg-turbo, at the smallest DCT scale
// whose long side still covers minLong (full size when minLong ≤ 0); what
// TurboJPEG does not take (CMYK) goes to Go's decoder.
func decodeJPEG(data []byte, minLong int) (image.Image, error) {
	img, err := turbojpeg.Decode(data, minLong)
	if errors.Is(err, turbojpeg.ErrUnsupported) {
		return decodeJPEGGo(data)
	}
	return img, err
}

// encodeJPEG encodes img with libjpeg-turbo (four to eight times faster
// than Go's encoder, docs/performance.md); what TurboJPEG does not take
// goes to Go's encoder.
func encodeJPEG(img image.Image, quality int) ([]byte, error) {
	data, err := turbojpeg.Encode(img, quality)
	if errors.Is(err, turbojpeg.ErrUnsupported) {
		return encodeJPEGGo(img, quality)
	}
	return data, err
}
