package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// Tesseract runs the tesseract CLI (real CPU OCR), one process per page
// with OMP_THREAD_LIMIT=1: OpenMP on a shared machine makes it ~6× slower.
// The page's markdown is tesseract's plain text; its blocks (one per
// paragraph, with line and word-confidence detail) come from the TSV
// renderer of the same run.
type Tesseract struct {
	path  string
	langs string
}

// NewTesseract returns a tesseract engine; path defaults to "tesseract" and
// langs to "eng".
func NewTesseract(path, langs string) *Tesseract {
	if path == "" {
		path = "tesseract"
	}
	if langs == "" {
		langs = "eng"
	}
	return &Tesseract{path: path, langs: langs}
}

// Name returns "tesseract".
func (t *Tesseract) Name() string { return NameTesseract }

// Check reports whether the tesseract binary can be run.
func (t *Tesseract) Check(ctx context.Context) error {
	if _, err := exec.LookPath(t.path); err != nil {
		return fmt.Errorf("tesseract: %w (install it with: apt-get install tesseract-ocr)", err)
	}
	return nil
}

// TesseractTimeout bounds one tesseract run when the caller set no
// deadline: a pathological image must not hold a worker forever.
const TesseractTimeout = 2 * time.Minute

// Recognize OCRs the page image passed on stdin. A tesseract that cannot
// read the image is a permanent failure; a deadline is transient. Without a
// caller deadline, TesseractTimeout applies.
func (t *Tesseract) Recognize(ctx context.Context, p Page) (Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, TesseractTimeout)
		defer cancel()
	}
	// One run, two renderers: tsv (word boxes and confidences) and txt
	// (the text as tesseract lays it out), both to stdout.
	cmd := exec.CommandContext(ctx, t.path, "stdin", "stdout", "-l", t.langs, "txt", "tsv")
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
	cmd.Stdin = bytes.NewReader(p.Image)
	var out, stderr bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("tesseract page %d: %w", p.Number, ctx.Err())
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return Result{}, failure.Permanent("tesseract page %d: %v: %s", p.Number, err, lastLine(stderr.String()))
		}
		return Result{}, failure.Permanent("tesseract page %d: %v", p.Number, err)
	}
	raw := out.String()
	md, blocks := ParseTesseract(raw)
	return Result{Markdown: md, Raw: raw, Blocks: blocks}, nil
}

// ParseTesseract reads the output of one tesseract run with the txt and
// tsv renderers: the markdown is the plain text as Paragraphs normalises
// it (exactly what a txt-only run gives), the blocks are the TSV's
// paragraphs with boxes in the image's pixels.
func ParseTesseract(out string) (markdown string, blocks []Block) {
	text, rows := splitTSV(out)
	markdown = Paragraphs(text)
	return markdown, tsvBlocks(rows, markdown)
}

// Paragraphs normalises plain OCR text to markdown paragraphs: lines of a
// paragraph are joined with spaces, paragraphs separated by one blank line,
// form feeds dropped.
func Paragraphs(text string) string {
	text = strings.ReplaceAll(text, "\f", "\n")
	var paras []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			paras = append(paras, strings.Join(cur, " "))
			cur = cur[:0]
		}
	}
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return strings.Join(paras, "\n\n")
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
