package engine

import (
	"strconv"
	"strings"
)

// frontMatter is olmOCR's YAML front matter, e.g.
//
//	---
//	primary_language: en
//	is_rotation_valid: True
//	rotation_correction: 0
//	is_table: False
//	is_diagram: False
//	---
type frontMatter struct {
	rotationValid      bool
	rotationCorrection int
	// meta holds every key as text, for the page's sidecar.
	meta map[string]string
}

// maxFrontMatterLines bounds the scan for the closing "---".
const maxFrontMatterLines = 32

// parseFrontMatter splits an olmOCR answer into its front matter and
// markdown body. It reads only flat "key: value" lines (no YAML library,
// nothing evaluated); ok is false when the answer does not open with a
// well-formed block, and then the whole answer is the body. Unknown keys
// are kept in meta; a rotation_correction other than 0, 90, 180 or 270 is
// ignored (read as 0).
func parseFrontMatter(s string) (fm frontMatter, body string, ok bool) {
	fm.rotationValid = true
	t := strings.TrimLeft(s, " \t\r\n")
	if !strings.HasPrefix(t, "---\n") && !strings.HasPrefix(t, "---\r\n") {
		return fm, s, false
	}
	lines := strings.SplitAfter(t, "\n")
	meta := map[string]string{}
	consumed := len(lines[0])
	for i := 1; i < len(lines) && i <= maxFrontMatterLines; i++ {
		line := strings.TrimRight(lines[i], "\r\n")
		consumed += len(lines[i])
		if strings.TrimSpace(line) == "---" {
			fm.meta = meta
			if v, ok := meta["is_rotation_valid"]; ok {
				if b, known := yamlBool(v); known {
					fm.rotationValid = b
				}
			}
			if v, err := strconv.Atoi(meta["rotation_correction"]); err == nil && (v == 90 || v == 180 || v == 270) {
				fm.rotationCorrection = v
			}
			return fm, t[consumed:], true
		}
		k, v, found := strings.Cut(line, ":")
		k = strings.TrimSpace(k)
		if !found || k == "" || strings.ContainsAny(k, " \t") {
			return frontMatter{rotationValid: true}, s, false
		}
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		meta[k] = v
	}
	return frontMatter{rotationValid: true}, s, false
}

// yamlBool reads YAML 1.1 booleans as olmOCR writes them (True/False).
func yamlBool(v string) (value, known bool) {
	switch strings.ToLower(v) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}
