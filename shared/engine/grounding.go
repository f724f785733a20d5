package engine

import (
	"math"
	"regexp"
	"strconv"
	"strings"
)

// DeepSeek-OCR's grounding markup: every layout block of a page opens with
//
//	<|ref|>LABEL<|/ref|><|det|>[[x1, y1, x2, y2]]<|/det|>
//
// followed by its content (markdown, an HTML <table>, \[…\] LaTeX) up to
// the next block. Coordinates are normalised to 0–999 of the image the
// model saw, as DeepSeek-OCR's own run_dpsk_ocr_pdf.py reads them (docs/engines.md).
const (
	refOpen  = "<|ref|>"
	refClose = "<|/ref|>"
	detOpen  = "<|det|>"
	detClose = "<|/det|>"
)

// Parser limits: anything beyond them is not grounding markup the model
// emits, so the header counts as malformed and is kept as text.
const (
	maxLabelBytes = 64
	maxDetBytes   = 2048
	maxBoxes      = 64
	maxCoord      = 999
)

// Block is one layout block of a page as the engine reported it:
// DeepSeek-OCR's grounding blocks, tesseract's paragraphs.
type Block struct {
	// Label is the block type the model named (title, sub_title, text,
	// table, equation, image, image_caption, table_caption …); "" for text
	// outside any block (or a malformed header, see Malformed).
	Label string `json:"label"`
	// Boxes are the block's boxes in page pixels, [x1, y1, x2, y2] (a ref
	// may carry several); nil when the block has none.
	Boxes [][4]int `json:"boxes,omitempty"`
	// Text is the block's cleaned markdown, exactly Markdown[Start:End].
	Text string `json:"text"`
	// Start and End are the byte span of Text in the page markdown.
	Start int `json:"start"`
	End   int `json:"end"`
	// Image is the markdown image path standing for an image block
	// ("images/<page>_<i>.jpg", the authors' convention; the crop itself
	// is not stored — cut it from the page image with Boxes).
	Image string `json:"image,omitempty"`
	// Malformed marks grounding markup that did not parse strictly: it is
	// kept verbatim in the markdown rather than dropped.
	Malformed bool `json:"malformed,omitempty"`
	// Confidence is the engine's confidence in the block (0–1), when it
	// has one (tesseract: its words' mean confidence).
	Confidence *float64 `json:"confidence,omitempty"`
	// Lines are the block's text lines with their boxes in page pixels,
	// when the engine reports lines (tesseract).
	Lines []Line `json:"lines,omitempty"`
}

// Line is one text line of a block.
type Line struct {
	// Box is the line's box in page pixels, [x1, y1, x2, y2].
	Box  [4]int `json:"box"`
	Text string `json:"text"`
	// Confidence is the line's words' mean confidence (0–1), when known.
	Confidence *float64 `json:"confidence,omitempty"`
}

// groundSeg is one parsed segment of a raw answer: text before any block,
// a well-formed block, or a malformed header with what follows it.
type groundSeg struct {
	label     string
	boxes     [][4]int // normalised 0–999
	body      string
	malformed bool
}

// specialToken matches DeepSeek's special tokens, which stay in the text
// when skip_special_tokens is false, e.g. <｜end▁of▁sentence｜> (full-width
// bars).
var specialToken = regexp.MustCompile(`<｜[^｜<>\n]{1,40}｜>`)

// EOSToken is DeepSeek's end-of-sentence token as it appears in the text
// with skip_special_tokens=false.
const EOSToken = "<｜end▁of▁sentence｜>"

