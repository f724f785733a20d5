package engine

import (
	"fmt"
	"image"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/render"
)

// BenchmarkEncode measures the wire formats for a page the engine must
// resize (640 px: DeepSeek's small mode; 1024 px): size on the wire, encode
// time and the grain share encodeImage decides by, for every sample.
// docs/engines.md ("Image format") records the numbers behind
// encodeImage's choice of JPEG.
//
//	go test -run '^$' -bench Encode -benchtime 20x ./shared/engine/
func BenchmarkEncode(b *testing.B) {
	for _, src := range []struct{ name, file string }{
		{"born_digital", "report.pdf"},
		{"scanned", "scanned.pdf"},
		{"scan_with_ocr_layer", "scanned_ocrlayer.pdf"},
		{"page_png", "page.png"},
		{"page_jpg", "page.jpg"},
	} {
		doc, err := render.Open(b.Context(), filepath.Join("..", "..", "testdata", src.file), render.Limits{})
		require.NoError(b, err, src.file)
		p, err := doc.Render(b.Context(), 1, render.Target{LongSide: 1600})
		require.NoError(b, err, src.file)
		require.NoError(b, doc.Close(), src.file)
		pi, err := loadPage(p.Data)
		require.NoError(b, err, src.file)
		img, err := pi.decoded()
		require.NoError(b, err, src.file)
		for _, long := range []int{640, 1024} {
			small := fitInto(img, long, long)
			for _, f := range []struct {
				name string
				enc  func(image.Image) ([]byte, error)
			}{
				{"jpeg", func(m image.Image) ([]byte, error) { p, err := render.Encode(m); return p.Data, err }},
				{"png", encodePNG},
				{"auto", func(m image.Image) ([]byte, error) { d, _, err := encodeImage(m); return d, err }},
			} {
				b.Run(fmt.Sprintf("%s/%dpx/%s", src.name, long, f.name), func(b *testing.B) {
					var out []byte
					for b.Loop() {
						var err error
						if out, err = f.enc(small); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(len(out))/1024, "KiB")
					b.ReportMetric(grain(small), "grain")
				})
			}
		}
	}
}
