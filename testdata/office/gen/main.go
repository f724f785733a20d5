// Command gen writes the Office Open XML samples in testdata/office/ and the
// fuzz seed corpora of shared/office.
//
// Run it from the repository root:
//
//	go run ./testdata/office/gen                  # writes testdata/office and shared/office/testdata/fuzz
//	go run ./testdata/office/gen -out DIR -fuzz DIR2
//
// The packages are written with archive/zip from hand-written XML, so every
// feature the extractor claims is present on purpose and nothing else is.
// Output is deterministic: no timestamps (zip times are zero), fixed random
// seeds, a fixed entry order; re-running it reproduces the files byte for
// byte with the same Go version (compress/flate output may change between
// Go releases). The golden markdown files (*.md) are not written here: the
// tests of shared/office rewrite them with -update.
//
// Samples:
//
//	report.docx   3 pages: title, headings by localised style ids, bold and
//	              italic runs, bulleted and numbered lists with a nested level,
//	              a 3×4 table, a page break, section breaks, a picture
//	slides.pptx   3 slides stored out of name order, titles, bullets, a table,
//	              a picture, speaker notes on one slide
//	ledger.xlsx   3 sheets (one hidden), formulas with cached values, number
//	              and date formats, a picture
//
// Bad corpus (each must be rejected as a validation error):
//
//	zipbomb.docx         document.xml declares 4 KiB and inflates to 600 MiB
//	traversal.docx       an entry named ../../evil.txt
//	many-entries.docx    10,001 entries (limit 10,000)
//	not-a-zip.docx       random bytes
//	truncated.docx       the first half of report.docx
//	empty.docx           zero bytes
//	encrypted.docx       a Compound File header, as password-protected OOXML has
//	no-document.docx     a valid zip without word/document.xml
//	malformed-xml.docx   document.xml that is not well-formed
package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"flag"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

func main() {
	out := flag.String("out", "testdata/office", "directory for the samples")
	fuzzDir := flag.String("fuzz", "shared/office/testdata/fuzz", "directory for the fuzz seed corpora")
	flag.Parse()
	if err := run(*out, *fuzzDir); err != nil {
		log.Fatal(err)
	}
}

