package vllmtest

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
)

// PDF returns a PDF document with one page per image, each embedded as a
// JPEG (DCTDecode) filling its page at 144 DPI — a scanned document
// without a text layer, so every page goes to the engine.
func PDF(pages []image.Image) ([]byte, error) {
	var buf bytes.Buffer
	var offsets []int
	obj := func(body string, stream []byte) {
		offsets = append(offsets, buf.Len())
		fmt.Fprintf(&buf, "%d 0 obj\n%s", len(offsets), body)
		if stream != nil {
			buf.WriteString("\nstream\n")
			buf.Write(stream)
			buf.WriteString("\nendstream")
		}
		buf.WriteString("\nendobj\n")
	}
	buf.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	kids := ""
	for i := range pages {
		kids += fmt.Sprintf("%d 0 R ", 3+3*i)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>", nil)
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids, len(pages)), nil)
	for i, img := range pages {
		var jb bytes.Buffer
		if err := jpeg.Encode(&jb, img, &jpeg.Options{Quality: 90}); err != nil {
			return nil, fmt.Errorf("encode page %d: %w", i+1, err)
		}
		cs := "/DeviceRGB"
		if _, ok := img.(*image.Gray); ok {
			cs = "/DeviceGray"
		}
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		wpt, hpt := float64(w)*72/144, float64(h)*72/144
		content, xobj := 4+3*i, 5+3*i // the page itself is object 3+3i
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>",
			wpt, hpt, xobj, content), nil)
		draw := fmt.Sprintf("q %.2f 0 0 %.2f 0 0 cm /Im0 Do Q", wpt, hpt)
		obj(fmt.Sprintf("<< /Length %d >>", len(draw)), []byte(draw))
		obj(fmt.Sprintf("<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s /BitsPerComponent 8 /Filter /DCTDecode /Length %d >>",
			w, h, cs, jb.Len()), jb.Bytes())
	}
	xref := buf.Len()
	fmt.Fprintf(&buf, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&buf, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&buf, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return buf.Bytes(), nil
}

// Document returns n marked pages of document tag (pages 1..n), each w×h
// pixels and upright, as a PDF.
func Document(tag, n, w, h int) ([]byte, error) {
	pages := make([]image.Image, n)
	for i := range pages {
		pages[i] = PageImage(tag, i+1, w, h, 0)
	}
	return PDF(pages)
}
