package libreoffice_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/office"
)

// BenchmarkToPDF compares, in one run, reading report.docx natively with
// converting it (and each legacy sample) to PDF through LibreOffice, the
// price OFFICE_MODE=render and the legacy formats pay before rendering.
//
//	go test -run '^$' -bench ToPDF -benchtime 5x ./shared/libreoffice/
func BenchmarkToPDF(b *testing.B) {
	b.Run("native/report.docx", func(b *testing.B) {
		for b.Loop() {
			if _, err := office.Extract(context.Background(), testdata+"office/report.docx", office.DOCX, office.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	c, err := newConverter()
	require.NoError(b, err)
	for _, file := range []string{"office/report.docx", "office/legacy/report.doc", "office/legacy/slides.ppt", "office/legacy/ledger.xls"} {
		b.Run("libreoffice/"+file[len("office/"):], func(b *testing.B) {
			for b.Loop() {
				dir := b.TempDir()
				pdf, err := c.ToPDF(context.Background(), testdata+file, dir)
				if err != nil {
					b.Fatal(err)
				}
				os.Remove(pdf)
			}
		})
	}
}