func run(out, fuzzDir string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	chart := textPNG([]string{"QUARTERLY REVENUE", "Q1 100  Q2 112", "Q3 118  Q4 131"}, 3)
	icon := iconPNG()

	report := zipOf(reportParts(chart, icon))
	slides := zipOf(slidesParts(chart))
	ledger := zipOf(ledgerParts(chart))
	minimal := zipOf(minimalDocx("Hello."))

	files := map[string][]byte{
		"report.docx":        report,
		"scan.docx":          zipOf(scanParts()),
		"slides.pptx":        slides,
		"ledger.xlsx":        ledger,
		"zipbomb.docx":       zipBomb(),
		"traversal.docx":     zipOf(append(minimalDocx("Traversal."), part{"../../evil.txt", []byte("evil")})),
		"many-entries.docx":  manyEntries(10_001),
		"not-a-zip.docx":     randomBytes(1, 4096),
		"truncated.docx":     report[:len(report)/2],
		"empty.docx":         {},
		"encrypted.docx":     append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, randomBytes(2, 4088)...),
		"no-document.docx":   zipOf(minimalDocx("x")[:2]),
		"malformed-xml.docx": zipOf(append(minimalDocx("x")[:2], part{"word/document.xml", []byte(docHead + `<w:p><w:r><w:t>unclosed</w:r></w:p>` + docTail)})),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
	}

	// Fuzz seeds: whole packages, plus bare XML that the fuzz targets wrap
	// into a minimal package (so mutations reach the XML readers instead of
	// failing the zip checksum).
	seeds := map[string]map[string][]byte{
		"FuzzDOCX": {
			"report":     report,
			"minimal":    minimal,
			"traversal":  files["traversal.docx"],
			"truncated":  files["truncated.docx"],
			"not-a-zip":  randomBytes(3, 64),
			"bare-xml":   []byte(reportDocument),
			"bare-small": []byte(docHead + `<w:p><w:pPr><w:pStyle w:val="Heading1"/><w:numPr><w:ilvl w:val="1"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:rPr><w:b/></w:rPr><w:t>x</w:t></w:r></w:p><w:tbl><w:tr><w:tc><w:tcPr><w:gridSpan w:val="2"/></w:tcPr><w:p><w:r><w:t>a|b</w:t></w:r></w:p></w:tc></w:tr></w:tbl>` + docTail),
		},
		"FuzzPPTX": {
			"slides":   slides,
			"bare-xml": []byte(slideHighlights),
			"table":    []byte(slideNumbers),
		},
	}
	for target, m := range seeds {
		dir := filepath.Join(fuzzDir, target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for name, b := range m {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// part is one entry of a package.
type part struct {
	name string
	data []byte
}

// zipOf writes the parts in order, deflated, with zero timestamps.
func zipOf(parts []part) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, p := range parts {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: p.name, Method: zip.Deflate})
		must(err)
		_, err = w.Write(p.data)
		must(err)
	}
	must(zw.Close())
	return buf.Bytes()
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

const xmlDecl = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"

const (
	nsW   = `http://schemas.openxmlformats.org/wordprocessingml/2006/main`
	nsR   = `http://schemas.openxmlformats.org/officeDocument/2006/relationships`
	nsA   = `http://schemas.openxmlformats.org/drawingml/2006/main`
	nsP   = `http://schemas.openxmlformats.org/presentationml/2006/main`
	nsPic = `http://schemas.openxmlformats.org/drawingml/2006/picture`
	nsWP  = `http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing`
	nsMC  = `http://schemas.openxmlformats.org/markup-compatibility/2006`
	nsWPS = `http://schemas.microsoft.com/office/word/2010/wordprocessingShape`
	nsV   = `urn:schemas-microsoft-com:vml`
	nsS   = `http://schemas.openxmlformats.org/spreadsheetml/2006/main`
	nsXDR = `http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing`

	relBase = `http://schemas.openxmlformats.org/officeDocument/2006/relationships/`
)

func rels(rs ...[3]string) []byte {
	var sb strings.Builder
	sb.WriteString(xmlDecl + `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`)
	for _, r := range rs {
		mode := ""
		if strings.HasPrefix(r[2], "http") {
			mode = ` TargetMode="External"`
		}
		fmt.Fprintf(&sb, `<Relationship Id="%s" Type="%s%s" Target="%s"%s/>`, r[0], relBase, r[1], r[2], mode)
	}
	sb.WriteString(`</Relationships>`)
	return []byte(sb.String())
}

func contentTypes(overrides ...[2]string) []byte {
	var sb strings.Builder
	sb.WriteString(xmlDecl + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
		`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
		`<Default Extension="xml" ContentType="application/xml"/>` +
		`<Default Extension="png" ContentType="image/png"/>`)
	for _, o := range overrides {
		fmt.Fprintf(&sb, `<Override PartName="%s" ContentType="%s"/>`, o[0], o[1])
	}
	sb.WriteString(`</Types>`)
	return []byte(sb.String())
}

// ---------------------------------------------------------------- DOCX

const docHead = xmlDecl + `<w:document xmlns:w="` + nsW + `" xmlns:r="` + nsR + `" xmlns:a="` + nsA +
	`" xmlns:pic="` + nsPic + `" xmlns:wp="` + nsWP + `" xmlns:mc="` + nsMC + `" xmlns:wps="` + nsWPS +
	`" xmlns:v="` + nsV + `" mc:Ignorable="wps"><w:body>`
const docTail = `<w:sectPr><w:pgSz w:w="11906" w:h="16838"/></w:sectPr></w:body></w:document>`

func minimalDocx(text string) []part {
	return []part{
		{"[Content_Types].xml", contentTypes([2]string{"/word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"})},
		{"_rels/.rels", rels([3]string{"rId1", "officeDocument", "word/document.xml"})},
		{"word/document.xml", []byte(docHead + `<w:p><w:r><w:t>` + text + `</w:t></w:r></w:p>` + docTail)},
	}
}

func p(style, body string) string {
	ppr := ""
	if style != "" {
		ppr = `<w:pPr><w:pStyle w:val="` + style + `"/></w:pPr>`
	}
	return `<w:p>` + ppr + body + `</w:p>`
}

func r(text string) string {
	return `<w:r><w:t xml:space="preserve">` + text + `</w:t></w:r>`
}

func rf(props, text string) string {
	return `<w:r><w:rPr>` + props + `</w:rPr><w:t xml:space="preserve">` + text + `</w:t></w:r>`
}

func li(numID, ilvl int, text string) string {
	return fmt.Sprintf(`<w:p><w:pPr><w:pStyle w:val="Listenabsatz"/><w:numPr><w:ilvl w:val="%d"/><w:numId w:val="%d"/></w:numPr></w:pPr>%s</w:p>`, ilvl, numID, r(text))
}

func tc(props, body string) string {
	if props != "" {
		props = `<w:tcPr>` + props + `</w:tcPr>`
	}
	return `<w:tc>` + props + `<w:p>` + body + `</w:p></w:tc>`
}

func drawing(rid string, cx, cy int) string {
	return fmt.Sprintf(`<w:r><w:drawing><wp:inline><wp:extent cx="%d" cy="%d"/><wp:docPr id="1" name="Picture"/>`+
		`<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:pic>`+
		`<pic:nvPicPr><pic:cNvPr id="0" name="chart.png"/><pic:cNvPicPr/></pic:nvPicPr>`+
		`<pic:blipFill><a:blip r:embed="%s"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill>`+
		`<pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="%d" cy="%d"/></a:xfrm><a:prstGeom prst="rect"/></pic:spPr>`+
		`</pic:pic></a:graphicData></a:graphic></wp:inline></w:drawing></w:r>`, cx, cy, rid, cx, cy)
}

var reportDocument = docHead +
	// page 1
	p("Titel", r("Annual Report 2026")) +
	p("berschrift1", r("Summary")) +
	p("", r("This report covers ")+rf(`<w:b/>`, "the full year")+r(" and ")+rf(`<w:i/>`, "all regions")+
		r(". Revenue grew in ")+rf(`<w:b/><w:i/>`, "every")+r(" quarter")+
		`<w:del w:id="1" w:author="A"><w:r><w:delText>DELETED TEXT</w:delText></w:r></w:del>`+
		`<w:r><w:lastRenderedPageBreak/></w:r>`+
		`<w:ins w:id="2" w:author="A">`+r(" (audited)")+`</w:ins>`+r(".")) +
	p("", `<w:r><w:t>Prepared by:</w:t><w:tab/><w:t>Finance</w:t><w:br/><w:t>Reviewed by:</w:t><w:tab/><w:t>Audit</w:t></w:r>`) +
	p("", r("See the ")+`<w:hyperlink r:id="rIdLink">`+rf(`<w:rStyle w:val="Hyperlink"/>`, "company website")+`</w:hyperlink>`+r(" for details.")) +
	p("Abschnitt", r("Highlights")) +
	li(1, 0, "Revenue up 12%") +
	li(1, 0, "Costs down 3%") +
	li(1, 1, "Mainly energy") +
	p("Aufzaehlung", r("Headcount stable")) +
	p("", r("Next steps:")) +
	li(2, 0, "Expand to two new markets") +
	li(2, 1, "Hire a regional lead") +
	li(2, 0, "Review pricing") +
	`<w:p><w:r><w:br w:type="page"/></w:r></w:p>` +
	// page 2
	p("berschrift1", r("Figures")) +
	p("Gliederung", r("Regional results")) +
	`<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/></w:tblPr><w:tblGrid><w:gridCol/><w:gridCol/><w:gridCol/></w:tblGrid>` +
	`<w:tr>` + tc("", r("Region")) + tc("", r("Revenue")) + tc("", r("Change")) + `</w:tr>` +
	`<w:tr>` + tc("", r("North")) + tc("", r("1,200")) + tc("", r("+5%")) + `</w:tr>` +
	`<w:tr>` + tc("", rf(`<w:b/>`, "South")) + tc("", `<w:r><w:t>950</w:t><w:br/><w:t>(est.)</w:t></w:r>`) + tc("", r("-2%")) + `</w:tr>` +
	`<w:tr>` + tc(`<w:gridSpan w:val="2"/>`, r("Total | all regions")) + tc("", r("+3%")) + `</w:tr>` +
	`</w:tbl>` +
	p("", drawing("rIdChart", 2743200, 1371600)) +
	p("", rf(`<w:i/>`, "Figure 1: revenue by quarter")) +
	p("", drawing("rIdIcon", 152400, 152400)+r("Icon legend")) +
	`<w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:anchor><wp:docPr id="3" name="Text Box"/>` +
	`<a:graphic><a:graphicData uri="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"><wps:wsp><wps:txbx><w:txbxContent>` +
	p("", r("Boxed note: figures are unaudited.")) +
	`</w:txbxContent></wps:txbx></wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice>` +
	`<mc:Fallback><w:pict><v:shape><v:textbox><w:txbxContent>` + p("", r("Boxed note: figures are unaudited.")) +
	`</w:txbxContent></v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>` +
	// section 1 ends here; section 2 is continuous, so no page break
	`<w:p><w:pPr><w:sectPr><w:type w:val="nextPage"/></w:sectPr></w:pPr>` + r("End of figures.") + `</w:p>` +
	// section 2 ends here; section 3 has no w:type (nextPage), so a page break
	`<w:p><w:pPr><w:sectPr><w:type w:val="continuous"/></w:sectPr></w:pPr>` + r("Continuous section text.") + `</w:p>` +
	// page 3
	p("berschrift1", r("Appendix")) +
	p("", r("Contact: finance@example.com")+rf(`<w:vanish/>`, " SECRET")) +
	`<w:sdt><w:sdtPr><w:alias w:val="Status"/><w:showingPlcHdr/></w:sdtPr><w:sdtContent>` + p("", r("Approved")) + `</w:sdtContent></w:sdt>` +
	`<w:sectPr><w:pgSz w:w="11906" w:h="16838"/></w:sectPr></w:body></w:document>`

// Style ids are German, as Word writes them in a German locale; the
// extractor must find the heading levels from the names.
const reportStyles = xmlDecl + `<w:styles xmlns:w="` + nsW + `">` +
	`<w:style w:type="paragraph" w:default="1" w:styleId="Standard"><w:name w:val="Normal"/></w:style>` +
	`<w:style w:type="paragraph" w:styleId="Titel"><w:name w:val="Title"/><w:basedOn w:val="Standard"/><w:rPr><w:sz w:val="56"/></w:rPr></w:style>` +
	`<w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/><w:basedOn w:val="Standard"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>` +
	`<w:style w:type="paragraph" w:styleId="berschrift2"><w:name w:val="heading 2"/><w:basedOn w:val="Standard"/><w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style>` +
	`<w:style w:type="paragraph" w:customStyle="1" w:styleId="Abschnitt"><w:name w:val="Section Heading"/><w:basedOn w:val="berschrift2"/></w:style>` +
	`<w:style w:type="paragraph" w:customStyle="1" w:styleId="Gliederung"><w:name w:val="Outline Para"/><w:basedOn w:val="Standard"/><w:pPr><w:outlineLvl w:val="2"/></w:pPr></w:style>` +
	`<w:style w:type="paragraph" w:styleId="Listenabsatz"><w:name w:val="List Paragraph"/><w:basedOn w:val="Standard"/></w:style>` +
	`<w:style w:type="paragraph" w:styleId="Aufzaehlung"><w:name w:val="List Bullet"/><w:basedOn w:val="Standard"/><w:pPr><w:numPr><w:numId w:val="1"/></w:numPr></w:pPr></w:style>` +
	`</w:styles>`

const reportNumbering = xmlDecl + `<w:numbering xmlns:w="` + nsW + `">` +
	`<w:abstractNum w:abstractNumId="0"><w:lvl w:ilvl="0"><w:numFmt w:val="bullet"/><w:lvlText w:val="•"/></w:lvl><w:lvl w:ilvl="1"><w:numFmt w:val="bullet"/><w:lvlText w:val="o"/></w:lvl></w:abstractNum>` +
	`<w:abstractNum w:abstractNumId="1"><w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="%1."/></w:lvl><w:lvl w:ilvl="1"><w:numFmt w:val="lowerLetter"/><w:lvlText w:val="%2)"/></w:lvl></w:abstractNum>` +
	`<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num>` +
	`<w:num w:numId="2"><w:abstractNumId w:val="1"/></w:num>` +
	`</w:numbering>`

func reportParts(chart, icon []byte) []part {
	return []part{
		{"[Content_Types].xml", contentTypes(
			[2]string{"/word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"},
			[2]string{"/word/styles.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"},
			[2]string{"/word/numbering.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.numbering+xml"},
		)},
		{"_rels/.rels", rels([3]string{"rId1", "officeDocument", "word/document.xml"})},
		{"word/document.xml", []byte(reportDocument)},
		{"word/_rels/document.xml.rels", rels(
			[3]string{"rId1", "styles", "styles.xml"},
			[3]string{"rId2", "numbering", "numbering.xml"},
			[3]string{"rIdChart", "image", "media/image1.png"},
			[3]string{"rIdIcon", "image", "media/image2.png"},
			[3]string{"rIdLink", "hyperlink", "https://example.com/"},
		)},
		{"word/styles.xml", []byte(reportStyles)},
		{"word/numbering.xml", []byte(reportNumbering)},
		{"word/media/image1.png", chart},
		{"word/media/image2.png", icon},
	}
}

// scanParts is a picture-led DOCX: two pages, each a full-width picture of
// a scanned page under a one-word caption, as when scans are pasted into
// Word. OFFICE_MODE=auto renders it whole.
func scanParts() []part {
	// Blank lines below the text give the pictures a page's proportions.
	blank := make([]string, 13)
	page1 := textPNG(append([]string{"INVOICE 2026-0042", "Customer: Northwind Ltd", "Amount due: 1,234.50 EUR", "Due date: 15 December 2026"}, blank...), 4)
	page2 := textPNG(append([]string{"DELIVERY NOTE 7781", "Items: 12 boxes of paper", "Received by: J. Smith", "Signed on 2 December 2026"}, blank...), 4)
	doc := docHead +
		p("", r("Scan")) + `<w:p>` + drawing("rIdScan1", 5760000, 8000000) + `</w:p>` +
		`<w:p><w:r><w:br w:type="page"/></w:r></w:p>` +
		p("", r("Scan")) + `<w:p>` + drawing("rIdScan2", 5760000, 8000000) + `</w:p>` +
		docTail
	return []part{
		{"[Content_Types].xml", contentTypes([2]string{"/word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"})},
		{"_rels/.rels", rels([3]string{"rId1", "officeDocument", "word/document.xml"})},
		{"word/document.xml", []byte(doc)},
		{"word/_rels/document.xml.rels", rels(
			[3]string{"rIdScan1", "image", "media/scan1.png"},
			[3]string{"rIdScan2", "image", "media/scan2.png"},
		)},
		{"word/media/scan1.png", page1},
		{"word/media/scan2.png", page2},
	}
}

// ---------------------------------------------------------------- PPTX

const sldHead = xmlDecl + `<p:sld xmlns:a="` + nsA + `" xmlns:r="` + nsR + `" xmlns:p="` + nsP + `"><p:cSld><p:spTree>` +
	`<p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/>`
const sldTail = `</p:spTree></p:cSld><p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:sld>`

// sp is a shape; ph is the p:ph element ("" for a plain text box).
func sp(id int, ph, paras string) string {
	nv := `<p:nvPr/>`
	if ph != "" {
		nv = `<p:nvPr>` + ph + `</p:nvPr>`
	}
	// An explicit frame, stacked by id: the deck has no slide layouts to
	// inherit one from, and a frameless box makes LibreOffice set one
	// character per line.
	return fmt.Sprintf(`<p:sp><p:nvSpPr><p:cNvPr id="%d" name="Shape %d"/><p:cNvSpPr/>%s</p:nvSpPr>`+
		`<p:spPr><a:xfrm><a:off x="457200" y="%d"/><a:ext cx="8229600" cy="1100000"/></a:xfrm></p:spPr>`+
		`<p:txBody><a:bodyPr/><a:lstStyle/>%s</p:txBody></p:sp>`, id, id, nv, 300000+(id-2)*1250000, paras)
}

func ap(ppr, runs string) string { return `<a:p>` + ppr + runs + `</a:p>` }

func ar(text string) string {
	return `<a:r><a:rPr lang="en-US" dirty="0"/><a:t>` + text + `</a:t></a:r>`
}

func arb(text string) string { return `<a:r><a:rPr lang="en-US" b="1"/><a:t>` + text + `</a:t></a:r>` }

// slide2.xml is shown first.
var slideTitle = sldHead +
	sp(2, `<p:ph type="ctrTitle"/>`, ap("", ar("Quarterly Review"))) +
	sp(3, `<p:ph type="subTitle" idx="1"/>`, ap("", ar("Finance team, Q4 2026"))) +
	sldTail

// slide3.xml is shown second.
var slideHighlights = sldHead +
	sp(2, `<p:ph type="title"/>`, ap("", ar("Highlights"))) +
	sp(3, `<p:ph idx="1"/>`,
		ap("", ar("Revenue up ")+arb("12%"))+
			ap(`<a:pPr lvl="1"/>`, ar("Driven by the north region"))+
			ap("", ar("Costs down 3%"))+
			ap(`<a:pPr><a:buNone/></a:pPr>`, ar("No bullet here"))+
			`<a:p><a:endParaRPr lang="en-US"/></a:p>`) +
	sp(4, "", ap("", ar("Source: internal figures"))) +
	sp(5, `<p:ph type="ftr" sz="quarter" idx="11"/>`, ap("", ar("Confidential"))) +
	sp(6, `<p:ph type="sldNum" sz="quarter" idx="12"/>`, ap("", `<a:fld id="{1}" type="slidenum"><a:t>2</a:t></a:fld>`)) +
	sldTail

func atc(attrs, text string) string {
	return `<a:tc` + attrs + `><a:txBody><a:bodyPr/><a:lstStyle/><a:p>` + text + `</a:p></a:txBody><a:tcPr/></a:tc>`
}

// slide1.xml is shown third.
var slideNumbers = sldHead +
	sp(2, `<p:ph type="title"/>`, ap("", ar("Numbers"))) +
	`<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="4" name="Table"/><p:cNvGraphicFramePr/><p:nvPr/></p:nvGraphicFramePr>` +
	`<p:xfrm><a:off x="0" y="0"/><a:ext cx="6000000" cy="1500000"/></p:xfrm><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/table">` +
	`<a:tbl><a:tblPr firstRow="1"/><a:tblGrid><a:gridCol w="2000000"/><a:gridCol w="2000000"/><a:gridCol w="2000000"/></a:tblGrid>` +
	`<a:tr h="370840">` + atc("", ar("Region")) + atc("", ar("Q3")) + atc("", ar("Q4")) + `</a:tr>` +
	`<a:tr h="370840">` + atc("", ar("North")) + atc("", ar("1,100")) + atc("", arb("1,200")) + `</a:tr>` +
	`<a:tr h="370840">` + atc(` gridSpan="2"`, ar("Total | both")) + atc(` hMerge="1"`, "") + atc("", ar("2,150")) + `</a:tr>` +
	`</a:tbl></a:graphicData></a:graphic></p:graphicFrame>` +
	`<p:pic><p:nvPicPr><p:cNvPr id="5" name="Chart"/><p:cNvPicPr/><p:nvPr/></p:nvPicPr>` +
	`<p:blipFill><a:blip r:embed="rId2"/><a:stretch><a:fillRect/></a:stretch></p:blipFill>` +
	`<p:spPr><a:xfrm><a:off x="0" y="2000000"/><a:ext cx="3000000" cy="1000000"/></a:xfrm><a:prstGeom prst="rect"/></p:spPr></p:pic>` +
	sldTail

var notesHighlights = xmlDecl + `<p:notes xmlns:a="` + nsA + `" xmlns:r="` + nsR + `" xmlns:p="` + nsP + `"><p:cSld><p:spTree>` +
	`<p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/>` +
	sp(2, `<p:ph type="sldImg"/>`, "") +
	sp(3, `<p:ph type="body" idx="1"/>`, ap("", ar("Mention the ")+arb("energy savings")+ar("."))+ap("", ar("Pause for questions."))) +
	sp(4, `<p:ph type="sldNum" idx="5"/>`, ap("", ar("2"))) +
	`</p:spTree></p:cSld></p:notes>`

func slidesParts(chart []byte) []part {
	const slideCT = "application/vnd.openxmlformats-officedocument.presentationml.slide+xml"
	return []part{
		{"[Content_Types].xml", contentTypes(
			[2]string{"/ppt/presentation.xml", "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"},
			[2]string{"/ppt/slides/slide1.xml", slideCT},
			[2]string{"/ppt/slides/slide2.xml", slideCT},
			[2]string{"/ppt/slides/slide3.xml", slideCT},
			[2]string{"/ppt/notesSlides/notesSlide1.xml", "application/vnd.openxmlformats-officedocument.presentationml.notesSlide+xml"},
		)},
		{"_rels/.rels", rels([3]string{"rId1", "officeDocument", "ppt/presentation.xml"})},
		{"ppt/presentation.xml", []byte(xmlDecl + `<p:presentation xmlns:a="` + nsA + `" xmlns:r="` + nsR + `" xmlns:p="` + nsP + `">` +
			`<p:sldIdLst><p:sldId id="256" r:id="rId3"/><p:sldId id="257" r:id="rId4"/><p:sldId id="258" r:id="rId2"/></p:sldIdLst>` +
			`<p:sldSz cx="9144000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/></p:presentation>`)},
		{"ppt/_rels/presentation.xml.rels", rels(
			[3]string{"rId2", "slide", "slides/slide1.xml"},
			[3]string{"rId3", "slide", "slides/slide2.xml"},
			[3]string{"rId4", "slide", "slides/slide3.xml"},
		)},
		{"ppt/slides/slide1.xml", []byte(slideNumbers)},
		{"ppt/slides/_rels/slide1.xml.rels", rels([3]string{"rId2", "image", "../media/image1.png"})},
		{"ppt/slides/slide2.xml", []byte(slideTitle)},
		{"ppt/slides/slide3.xml", []byte(slideHighlights)},
		{"ppt/slides/_rels/slide3.xml.rels", rels([3]string{"rId2", "notesSlide", "../notesSlides/notesSlide1.xml"})},
		{"ppt/notesSlides/notesSlide1.xml", []byte(notesHighlights)},
		{"ppt/notesSlides/_rels/notesSlide1.xml.rels", rels([3]string{"rId1", "slide", "../slides/slide3.xml"})},
		{"ppt/media/image1.png", chart},
	}
}

// ---------------------------------------------------------------- XLSX

// Shared strings, by index.
var ledgerStrings = []string{
	"Date", "Item", "Qty", "Unit price", "Total", // 0–4
	"Paper", "Toner|Ink", "Desk\nchair", "Status", // 5–8
	"Metric", "Value", "Growth", "Items", // 9–12
	"Code", "Name", "N", "North", // 13–16
}

func sheetXML(rows string, extra string) []byte {
	return []byte(xmlDecl + `<worksheet xmlns="` + nsS + `" xmlns:r="` + nsR + `"><sheetData>` + rows + `</sheetData>` + extra + `</worksheet>`)
}

// Cells: s = shared string, n = number with style, f = formula with cached value.
func cs(ref string, idx int) string { return fmt.Sprintf(`<c r="%s" t="s"><v>%d</v></c>`, ref, idx) }
func cn(ref string, style int, v string) string {
	return fmt.Sprintf(`<c r="%s" s="%d"><v>%s</v></c>`, ref, style, v)
}
func cf(ref string, style int, f, v string) string {
	return fmt.Sprintf(`<c r="%s" s="%d"><f>%s</f><v>%s</v></c>`, ref, style, f, v)
}

func ledgerParts(chart []byte) []part {
	var sst strings.Builder
	fmt.Fprintf(&sst, xmlDecl+`<sst xmlns="%s" count="%d" uniqueCount="%d">`, nsS, len(ledgerStrings), len(ledgerStrings))
	for _, s := range ledgerStrings {
		fmt.Fprintf(&sst, `<si><t xml:space="preserve">%s</t></si>`, s)
	}
	sst.WriteString(`</sst>`)

	// Styles: 0 general, 1 "#,##0.00" (custom 164), 2 built-in 14 (date), 3 built-in 10 (0.00%).
	styles := xmlDecl + `<styleSheet xmlns="` + nsS + `"><numFmts count="1"><numFmt numFmtId="164" formatCode="#,##0.00"/></numFmts>` +
		`<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>` +
		`<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>` +
		`<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>` +
		`<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>` +
		`<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>` +
		`<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>` +
		`<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>` +
		`<xf numFmtId="10" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>` +
		`<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>`

	ledger := sheetXML(
		`<row r="1">`+cs("A1", 0)+cs("B1", 1)+cs("C1", 2)+cs("D1", 3)+cs("E1", 4)+`</row>`+
			`<row r="2">`+cn("A2", 2, "45658")+cs("B2", 5)+cn("C2", 0, "10")+cn("D2", 1, "4.5")+cf("E2", 1, "C2*D2", "45")+`</row>`+
			`<row r="3">`+cn("A3", 2, "45689")+cs("B3", 6)+cn("C3", 0, "2")+cn("D3", 1, "79.9")+cf("E3", 1, "C3*D3", "159.8")+`</row>`+
			`<row r="4">`+cn("A4", 2, "45717")+cs("B4", 7)+cn("C4", 0, "1")+cn("D4", 1, "1249")+cf("E4", 1, "C4*D4", "1249")+`</row>`+
			`<row r="6">`+cs("B6", 4)+cf("C6", 0, "SUM(C2:C4)", "13")+cf("E6", 1, "SUM(E2:E4)", "1453.8")+`</row>`+
			`<row r="7">`+cs("B7", 8)+`<c r="C7" t="str"><f>IF(E6&gt;1000,"over budget","ok")</f><v>over budget</v></c></row>`+
			// styled but empty cells far away: trailing rows and columns to trim
			`<row r="12"><c r="H12" s="1"/></row>`, "")
	// Data starts at B2: leading empty rows and columns are trimmed too.
	summary := sheetXML(
		`<row r="2">`+cs("B2", 9)+cs("C2", 10)+`</row>`+
			`<row r="3">`+cs("B3", 11)+cn("C3", 3, "0.125")+`</row>`+
			`<row r="4">`+cs("B4", 12)+cf("C4", 0, "COUNTA(Ledger!B2:B4)", "3")+`</row>`,
		`<drawing r:id="rId1"/>`)
	lookup := sheetXML(`<row r="1">`+cs("A1", 13)+cs("B1", 14)+`</row><row r="2">`+cs("A2", 15)+cs("B2", 16)+`</row>`, "")

	drawing := xmlDecl + `<xdr:wsDr xmlns:xdr="` + nsXDR + `" xmlns:a="` + nsA + `" xmlns:r="` + nsR + `">` +
		`<xdr:twoCellAnchor><xdr:from><xdr:col>4</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>1</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:from>` +
		`<xdr:to><xdr:col>8</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>8</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:to>` +
		`<xdr:pic><xdr:nvPicPr><xdr:cNvPr id="2" name="Chart"/><xdr:cNvPicPr/></xdr:nvPicPr>` +
		`<xdr:blipFill><a:blip r:embed="rId1"/><a:stretch><a:fillRect/></a:stretch></xdr:blipFill>` +
		`<xdr:spPr><a:prstGeom prst="rect"/></xdr:spPr></xdr:pic><xdr:clientData/></xdr:twoCellAnchor></xdr:wsDr>`

	const sheetCT = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
	return []part{
		{"[Content_Types].xml", contentTypes(
			[2]string{"/xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"},
			[2]string{"/xl/worksheets/sheet1.xml", sheetCT},
			[2]string{"/xl/worksheets/sheet2.xml", sheetCT},
			[2]string{"/xl/worksheets/sheet3.xml", sheetCT},
			[2]string{"/xl/styles.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"},
			[2]string{"/xl/sharedStrings.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"},
			[2]string{"/xl/drawings/drawing1.xml", "application/vnd.openxmlformats-officedocument.drawing+xml"},
		)},
		{"_rels/.rels", rels([3]string{"rId1", "officeDocument", "xl/workbook.xml"})},
		{"xl/workbook.xml", []byte(xmlDecl + `<workbook xmlns="` + nsS + `" xmlns:r="` + nsR + `"><sheets>` +
			`<sheet name="Ledger" sheetId="1" r:id="rId1"/><sheet name="Summary" sheetId="2" r:id="rId2"/>` +
			`<sheet name="Lookup" sheetId="3" state="hidden" r:id="rId3"/></sheets></workbook>`)},
		{"xl/_rels/workbook.xml.rels", rels(
			[3]string{"rId1", "worksheet", "worksheets/sheet1.xml"},
			[3]string{"rId2", "worksheet", "worksheets/sheet2.xml"},
			[3]string{"rId3", "worksheet", "worksheets/sheet3.xml"},
			[3]string{"rId4", "styles", "styles.xml"},
			[3]string{"rId5", "sharedStrings", "sharedStrings.xml"},
		)},
		{"xl/worksheets/sheet1.xml", ledger},
		{"xl/worksheets/sheet2.xml", summary},
		{"xl/worksheets/_rels/sheet2.xml.rels", rels([3]string{"rId1", "drawing", "../drawings/drawing1.xml"})},
		{"xl/worksheets/sheet3.xml", lookup},
		{"xl/drawings/drawing1.xml", []byte(drawing)},
		{"xl/drawings/_rels/drawing1.xml.rels", rels([3]string{"rId1", "image", "../media/image1.png"})},
		{"xl/media/image1.png", chart},
		{"xl/styles.xml", []byte(styles)},
		{"xl/sharedStrings.xml", []byte(sst.String())},
	}
}

// ---------------------------------------------------------------- bad corpus

// zipBomb returns a docx whose word/document.xml declares 4 KiB but
// inflates to 600 MiB of spaces inside one w:t (about 600 KB on disk).
func zipBomb() []byte {
	var comp bytes.Buffer
	fw, err := flate.NewWriter(&comp, flate.BestCompression)
	must(err)
	_, err = fw.Write([]byte(docHead + `<w:p><w:r><w:t>`))
	must(err)
	chunk := bytes.Repeat([]byte(" "), 1<<20)
	for range 600 {
		_, err = fw.Write(chunk)
		must(err)
	}
	_, err = fw.Write([]byte(`</w:t></w:r></w:p>` + docTail))
	must(err)
	must(fw.Close())

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, p := range minimalDocx("x")[:2] {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: p.name, Method: zip.Deflate})
		must(err)
		_, err = w.Write(p.data)
		must(err)
	}
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name:               "word/document.xml",
		Method:             zip.Deflate,
		CRC32:              0x12345678, // never reached: reading stops at the declared size
		CompressedSize64:   uint64(comp.Len()),
		UncompressedSize64: 4096,
	})
	must(err)
	_, err = w.Write(comp.Bytes())
	must(err)
	must(zw.Close())
	return buf.Bytes()
}

