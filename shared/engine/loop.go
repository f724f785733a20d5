package engine

import (
	"strings"
	"unicode/utf8"
)

// Loop detection: a model stuck in a repetition loop emits the same unit
// over and over until max_tokens. vLLM then says finish_reason "length";
// looping catches loops the n-gram guard bent into a slightly different
// shape that still ended (or a server that ended them by a stop string).
const (
	loopTail      = 4096 // bytes of the answer's end examined
	loopMinRun    = 1024 // a periodic run at least this long …
	loopMinPeriod = 4    // … of a unit at least this long …
	loopMaxPeriod = 256
	loopMinRunes  = 3 // … with at least this many distinct characters
)

// looping reports whether text ends in a long periodic run. Markup is
// ignored (a table of empty cells repeats legitimately), and so are units
// made of one or two distinct characters (rules, dot leaders).
func looping(text string) bool {
	t := stripTags(text)
	if len(t) > loopTail {
		t = t[len(t)-loopTail:]
	}
	if len(t) < loopMinRun {
		return false
	}
	for p := loopMinPeriod; p <= loopMaxPeriod && p*2 <= len(t); p++ {
		run := 0
		for i := len(t) - 1; i >= p && t[i] == t[i-p]; i-- {
			run++
		}
		if run+p < loopMinRun {
			continue
		}
		unit := t[len(t)-p:]
		if distinctRunes(unit) >= loopMinRunes {
			return true
		}
	}
	return false
}

// stripTags removes <…> markup and collapses whitespace runs to one space.
func stripTags(s string) string {
	var b strings.Builder
	in, space := false, false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>' && in:
			in = false
		case in:
		case r == ' ' || r == '\n' || r == '\t' || r == '\r':
			space = true
		default:
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
		}
	}
	return b.String()
}

func distinctRunes(s string) int {
	seen := map[rune]bool{}
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		seen[r] = true
		s = s[n:]
	}
	return len(seen)
}
