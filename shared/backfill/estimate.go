package backfill

import (
	"strings"
)

// Calibration of the page estimate (docs/backfill.md). The figures are
// bytes per page of the documents that cost GPU time, measured on
// testdata: the scanned samples (scanned.pdf: 346008 bytes, 2 pages;
// scanned_ocrlayer.pdf: 165296 bytes, 1 page; 150 dpi grayscale JPEG
// pages) weigh 165–173 KB a page, the picture-led scan.docx 40 KB (81126
// bytes, 2 pages). Born-digital documents are far lighter per page
// (report.pdf: 2.3 KB) and are under-counted — but their pages have a
// text layer and skip the model (TEXT_LAYER=auto), so the GPU estimate
// holds.
const (
	// DefaultPDFPageBytes is the weight of a page of a PDF or another
	// paged format (XPS, CBZ, EPUB).
	DefaultPDFPageBytes = 150 << 10
	// DefaultOfficePageBytes is the weight of an office document's page.
	DefaultOfficePageBytes = 40 << 10
	// DefaultPagesPerSecond is one GPU's throughput: DeepSeek-OCR's
	// published "200k+ pages per day on a single A100-40G" (2.3 pages/s).
	// Not measured here (the project machine has no GPU): measure your own
	// and pass --pages-per-second.
	DefaultPagesPerSecond = 2.3
)

// Estimator turns sizes and types into pages and GPU time.
type Estimator struct {
	PDFPageBytes    int64
	OfficePageBytes int64
	PagesPerSecond  float64
}

func (e Estimator) withDefaults() Estimator {
	if e.PDFPageBytes <= 0 {
		e.PDFPageBytes = DefaultPDFPageBytes
	}
	if e.OfficePageBytes <= 0 {
		e.OfficePageBytes = DefaultOfficePageBytes
	}
	if e.PagesPerSecond <= 0 {
		e.PagesPerSecond = DefaultPagesPerSecond
	}
	return e
}

// Pages estimates the pages of a document of type mime and size bytes
// that need the model: an image is one page; a PDF, XPS, CBZ or EPUB is
// size / PDFPageBytes pages, a word-processing or presentation document
// size / OfficePageBytes (its weight is its pictures: the text is read
// without the model), rounded to the nearest whole page and at least 1; a
// spreadsheet (its weight is data, read as text) and anything else is 1.
func (e Estimator) Pages(mime string, size int64) int64 {
	e = e.withDefaults()
	per := int64(0)
	switch m := strings.ToLower(mime); {
	case strings.HasPrefix(m, "image/"):
		return 1
	case m == "application/pdf", m == "application/vnd.ms-xpsdocument", m == "application/oxps",
		m == "application/vnd.comicbook+zip", m == "application/epub+zip":
		per = e.PDFPageBytes
	case isSpreadsheet(m):
		return 1
	case isOffice(m):
		per = e.OfficePageBytes
	default:
		return 1
	}
	return max(1, (size+per/2)/per)
}

// isOffice reports whether m is an office document type: OOXML, the
// legacy binary formats or OpenDocument.
func isOffice(m string) bool {
	return strings.HasPrefix(m, "application/vnd.openxmlformats-officedocument.") ||
		strings.HasPrefix(m, "application/vnd.oasis.opendocument.") ||
		strings.HasPrefix(m, "application/vnd.ms-") || m == "application/msword"
}

// isSpreadsheet reports whether m is a spreadsheet type.
func isSpreadsheet(m string) bool {
	return strings.Contains(m, "spreadsheet") || m == "application/vnd.ms-excel"
}

// Bucket sums documents, bytes and estimated pages.
type Bucket struct {
	Documents int64 `json:"documents"`
	Bytes     int64 `json:"bytes"`
	Pages     int64 `json:"pages"`
}

func (b *Bucket) add(size, pages int64) {
	b.Documents++
	b.Bytes += size
	b.Pages += pages
}

// Estimate is a dry run's account of the selected contents.
type Estimate struct {
	Bucket
	// GPUHours is Pages at PagesPerSecond on one GPU.
	GPUHours       float64           `json:"gpu_hours"`
	PagesPerSecond float64           `json:"pages_per_second"`
	ByMIME         map[string]Bucket `json:"by_mime"`
	ByTenant       map[string]Bucket `json:"by_tenant"`
}

// add counts one selected item.
func (e *Estimate) add(est Estimator, it Item) {
	est = est.withDefaults()
	pages := est.Pages(it.MIME, it.Size)
	e.Bucket.add(it.Size, pages)
	if e.ByMIME == nil {
		e.ByMIME, e.ByTenant = map[string]Bucket{}, map[string]Bucket{}
	}
	m := strings.ToLower(it.MIME)
	b := e.ByMIME[m]
	b.add(it.Size, pages)
	e.ByMIME[m] = b
	t := e.ByTenant[it.TenantID]
	t.add(it.Size, pages)
	e.ByTenant[it.TenantID] = t
	e.PagesPerSecond = est.PagesPerSecond
	e.GPUHours = float64(e.Pages) / est.PagesPerSecond / 3600
}
