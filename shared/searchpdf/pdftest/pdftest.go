// Package pdftest reads PDFs back in tests with poppler's command-line
// tools (pdftotext, pdfinfo; make test installs poppler-utils) and
// measures recognized text by its character error rate.
package pdftest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// Need skips t when poppler-utils is not installed.
func Need(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"pdftotext", "pdfinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s (poppler-utils) is not installed: make test installs it", tool)
		}
	}
}

// file writes pdf to a temporary file for the tools.
func file(t *testing.T, pdf []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "doc.pdf")
	require.NoError(t, os.WriteFile(p, pdf, 0o600))
	return p
}

// Text returns pdftotext's text of pages first to last (0, 0: all).
func Text(t *testing.T, pdf []byte, first, last int) string {
	t.Helper()
	args := []string{}
	if first > 0 {
		args = append(args, "-f", strconv.Itoa(first), "-l", strconv.Itoa(last))
	}
	out, err := exec.Command("pdftotext", append(args, file(t, pdf), "-")...).Output()
	require.NoError(t, err, "pdftotext")
	return string(out)
}

// Pages returns the page sizes in points (rotation applied) pdfinfo
// reports, in page order.
func Pages(t *testing.T, pdf []byte) [][2]float64 {
	t.Helper()
	out, err := exec.Command("pdfinfo", "-f", "1", "-l", "100000", file(t, pdf)).Output()
	require.NoError(t, err, "pdfinfo")
	var sizes [][2]float64
	rot := map[int]int{}
	for line := range strings.SplitSeq(string(out), "\n") {
		var n, deg int
		var w, h float64
		if _, err := fmt.Sscanf(line, "Page %d size: %g x %g", &n, &w, &h); err == nil {
			sizes = append(sizes, [2]float64{w, h})
		}
		if _, err := fmt.Sscanf(line, "Page %d rot: %d", &n, &deg); err == nil {
			rot[n] = deg
		}
	}
	for n, deg := range rot {
		if (deg == 90 || deg == 270) && n-1 < len(sizes) {
			sizes[n-1] = [2]float64{sizes[n-1][1], sizes[n-1][0]}
		}
	}
	return sizes
}

// Normalize reduces text to what a character error rate compares:
// lowercase words separated by single spaces, without markdown markers
// and page separators.
func Normalize(s string) string {
	var b strings.Builder
	for _, w := range strings.Fields(s) {
		w = strings.Trim(w, "#*|>-—")
		if w == "" || strings.HasPrefix(w, "<!--") {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.ToLower(w))
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, b.String())
}

// CER is the character error rate of got against want: the Levenshtein
// distance of their normalized forms over the length of want's.
func CER(want, got string) float64 {
	a, b := []rune(Normalize(want)), []rune(Normalize(got))
	if len(a) == 0 {
		if len(b) == 0 {
			return 0
		}
		return 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return float64(prev[len(b)]) / float64(len(a))
}

// Same reports whether two texts have the same words in the same order.
func Same(a, b string) bool { return bytes.Equal([]byte(Normalize(a)), []byte(Normalize(b))) }
