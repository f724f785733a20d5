//go:build !cgo

package render

import (
	"image"
)

// decodeJPEG decodes a JPEG at full size with Go's decoder: without cgo
// there is no libjpeg-turbo, and no reduced-scale decoding.
func decodeJPEG(data []byte, _ int) (image.Image, error) {
	return decodeJPEGGo(data)
}

// encodeJPEG encodes img with Go's encoder (without cgo, no libjpeg-turbo).
func encodeJPEG(img image.Image, quality int) ([]byte, error) {
	return encodeJPEGGo(img, quality)
}