// parseGrounding splits raw into segments. It never evaluates anything:
// boxes are read by a strict hand-written scanner, and a header that does
// not match the grammar exactly becomes a malformed segment holding the
// header and its body verbatim.
func parseGrounding(raw string) []groundSeg {
	var segs []groundSeg
	first := strings.Index(raw, refOpen)
	if first < 0 {
		return []groundSeg{{body: raw}}
	}
	if first > 0 {
		segs = append(segs, groundSeg{body: raw[:first]})
	}
	for i := first; i < len(raw); {
		label, boxes, n, ok := parseHeader(raw[i:])
		bodyStart := i + n
		if !ok {
			bodyStart = i + len(refOpen)
		}
		next := strings.Index(raw[bodyStart:], refOpen)
		end := len(raw)
		if next >= 0 {
			end = bodyStart + next
		}
		if ok {
			segs = append(segs, groundSeg{label: label, boxes: boxes, body: raw[bodyStart:end]})
		} else {
			segs = append(segs, groundSeg{body: raw[i:end], malformed: true})
		}
		i = end
	}
	return segs
}

// parseHeader reads one "<|ref|>label<|/ref|><|det|>boxes<|/det|>" at the
// start of s and returns the label, the boxes and the header's length.
func parseHeader(s string) (label string, boxes [][4]int, n int, ok bool) {
	if !strings.HasPrefix(s, refOpen) {
		return "", nil, 0, false
	}
	rest := s[len(refOpen):]
	end := strings.Index(window(rest, maxLabelBytes+len(refClose)), refClose)
	if end <= 0 || end > maxLabelBytes {
		return "", nil, 0, false
	}
	label = rest[:end]
	if strings.ContainsAny(label, "\n\r<>|") || strings.TrimSpace(label) != label {
		return "", nil, 0, false
	}
	rest = rest[end+len(refClose):]
	if !strings.HasPrefix(rest, detOpen) {
		return "", nil, 0, false
	}
	rest = rest[len(detOpen):]
	dend := strings.Index(window(rest, maxDetBytes+len(detClose)), detClose)
	if dend < 0 || dend > maxDetBytes {
		return "", nil, 0, false
	}
	boxes, ok = parseBoxes(rest[:dend])
	if !ok {
		return "", nil, 0, false
	}
	n = len(refOpen) + end + len(refClose) + len(detOpen) + dend + len(detClose)
	return label, boxes, n, true
}

