package render_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/render"
)

// withOrientation returns a JPEG of a w×h image, black in its top-left
// quarter, carrying an EXIF orientation tag.
func withOrientation(t *testing.T, w, h, orientation int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := uint8(255)
			if x < w/2 && y < h/2 {
				c = 0
			}
			img.SetGray(x, y, color.Gray{c})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}))
	// APP1 Exif: big-endian TIFF header, IFD0 with one SHORT entry 0x0112.
	tiff := []byte("MM\x00\x2a\x00\x00\x00\x08")
	ifd := make([]byte, 2+12+4)
	binary.BigEndian.PutUint16(ifd[0:], 1)
	binary.BigEndian.PutUint16(ifd[2:], 0x0112)
	binary.BigEndian.PutUint16(ifd[4:], 3)
	binary.BigEndian.PutUint32(ifd[6:], 1)
	binary.BigEndian.PutUint16(ifd[10:], uint16(orientation))
	payload := append(append([]byte("Exif\x00\x00"), tiff...), ifd...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	b := buf.Bytes()
	return append(append(append([]byte{}, b[:2]...), append(seg, payload...)...), b[2:]...)
}

func TestEXIF_orientation_turns_photos_upright(t *testing.T) {
	for _, tc := range []struct {
		name        string
		orientation int
		wantW       int
		// where the black quarter must end up: top-left, top-right…
		darkX, darkY int
	}{
		{"upright", 1, 200, 10, 10},
		{"rotated_180", 3, 200, 190, 90},
		{"rotated_90_clockwise", 6, 100, 90, 10},
		{"rotated_90_counter_clockwise", 8, 100, 10, 190},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := withOrientation(t, 200, 100, tc.orientation)
			path := filepath.Join(t.TempDir(), "photo.jpg")
			require.NoError(t, os.WriteFile(path, data, 0o644))
			doc, err := render.Open(context.Background(), path, render.Limits{})
			require.NoError(t, err)
			defer func() { assert.NoError(t, doc.Close()) }()
			for _, page := range []func() (render.Page, error){
				func() (render.Page, error) { return doc.Render(context.Background(), 1, render.Target{LongSide: 1024}) },
				func() (render.Page, error) { return render.FromImage(data, render.Target{LongSide: 1024}, 0) },
			} {
				p, err := page()
				require.NoError(t, err)
				img, err := jpeg.Decode(bytes.NewReader(p.Data))
				require.NoError(t, err)
				require.Equal(t, tc.wantW, img.Bounds().Dx(), "width")
				r, _, _, _ := img.At(tc.darkX, tc.darkY).RGBA()
				assert.LessOrEqual(t, r, uint32(0x4000), "pixel (%d,%d) is light: the image was not turned upright", tc.darkX, tc.darkY)
			}
		})
	}
}
