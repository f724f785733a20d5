package render

import (
	"bytes"
	"io"
	"os"
)

// Formats LibreOffice reads and ocrflow converts to PDF first (see
// Format.Legacy). MuPDF cannot open them.
const (
	FormatDOC Format = "doc"
	FormatXLS Format = "xls"
	FormatPPT Format = "ppt"
	FormatODT Format = "odt"
	FormatODS Format = "ods"
	FormatODP Format = "odp"
)

// legacyNames are the user-facing names of the legacy formats.
var legacyNames = map[Format]string{
	FormatDOC: "Word 97-2003 (.doc)",
	FormatXLS: "Excel 97-2003 (.xls)",
	FormatPPT: "PowerPoint 97-2003 (.ppt)",
	FormatODT: "OpenDocument text (.odt)",
	FormatODS: "OpenDocument spreadsheet (.ods)",
	FormatODP: "OpenDocument presentation (.odp)",
}

// legacyByMIME maps the MIME types the sniffer reports to legacy formats.
// Office 97-2003 files mostly sniff as plain OLE storage; oleFormat looks
// inside for their main stream.
var legacyByMIME = map[string]Format{
	"application/msword":                              FormatDOC,
	"application/vnd.ms-excel":                        FormatXLS,
	"application/vnd.ms-powerpoint":                   FormatPPT,
	"application/vnd.oasis.opendocument.text":         FormatODT,
	"application/vnd.oasis.opendocument.spreadsheet":  FormatODS,
	"application/vnd.oasis.opendocument.presentation": FormatODP,
}

// Legacy reports whether f is an office format only LibreOffice reads:
// Office 97-2003 binaries and OpenDocument.
func (f Format) Legacy() bool { _, ok := legacyNames[f]; return ok }

// Describe names f for messages: "Word 97-2003 (.doc)" for a legacy
// format, else the format in capitals ("PDF", "DOCX").
func (f Format) Describe() string {
	if n, ok := legacyNames[f]; ok {
		return n
	}
	return string(bytes.ToUpper([]byte(f)))
}

// OLE storage stream names, as UTF-16LE in the directory entries.
var (
	oleEncrypted = utf16le("EncryptedPackage")
	oleStreams   = []struct {
		name   []byte
		format Format
	}{
		{utf16le("WordDocument"), FormatDOC},
		{utf16le("Workbook"), FormatXLS},
		{utf16le("Book"), FormatXLS}, // Excel 5/95
		{utf16le("PowerPoint Document"), FormatPPT},
	}
)

// oleFormat finds which Office 97-2003 format the OLE compound file at path
// holds by looking for its main stream's directory entry. encrypted is true
// for an OOXML document saved with a password (an OLE wrapper holding an
// EncryptedPackage stream). The directory may sit anywhere in the file, so
// the file is scanned in 1 MiB windows that overlap by one name.
func oleFormat(path string) (f Format, encrypted bool) {
	file, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer func() { _ = file.Close() }() // read-only: nothing is lost
	const window, overlap = 1 << 20, 64
	buf := make([]byte, window+overlap)
	keep := 0
	for {
		n, err := io.ReadFull(file, buf[keep:])
		chunk := buf[:keep+n]
		if bytes.Contains(chunk, oleEncrypted) {
			return "", true
		}
		for _, s := range oleStreams {
			if bytes.Contains(chunk, s.name) {
				return s.format, false
			}
		}
		if err != nil {
			return "", false
		}
		keep = copy(buf, chunk[len(chunk)-overlap:])
	}
}

func utf16le(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, r := range s {
		b = append(b, byte(r), 0)
	}
	return b
}
