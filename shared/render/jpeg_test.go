package render

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJPEGTruncated_finds_a_missing_end_of_image(t *testing.T) {
	whole := func(w, h int) []byte {
		var b bytes.Buffer
		img := image.NewGray(image.Rect(0, 0, w, h))
		for i := range img.Pix {
			img.Pix[i] = uint8(i * 7)
		}
		require.NoError(t, jpeg.Encode(&b, img, nil))
		return b.Bytes()
	}
	page, thumb := whole(200, 300), whole(16, 16)
	// withThumbnail puts a complete JPEG (its own SOS and EOI) inside an
	// APP1 segment after the SOI, as EXIF thumbnails are stored.
	withThumbnail := func(main []byte) []byte {
		seg := append([]byte{0xFF, 0xE1, 0, 0}, thumb...)
		binary.BigEndian.PutUint16(seg[2:], uint16(len(seg)-2))
		return append(append([]byte{0xFF, 0xD8}, seg...), main[2:]...)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want bool
	}{
		{name: "complete", data: page, want: false},
		{name: "padding_after_the_end", data: append(append([]byte{}, page...), 0, 0, 0, 0), want: false},
		{name: "cut_in_the_scan", data: page[:len(page)-40], want: true},
		{name: "cut_in_the_header", data: page[:100], want: true},
		{name: "thumbnail_complete_main_image_complete", data: withThumbnail(page), want: false},
		{name: "thumbnail_complete_main_image_cut", data: withThumbnail(page[:len(page)-40]), want: true},
		{name: "not_a_jpeg_is_left_to_the_decoder", data: []byte("GIF89a...."), want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, jpegTruncated(tc.data))
		})
	}
}