// manyEntries returns a docx with n empty stored entries besides the
// minimal document, written raw to keep the file small (about 90 bytes an
// entry).
func manyEntries(n int) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, p := range minimalDocx("Many entries.") {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: p.name, Method: zip.Deflate})
		must(err)
		_, err = w.Write(p.data)
		must(err)
	}
	for i := range n {
		_, err := zw.CreateRaw(&zip.FileHeader{Name: fmt.Sprintf("x/%x", i), Method: zip.Store, CRC32: crc32.ChecksumIEEE(nil)})
		must(err)
	}
	must(zw.Close())
	return buf.Bytes()
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	if n >= 2 && b[0] == 'P' && b[1] == 'K' {
		b[0] = 'X'
	}
	return b
}

// ---------------------------------------------------------------- pictures

// textPNG draws lines of text in basicfont, scaled up so OCR can read it,
// with a sparse deterministic speckle.
func textPNG(textLines []string, scale int) []byte {
	face := basicfont.Face7x13
	w, h := 0, len(textLines)*16+12
	for _, l := range textLines {
		w = max(w, len(l)*7+16)
	}
	small := image.NewGray(image.Rect(0, 0, w, h))
	for i := range small.Pix {
		small.Pix[i] = 255
	}
	d := font.Drawer{Dst: small, Src: image.NewUniform(color.Gray{Y: 0}), Face: face}
	for i, l := range textLines {
		d.Dot = fixed.P(8, 18+i*16)
		d.DrawString(l)
	}
	big := image.NewGray(image.Rect(0, 0, w*scale, h*scale))
	rng := rand.New(rand.NewPCG(7, 7))
	for y := range h * scale {
		for x := range w * scale {
			v := small.GrayAt(x/scale, y/scale).Y
			if v == 255 && rng.IntN(64) == 0 {
				v = 232 // sparse speckle, like a scan
			}
			big.SetGray(x, y, color.Gray{Y: v})
		}
	}
	var buf bytes.Buffer
	must(png.Encode(&buf, big))
	return buf.Bytes()
}

// iconPNG is a 16×16 icon: below the size floor, so never OCRed.
func iconPNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			img.Set(x, y, color.RGBA{R: uint8(x * 16), G: uint8(y * 16), B: 128, A: 255})
		}
	}
	var buf bytes.Buffer
	must(png.Encode(&buf, img))
	return buf.Bytes()
}
