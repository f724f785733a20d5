package office_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/office"
)

// The fuzz targets feed bytes as a file. Bytes that do not start like a zip
// are first wrapped as the main XML part of a minimal package: a mutated
// zip almost always fails its CRC before any XML is parsed, so this is what
// lets the fuzzer reach the XML readers. Seeds live in testdata/fuzz
// (written by go run ./testdata/office/gen); plain go test runs only them.

func FuzzDOCX(f *testing.F) {
	path := filepath.Join(f.TempDir(), "in.docx")
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(data, []byte("PK")) {
			data = zipParts(t, map[string][]byte{
				"_rels/.rels":                  []byte(rootRels("word/document.xml")),
				"word/document.xml":            data,
				"word/_rels/document.xml.rels": []byte(fuzzDocRels),
				"word/styles.xml":              []byte(fuzzStyles),
				"word/numbering.xml":           []byte(fuzzNumbering),
				"word/media/image1.png":        chartPNG(t),
			})
		}
		fuzzExtract(t, path, data, office.DOCX)
	})
}

func FuzzPPTX(f *testing.F) {
	path := filepath.Join(f.TempDir(), "in.pptx")
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(data, []byte("PK")) {
			data = zipParts(t, map[string][]byte{
				"_rels/.rels":                      []byte(rootRels("ppt/presentation.xml")),
				"ppt/presentation.xml":             []byte(fuzzPresentation),
				"ppt/_rels/presentation.xml.rels":  []byte(rels(`<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide" Target="slides/slide1.xml"/>`)),
				"ppt/slides/slide1.xml":            data,
				"ppt/slides/_rels/slide1.xml.rels": []byte(fuzzSlideRels),
				"ppt/notesSlides/notesSlide1.xml":  data,
				"ppt/media/image1.png":             chartPNG(t),
			})
		}
		fuzzExtract(t, path, data, office.PPTX)
	})
}

// fuzzExtract writes data to path and checks the invariants: no panic, an
// error is always a validation error (the input is a local file), and pages
// are well formed. Each fuzz process runs its inputs one at a time, so one
// file per process (f.TempDir) is safe; a t.TempDir per input would cut
// the rate a hundredfold.
func fuzzExtract(t *testing.T, path string, data []byte, kind office.Kind) {
	require.NoError(t, os.WriteFile(path, data, 0o644))
	pages, err := office.Extract(context.Background(), path, kind, office.Limits{MaxEntries: 1000, MaxUncompressed: 16 << 20})
	if err != nil {
		if !errors.Is(err, failure.ErrValidation) {
			t.Fatalf("unclassified error: %v", err)
		}
		return
	}
	if len(pages) == 0 {
		t.Fatal("no pages and no error")
	}
	for i, p := range pages {
		if !utf8.ValidString(p.Markdown) {
			t.Errorf("page %d: invalid UTF-8", i)
		}
		for _, img := range p.Images {
			if len(img.Data) < office.MinImageBytes || img.MIME == "" || img.Width <= 0 || img.Height <= 0 {
				t.Errorf("page %d: bad image %s %s %dx%d", i, img.Name, img.MIME, img.Width, img.Height)
			}
		}
	}
}

func zipParts(t *testing.T, parts map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"_rels/.rels", "word/document.xml", "word/_rels/document.xml.rels", "word/styles.xml",
		"word/numbering.xml", "word/media/image1.png", "ppt/presentation.xml", "ppt/_rels/presentation.xml.rels",
		"ppt/slides/slide1.xml", "ppt/slides/_rels/slide1.xml.rels", "ppt/notesSlides/notesSlide1.xml", "ppt/media/image1.png"} {
		data, ok := parts[name]
		if !ok {
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

var chartCache []byte

// chartPNG is the sample chart picture, so wrapped inputs can reference a
// real image as rId1.
func chartPNG(t *testing.T) []byte {
	if chartCache == nil {
		zr, err := zip.OpenReader(sample("report.docx"))
		require.NoError(t, err)
		defer func() { require.NoError(t, zr.Close()) }()
		rc, err := zr.Open("word/media/image1.png")
		require.NoError(t, err)
		defer func() { require.NoError(t, rc.Close()) }()
		data, err := io.ReadAll(rc)
		require.NoError(t, err)
		chartCache = data
	}
	return chartCache
}

func rels(body string) string {
	return `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` + body + `</Relationships>`
}

func rootRels(main string) string {
	return rels(`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="` + main + `"/>`)
}

var (
	fuzzDocRels = rels(`<Relationship Id="rIdChart" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/image1.png"/>` +
		`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/image1.png"/>`)
	fuzzSlideRels = rels(`<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="../media/image1.png"/>` +
		`<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/notesSlide" Target="../notesSlides/notesSlide1.xml"/>`)
)

const fuzzStyles = `<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">` +
	`<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/></w:style>` +
	`<w:style w:type="paragraph" w:styleId="Loop1"><w:name w:val="loop"/><w:basedOn w:val="Loop2"/></w:style>` +
	`<w:style w:type="paragraph" w:styleId="Loop2"><w:name w:val="loop"/><w:basedOn w:val="Loop1"/></w:style>` +
	`<w:style w:type="paragraph" w:styleId="ListStyle"><w:name w:val="List"/><w:pPr><w:numPr><w:numId w:val="3"/></w:numPr></w:pPr></w:style>` +
	`</w:styles>`

const fuzzNumbering = `<w:numbering xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">` +
	`<w:abstractNum w:abstractNumId="0"><w:lvl w:ilvl="0"><w:numFmt w:val="bullet"/></w:lvl></w:abstractNum>` +
	`<w:abstractNum w:abstractNumId="1"><w:numStyleLink w:val="ListStyle"/></w:abstractNum>` +
	`<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num>` +
	`<w:num w:numId="3"><w:abstractNumId w:val="1"/></w:num>` +
	`</w:numbering>`

const fuzzPresentation = `<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" ` +
	`xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><p:sldIdLst><p:sldId id="256" r:id="rId2"/></p:sldIdLst></p:presentation>`