// window bounds a search to the first n bytes of s, so parsing stays
// linear in the answer however many headers it holds.
func window(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseBoxes reads "[[x1, y1, x2, y2], …]" with integers in 0..999,
// x1 ≤ x2 and y1 ≤ y2, spaces allowed between tokens.
func parseBoxes(s string) ([][4]int, bool) {
	sc := boxScanner{s: s}
	if !sc.eat('[') {
		return nil, false
	}
	var boxes [][4]int
	for {
		var b [4]int
		if !sc.eat('[') {
			return nil, false
		}
		for k := range 4 {
			if k > 0 && !sc.eat(',') {
				return nil, false
			}
			v, ok := sc.int()
			if !ok {
				return nil, false
			}
			b[k] = v
		}
		if !sc.eat(']') || b[0] > b[2] || b[1] > b[3] {
			return nil, false
		}
		boxes = append(boxes, b)
		if len(boxes) > maxBoxes {
			return nil, false
		}
		if sc.eat(']') {
			break
		}
		if !sc.eat(',') {
			return nil, false
		}
	}
	sc.space()
	return boxes, sc.i == len(sc.s)
}

type boxScanner struct {
	s string
	i int
}

func (b *boxScanner) space() {
	for b.i < len(b.s) && (b.s[b.i] == ' ' || b.s[b.i] == '\t') {
		b.i++
	}
}

func (b *boxScanner) eat(c byte) bool {
	b.space()
	if b.i < len(b.s) && b.s[b.i] == c {
		b.i++
		return true
	}
	return false
}

func (b *boxScanner) int() (int, bool) {
	b.space()
	start := b.i
	for b.i < len(b.s) && b.s[b.i] >= '0' && b.s[b.i] <= '9' && b.i-start < 4 {
		b.i++
	}
	if b.i == start {
		return 0, false
	}
	v, err := strconv.Atoi(b.s[start:b.i])
	if err != nil || v > maxCoord {
		return 0, false
	}
	return v, true
}

// cleanText applies the DeepSeek authors' clean-up to a span of answer
// text (run_dpsk_ocr_pdf.py): special tokens such as the end-of-sentence
// token go, \coloneqq becomes := and \eqqcolon =:, and runs of three or
// more newlines collapse to one blank line.
func cleanText(s string) string {
	s = stripSpecial(s)
	s = strings.ReplaceAll(s, `\coloneqq`, ":=")
	s = strings.ReplaceAll(s, `\eqqcolon`, "=:")
	return collapseNewlines(s)
}

func collapseNewlines(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if !strings.Contains(s, "\n\n\n") {
		return s
	}
	var b strings.Builder
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			run++
			if run > 2 {
				continue
			}
		} else {
			run = 0
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Grounded is a parsed DeepSeek answer.
type Grounded struct {
	// Markdown is the page text with every well-formed grounding header
	// removed (image headers become image links), cleaned up.
	Markdown string
	// Blocks lists the page's blocks in answer order, boxes in pixels.
	Blocks []Block
}

// ParseGrounding parses a DeepSeek-OCR answer for page number page whose
// image is width×height pixels (the page as convert rendered it: the model
// saw an aspect-preserving resize of it, so normalised coordinates map
// onto it). It never fails and never panics: malformed markup is kept as
// text and flagged.
func ParseGrounding(raw string, page, width, height int) Grounded {
	var md strings.Builder
	var blocks []Block
	images := 0
	for _, seg := range parseGrounding(raw) {
		var text, img string
		if seg.malformed {
			text = strings.TrimSpace(stripSpecial(seg.body))
		} else {
			text = strings.TrimSpace(cleanText(seg.body))
		}
		if seg.label == "image" && !seg.malformed {
			img = "images/" + strconv.Itoa(page) + "_" + strconv.Itoa(images) + ".jpg"
			images++
			link := "![](" + img + ")"
			if text == "" {
				text = link
			} else {
				text = link + "\n" + text
			}
		}
		if text == "" && seg.label == "" {
			continue // whitespace between blocks
		}
		if md.Len() > 0 && text != "" {
			md.WriteString("\n\n")
		}
		start := md.Len()
		md.WriteString(text)
		// A stray delimiter in a block's text is markup that did not parse
		// either: kept, and flagged like a malformed header.
		b := Block{Label: seg.label, Text: text, Start: start, End: md.Len(), Image: img, Malformed: seg.malformed || hasDelimiter(text)}
		for _, box := range seg.boxes {
			b.Boxes = append(b.Boxes, toPixels(box, width, height))
		}
		blocks = append(blocks, b)
	}
	return Grounded{Markdown: md.String(), Blocks: blocks}
}

// toPixels maps a 0–999 box onto a width×height page.
func toPixels(b [4]int, width, height int) [4]int {
	px := func(v, size int) int { return int(math.Round(float64(v) / maxCoord * float64(size))) }
	return [4]int{px(b[0], width), px(b[1], height), px(b[2], width), px(b[3], height)}
}

// HasGroundingTags reports whether s still holds grounding markup or
// DeepSeek special tokens.
func HasGroundingTags(s string) bool {
	return hasDelimiter(s) || specialToken.MatchString(s)
}

func hasDelimiter(s string) bool {
	for _, t := range []string{refOpen, refClose, detOpen, detClose} {
		if strings.Contains(s, t) {
			return true
		}
	}
	return false
}

// stripSpecial removes special tokens until none is left: removing one can
// join the halves of another ("<｜<｜a｜>b｜>"). Nesting deeper than a few
// levels is not model output; its full-width bars go, which keeps the work
// linear.
func stripSpecial(s string) string {
	for range 4 {
		if !specialToken.MatchString(s) {
			return s
		}
		s = specialToken.ReplaceAllString(s, "")
	}
	if specialToken.MatchString(s) {
		s = strings.ReplaceAll(s, "｜", "")
	}
	return s
}
