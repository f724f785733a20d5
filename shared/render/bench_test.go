package render_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ocrflow/ocrflow/shared/render"
)

// benchDocs are the documents benchmarked: born-digital text and scans.
var benchDocs = []struct{ name, file string }{
	{"born-digital", "../../testdata/report.pdf"},
	{"scanned", "../../testdata/scanned.pdf"},
}

var benchTargets = []struct {
	name string
	t    render.Target
	// pdftoppm arguments producing the same size.
	args []string
}{
	{"1024px", render.Target{LongSide: 1024}, []string{"-scale-to", "1024"}},
	{"144dpi", render.Target{DPI: 144}, []string{"-r", "144"}},
}

// renderLoop is the body of the render benchmarks: per iteration, open
// file and render and encode every page at t; it reports ms/page.
func renderLoop(b *testing.B, file string, lim render.Limits, t render.Target) {
	ctx := context.Background()
	pages := 0
	for b.Loop() {
		doc, err := render.Open(ctx, file, lim)
		if err != nil {
			b.Fatal(err)
		}
		for n := 1; n <= doc.Pages(); n++ {
			if _, err := doc.Render(ctx, n, t); err != nil {
				b.Fatal(err)
			}
			pages++
		}
		if err := doc.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(pages), "ms/page")
}

// BenchmarkRenderDocument opens a document and renders and JPEG-encodes every
// page, the whole of convert's CPU work per document. Compare it with
// BenchmarkPdftoppm on the same pages (ms/page).
func BenchmarkRenderDocument(b *testing.B) {
	for _, d := range benchDocs {
		for _, tg := range benchTargets {
			b.Run(d.name+"/"+tg.name, func(b *testing.B) {
				renderLoop(b, d.file, render.Limits{}, tg.t)
			})
		}
	}
}

// otherFormats are the non-PDF samples: per-format cost of open, decode or
// render, and encode at the vision-model size (no pdftoppm baseline).
var otherFormats = []struct{ name, file string }{
	{"png", "../../testdata/page.png"},
	{"jpeg", "../../testdata/page.jpg"},
	{"avif", "../../testdata/formats/page.avif"},
	{"heic", "../../testdata/formats/photo.heic"},
	{"xps", "../../testdata/formats/scan.xps"},
	{"cbz", "../../testdata/formats/comic.cbz"},
	{"epub", "../../testdata/formats/guide.epub"},
	{"svg", "../../testdata/formats/page.svg"},
}

// BenchmarkRenderFormat is BenchmarkRenderDocument for every other format,
// at 1024 px.
//
//	go test -run '^$' -bench RenderFormat -benchtime 10x ./shared/render/
func BenchmarkRenderFormat(b *testing.B) {
	ctx := context.Background()
	// AVIF and HEIC compile their WebAssembly decoder on first use: pay
	// that once here, not in the first format's figure.
	for _, f := range otherFormats[2:4] {
		d, err := render.Open(ctx, f.file, render.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
	for _, f := range otherFormats {
		b.Run(f.name, func(b *testing.B) {
			renderLoop(b, f.file, render.Limits{}, render.Target{LongSide: 1024})
		})
	}
}

// BenchmarkPdftoppm renders the same documents with poppler's pdftoppm
// (JPEG quality 90, one process per document), the baseline convert must
// match or beat.
func BenchmarkPdftoppm(b *testing.B) {
	if _, err := exec.LookPath("pdftoppm"); err != nil {
		b.Skip("pdftoppm not installed (apt-get install poppler-utils)")
	}
	for _, d := range benchDocs {
		for _, tg := range benchTargets {
			b.Run(d.name+"/"+tg.name, func(b *testing.B) {
				out := filepath.Join(b.TempDir(), "p")
				pages := 0
				for b.Loop() {
					args := append([]string{"-jpeg", "-jpegopt", "quality=90"}, tg.args...)
					cmd := exec.Command("pdftoppm", append(args, d.file, out)...)
					cmd.Env = []string{"OMP_THREAD_LIMIT=1"}
					if outb, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("pdftoppm: %v: %s", err, outb)
					}
					m, _ := filepath.Glob(out + "-*.jpg")
					pages += len(m)
				}
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(pages), "ms/page")
				b.ReportMetric(float64(pages/b.N), "pages/op")
			})
		}
	}
}
