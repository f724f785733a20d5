//go:build nomupdf

package render

// This file replaces go-fitz (MuPDF, AGPL-3.0) with poppler's command-line
// tools run as separate processes, for builds that cannot ship AGPL code:
//
//	go build -tags nomupdf ./cmd/ocrflow
//
// Differences from the MuPDF build: PDFs only (no TIFF, XPS, EPUB, CBZ,
// SVG), no text layer (PageHTML reports none, so every page is OCRed), and a
// process per page. poppler-utils (pdfinfo, pdftoppm) must be installed.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// toolTimeout bounds one poppler process.
const toolTimeout = 60 * time.Second

type pdfDoc struct {
	path  string
	pages int
	// sizes are the pages' sizes in points, rotation applied (pdfinfo).
	sizes map[int]Size
}

func openFitz(path string, format Format) (*pdfDoc, error) {
	if format != FormatPDF {
		return nil, failure.Validation("%s needs MuPDF; this binary was built with -tags nomupdf (PDF only)", format)
	}
	// -f/-l make pdfinfo list every page's size and rotation.
	out, err := poppler("pdfinfo", "-f", "1", "-l", "1000000", path)
	if err != nil {
		if strings.Contains(err.Error(), "password") {
			return nil, failure.Validation("the pdf is encrypted and needs a password")
		}
		return nil, failure.Validation("the pdf is damaged and cannot be opened: %v", err)
	}
	d := &pdfDoc{path: path, sizes: map[int]Size{}}
	rot := map[int]int{}
	for line := range strings.SplitSeq(string(out), "\n") {
		var n, deg int
		var w, h float64
		if _, err := fmt.Sscanf(line, "Page %d size: %g x %g", &n, &w, &h); err == nil {
			d.sizes[n] = Size{W: w, H: h}
			continue
		}
		if _, err := fmt.Sscanf(line, "Page %d rot: %d", &n, &deg); err == nil {
			rot[n] = deg
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Pages":
			d.pages, _ = strconv.Atoi(v)
		case "Encrypted":
			if strings.HasPrefix(v, "yes") && strings.Contains(v, "copy:no") {
				return nil, failure.Validation("the pdf is encrypted")
			}
		}
	}
	for n, deg := range rot {
		if sz, ok := d.sizes[n]; ok && (deg == 90 || deg == 270) {
			d.sizes[n] = Size{W: sz.H, H: sz.W}
		}
	}
	return d, nil
}

func (p *pdfDoc) numPages() int { return p.pages }

func (p *pdfDoc) render(i int, t Target) (*image.RGBA, Size, error) {
	n := strconv.Itoa(i + 1)
	args := []string{"-f", n, "-l", n}
	if t.DPI > 0 && t.LongSide == 0 {
		args = append(args, "-r", strconv.FormatFloat(t.DPI, 'f', -1, 64))
	} else {
		args = append(args, "-scale-to", strconv.Itoa(longSide(t)))
	}
	out, err := poppler("pdftoppm", append(args, p.path)...)
	if err != nil {
		return nil, Size{}, failure.Validation("page %d cannot be rendered: %v", i+1, err)
	}
	img, err := decodePPM(bytes.NewReader(out))
	if err != nil {
		return nil, Size{}, failure.Validation("page %d cannot be rendered: %v", i+1, err)
	}
	return img, p.sizes[i+1], nil
}

func (p *pdfDoc) html(i int) (string, image.Rectangle, error) {
	return "", image.Rectangle{}, nil
}

func (p *pdfDoc) close() {}

func poppler(tool string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return nil, fmt.Errorf("%s: %w: %s", tool, err, msg)
	}
	return out, nil
}

// decodePPM reads a binary PPM (P6, maxval 255) as pdftoppm writes it.
func decodePPM(r io.Reader) (*image.RGBA, error) {
	br := bufio.NewReader(r)
	var magic string
	var w, h, maxval int
	if _, err := fmt.Fscan(br, &magic, &w, &h, &maxval); err != nil {
		return nil, fmt.Errorf("ppm header: %w", err)
	}
	if magic != "P6" || maxval != 255 || w <= 0 || h <= 0 || w > MaxLongSide*4 || h > MaxLongSide*4 {
		return nil, fmt.Errorf("ppm header %s %dx%d %d is not supported", magic, w, h, maxval)
	}
	if _, err := br.ReadByte(); err != nil { // the single whitespace after maxval
		return nil, fmt.Errorf("ppm header: %w", err)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	row := make([]byte, w*3)
	for y := range h {
		if _, err := io.ReadFull(br, row); err != nil {
			return nil, fmt.Errorf("ppm pixels: %w", err)
		}
		dst := img.Pix[y*img.Stride:]
		for x := range w {
			dst[x*4], dst[x*4+1], dst[x*4+2], dst[x*4+3] = row[x*3], row[x*3+1], row[x*3+2], 0xff
		}
	}
	return img, nil
}
