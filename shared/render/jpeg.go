package render

import (
	"bytes"
	"image"
	"image/jpeg"
)

// jpegQuality is the quality every page image is encoded at.
const jpegQuality = 90

// decodeJPEGGo decodes a JPEG with Go's image/jpeg.
func decodeJPEGGo(data []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(data)) }

// encodeJPEGGo encodes img with Go's image/jpeg.
func encodeJPEGGo(img image.Image, quality int) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// jpegTruncated reports whether a JPEG ends before its end-of-image
// marker: the segments from its start are walked to the image's first
// scan (an EXIF thumbnail's markers lie inside a segment and are
// skipped), and no EOI follows. Entropy-coded data never holds the EOI's
// bytes, so this is exact for the files Go's decoder and libjpeg-turbo
// both refuse, at the cost of one byte scan; a header it cannot walk is
// left to the decoder.
func jpegTruncated(data []byte) bool {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return false
	}
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xFF {
			return false
		}
		marker := data[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		if marker == 0xDA {
			return !bytes.Contains(data[i:], []byte{0xFF, 0xD9})
		}
		i += 2 + (int(data[i+2])<<8 | int(data[i+3]))
	}
	return true
}
