package vllmtest

import (
	"fmt"
	"strings"
)

// eos is DeepSeek's end-of-sentence token as vLLM leaves it in the text
// when skip_special_tokens is false.
const eos = "<｜end▁of▁sentence｜>"

// answer builds the model's reply for a valid request.
func (s *Server) answer(c Call, req checked, fault Fault) (content, finish string) {
	text := fmt.Sprintf("An unmarked page [img:%016x].", aHash(req.img))
	title := "Unmarked page"
	if c.Marked {
		text = PageText(c.Tag, c.Page)
		title = fmt.Sprintf("Page %d", c.Page)
	}
	switch fault {
	case FaultLoop:
		unit := "the model read this line again and again. "
		n := min(req.maxTokens*4, 64<<10) / len(unit)
		loop := strings.Repeat(unit, max(n, 1))
		if s.contract.vllmExtras {
			return "<|ref|>text<|/ref|><|det|>[[80, 120, 920, 990]]<|/det|>\n" + loop, "length"
		}
		return loop, "length"
	case FaultEmpty:
		switch {
		case s.contract.vllmExtras:
			return eos, "stop"
		case s.cfg.Profile == ProfileOlmOCR2:
			return "---\nprimary_language: null\nis_rotation_valid: True\nrotation_correction: 0\nis_table: False\nis_diagram: False\n---\n", "stop"
		}
		return "", "stop"
	}
	switch {
	case s.contract.vllmExtras:
		return deepSeekAnswer(title, text, c), "stop"
	case s.cfg.Profile == ProfileOlmOCR2:
		valid := "True"
		if c.Correction != 0 {
			valid = "False"
		}
		return fmt.Sprintf("---\nprimary_language: en\nis_rotation_valid: %s\nrotation_correction: %d\nis_table: False\nis_diagram: False\n---\n# %s\n\n%s\n",
			valid, c.Correction, title, text), "stop"
	}
	return fmt.Sprintf("```markdown\n# %s\n\n%s\n```", title, text), "stop"
}

// deepSeekAnswer is a page in DeepSeek-OCR's grounding format: a title, a
// paragraph naming the page, an HTML table, an equation with \coloneqq, an
// image with its caption, and the end-of-sentence token.
func deepSeekAnswer(title, text string, c Call) string {
	var b strings.Builder
	block := func(label string, box [4]int, body string) {
		fmt.Fprintf(&b, "<|ref|>%s<|/ref|><|det|>[[%d, %d, %d, %d]]<|/det|>\n%s\n\n", label, box[0], box[1], box[2], box[3], body)
	}
	block("title", [4]int{80, 40, 920, 90}, "# "+title)
	block("text", [4]int{80, 120, 920, 300}, text)
	block("table", [4]int{80, 320, 920, 480}, fmt.Sprintf("<table><tr><td>page</td><td>%d</td></tr><tr><td>document</td><td>%d</td></tr></table>", c.Page, c.Tag))
	block("equation", [4]int{200, 500, 800, 560}, fmt.Sprintf(`\[ p \coloneqq %d \]`, c.Page))
	block("image", [4]int{100, 600, 500, 900}, "")
	block("image_caption", [4]int{100, 910, 500, 950}, fmt.Sprintf("Figure %d.", c.Page))
	return strings.TrimRight(b.String(), "\n") + "\n" + eos
}
