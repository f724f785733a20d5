package app_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestPipeline_mupdf_formats: SVG, EPUB, CBZ and XPS, each verified with a
// real file, go through MuPDF: vector and reflowable text take their text
// layer, comic pages and the scanned XPS pages are OCRed.
func TestPipeline_mupdf_formats(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, tc := range []struct {
		file      string
		text, gpu int
		want      string
	}{
		{"formats/page.svg", 1, 0, "Vector drawing sample"},
		{"formats/guide.epub", 1, 0, "Chapter 1: Wells"},
		{"formats/comic.cbz", 0, 2, "fake-ocr "},
		{"formats/scan.xps", 0, 2, "fake-ocr "},
		{"formats/page.avif", 0, 1, "fake-ocr "},
		{"formats/photo.heic", 0, 1, "fake-ocr "},
	} {
		t.Run(tc.file, func(t *testing.T) {
			id := "fmt-" + strings.NewReplacer("/", "-", ".", "-").Replace(tc.file)
			h.submit(id, tc.file, nil)
			evs := h.wait(id)
			c := completed(t, evs[len(evs)-1])
			assert.Equal(t, tc.text, c.PagesByRoute["text"], "text pages; pages by route %v", c.PagesByRoute)
			assert.Equal(t, tc.gpu, c.PagesByRoute["gpu"], "gpu pages; pages by route %v", c.PagesByRoute)
			assert.Contains(t, readResult(t, c), tc.want)
		})
	}
}
