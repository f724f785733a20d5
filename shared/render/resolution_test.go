package render_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/render"
)

// withPHYs inserts a pHYs chunk (pixels per metre) after a PNG's IHDR.
func withPHYs(t *testing.T, pngData []byte, ppmX, ppmY uint32, unit byte) []byte {
	t.Helper()
	const ihdrEnd = 8 + 8 + 13 + 4
	data := make([]byte, 9)
	binary.BigEndian.PutUint32(data, ppmX)
	binary.BigEndian.PutUint32(data[4:], ppmY)
	data[8] = unit
	chunk := binary.BigEndian.AppendUint32(nil, 9)
	chunk = append(chunk, "pHYs"...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	out := append([]byte{}, pngData[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, pngData[ihdrEnd:]...)
}

// withJFIF inserts a JFIF APP0 segment with the given density after a
// JPEG's SOI.
func withJFIF(jpg []byte, units byte, x, y uint16) []byte {
	seg := []byte{0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, units}
	seg = binary.BigEndian.AppendUint16(seg, x)
	seg = binary.BigEndian.AppendUint16(seg, y)
	seg = append(seg, 0, 0)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

func TestPageSize_in_points(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 300, 150))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	img.Set(10, 10, color.Black)
	var pngBuf, jpgBuf bytes.Buffer
	require.NoError(t, png.Encode(&pngBuf, img))
	require.NoError(t, jpeg.Encode(&jpgBuf, img, nil))
	for _, tc := range []struct {
		name         string
		data         []byte
		wantW, wantH float64
	}{
		{"png_without_resolution_is_72_dpi", pngBuf.Bytes(), 300, 150},
		{"png_at_300_dpi", withPHYs(t, pngBuf.Bytes(), 11811, 11811, 1), 72, 36},
		{"png_with_unitless_phys_is_72_dpi", withPHYs(t, pngBuf.Bytes(), 11811, 11811, 0), 300, 150},
		{"png_with_absurd_resolution_is_72_dpi", withPHYs(t, pngBuf.Bytes(), 1, 1, 1), 300, 150},
		{"jpeg_without_jfif_is_72_dpi", jpgBuf.Bytes(), 300, 150},
		{"jpeg_at_150_dpi", withJFIF(jpgBuf.Bytes(), 1, 150, 150), 144, 72},
		{"jpeg_in_dots_per_cm", withJFIF(jpgBuf.Bytes(), 2, 100, 100), 85.04, 42.52},
		{"jpeg_aspect_ratio_only_is_72_dpi", withJFIF(jpgBuf.Bytes(), 0, 1, 1), 300, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := render.FromImage(tc.data, render.Target{LongSide: 100}, 0)
			require.NoError(t, err, "FromImage")
			assert.Equal(t, 100, p.Width, "pixels follow the target")
			assert.InDelta(t, tc.wantW, p.WidthPt, 0.01, "width in points")
			assert.InDelta(t, tc.wantH, p.HeightPt, 0.01, "height in points")

			path := filepath.Join(t.TempDir(), "img")
			require.NoError(t, os.WriteFile(path, tc.data, 0o600))
			d, err := render.Open(context.Background(), path, render.Limits{})
			require.NoError(t, err)
			defer func() { assert.NoError(t, d.Close()) }()
			p, err = d.Render(context.Background(), 1, render.Target{DPI: 144})
			require.NoError(t, err, "Render")
			assert.InDelta(t, tc.wantW, p.WidthPt, 0.01, "width in points, opened as a document")
			assert.InDelta(t, tc.wantH, p.HeightPt, 0.01, "height in points, opened as a document")
		})
	}
}

func TestRender_reports_the_page_size_in_points(t *testing.T) {
	for _, tc := range []struct {
		name         string
		file         string
		target       render.Target
		wantW, wantH float64
	}{
		{"born_digital_a4", "report.pdf", render.Target{LongSide: 1024}, 595, 842},
		{"scanned_a4_at_144_dpi", "scanned.pdf", render.Target{DPI: 144}, 595, 842},
		{"png_stating_150_dpi", "page.png", render.Target{LongSide: 1024}, 595.15, 842.33}, // pHYs says 5906 px/m: 150.01 dpi
		{"jpeg_stating_150_dpi", "page.jpg", render.Target{DPI: 144}, 595.2, 842.4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := render.Open(context.Background(), testdata+tc.file, render.Limits{})
			require.NoError(t, err)
			defer func() { assert.NoError(t, d.Close()) }()
			p, err := d.Render(context.Background(), 1, tc.target)
			require.NoError(t, err)
			assert.InDelta(t, tc.wantW, p.WidthPt, 0.01, "width in points")
			assert.InDelta(t, tc.wantH, p.HeightPt, 0.01, "height in points")
			assert.InDelta(t, p.WidthPt/p.HeightPt, float64(p.Width)/float64(p.Height), 0.01, "the image has the page's aspect")
		})
	}
}
