// Package docscheck keeps the commands shown in the documentation true.
// It reads every shell block (```sh, ```bash, ```shell) of README.md,
// docs/*.md and the READMEs of examples/ and either runs it or checks the
// annotation that says why it is not run and what covers it instead:
//
//	<!-- docs-check: run timeout=3m -->                      run (the default; the annotation is optional)
//	<!-- docs-check: background ready="msg=serving" -->      start it, wait for the text in its output, stop it at the end of the file
//	<!-- docs-check: covered by PATH[:Func], make TARGET -->  not run: the named tests or targets exercise it
//	<!-- docs-check: skip — REASON -->                       not run, for the reason given
//
// An annotation is the last non-blank line before the block's opening
// fence. Every reference of "covered by" must exist (a file or directory;
// with :Func, a func of that name in it; make TARGET, a rule of the
// Makefile), and every path a block names that starts with a top-level
// entry of the repository must exist, whether the block runs or not.
//
// The blocks of one file run in order, in one sandbox: a directory that
// mirrors the repository (symlinks, with testdata copied) where
// bin/ocrflow, built once, is also on PATH, with NATS_LISTEN and
// METRICS_ADDR on free loopback ports and every ocrflow configuration
// variable unset (the documented defaults apply). docs/README.md
// documents this for writers.
package docscheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Mode says what the checker does with a block.
type Mode int

// The modes, as annotations name them.
const (
	// Run runs the block and requires exit status 0.
	Run Mode = iota
	// Background starts the block, waits until its output contains the
	// Ready text, and stops it (SIGTERM to its process group) when the
	// file's last block has run.
	Background
	// Covered does not run the block: the tests or targets it names
	// exercise what it shows.
	Covered
	// Skip does not run the block, for the reason given.
	Skip
)

// String names the mode as annotations spell it.
func (m Mode) String() string {
	switch m {
	case Run:
		return "run"
	case Background:
		return "background"
	case Covered:
		return "covered"
	case Skip:
		return "skip"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// DefaultTimeout bounds a block that names no timeout, and the wait for a
// background block to become ready.
const DefaultTimeout = 2 * time.Minute

// Annotation is a parsed docs-check comment.
type Annotation struct {
	Mode Mode
	// Refs are the references of a Covered block: "path", "path:Func" or
	// "make target".
	Refs []string
	// Reason explains a skipped block.
	Reason string
	// Ready is the text a Background block prints when it is ready.
	Ready string
	// Timeout bounds a Run block, or a Background block's start.
	Timeout time.Duration
}

// Block is a shell block of a markdown file.
type Block struct {
	// File is the markdown file's path relative to the repository root.
	File string
	// Line is the 1-based line of the opening fence.
	Line int
	// Lang is the fence's language (sh, bash or shell).
	Lang string
	// Text is the block's content, its fence's indentation removed.
	Text string
	// Annotation says what to do with it (Run when there is none).
	Annotation Annotation
}

// Where returns "file:line".
func (b Block) Where() string { return b.File + ":" + strconv.Itoa(b.Line) }

var (
	shellLangs = map[string]bool{"sh": true, "bash": true, "shell": true}
	annotation = regexp.MustCompile(`^<!--\s*docs-check:\s*(.*?)\s*-->$`)
	setting    = regexp.MustCompile(`^(timeout|ready)=("(?:[^"\\]|\\.)*"|\S+)\s*`)
)

// Parse returns the shell blocks of a markdown file (file is its path
// relative to the repository root, for messages). It fails on a malformed
// annotation, an annotation not followed by a shell block, and a fence
// that is never closed.
func Parse(file string, src []byte) ([]Block, error) {
	var (
		out     []Block
		pending *Annotation
		pendAt  int
		errs    []error
	)
	lines := strings.Split(string(src), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if m := annotation.FindStringSubmatch(line); m != nil {
			if pending != nil {
				errs = append(errs, fmt.Errorf("%s:%d: annotation not followed by a shell block", file, pendAt))
			}
			a, err := parseAnnotation(m[1])
			if err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %w", file, i+1, err))
				pending = nil
				continue
			}
			pending, pendAt = &a, i+1
			continue
		}
		if strings.HasPrefix(line, "<!--") && strings.Contains(line, "docs-check") {
			errs = append(errs, fmt.Errorf("%s:%d: malformed docs-check comment (want <!-- docs-check: … --> on one line)", file, i+1))
			continue
		}
		fence, indent, info, ok := openFence(lines[i])
		if !ok {
			if line != "" && pending != nil {
				errs = append(errs, fmt.Errorf("%s:%d: annotation not followed by a shell block", file, pendAt))
				pending = nil
			}
			continue
		}
		start := i
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			if isClose(lines[i], fence) {
				closed = true
				break
			}
			body = append(body, dedent(lines[i], indent))
		}
		if !closed {
			errs = append(errs, fmt.Errorf("%s:%d: code fence is never closed", file, start+1))
			break
		}
		lang := strings.ToLower(strings.Fields(info + " x")[0])
		if !shellLangs[lang] {
			if pending != nil {
				errs = append(errs, fmt.Errorf("%s:%d: annotation not followed by a shell block (the next block is %q)", file, pendAt, lang))
				pending = nil
			}
			continue
		}
		b := Block{File: file, Line: start + 1, Lang: lang, Text: strings.Join(body, "\n") + "\n", Annotation: Annotation{Mode: Run}}
		if pending != nil {
			b.Annotation = *pending
			pending = nil
		}
		if strings.TrimSpace(b.Text) == "" {
			errs = append(errs, fmt.Errorf("%s: empty shell block", b.Where()))
		}
		out = append(out, b)
	}
	if pending != nil {
		errs = append(errs, fmt.Errorf("%s:%d: annotation not followed by a shell block", file, pendAt))
	}
	return out, errors.Join(errs...)
}

// parseAnnotation reads the text of a docs-check comment.
func parseAnnotation(s string) (Annotation, error) {
	word, rest, _ := strings.Cut(s, " ")
	rest = strings.TrimSpace(rest)
	switch word {
	case "run", "background":
		a := Annotation{Mode: Run}
		if word == "background" {
			a.Mode = Background
		}
		for rest != "" {
			m := setting.FindStringSubmatch(rest)
			if m == nil {
				return a, fmt.Errorf("docs-check %s: cannot read %q (want timeout=DURATION or ready=\"TEXT\")", word, rest)
			}
			rest = rest[len(m[0]):]
			val := m[2]
			if strings.HasPrefix(val, `"`) {
				v, err := strconv.Unquote(val)
				if err != nil {
					return a, fmt.Errorf("docs-check %s: %s: %w", word, m[1], err)
				}
				val = v
			}
			switch m[1] {
			case "timeout":
				d, err := time.ParseDuration(val)
				if err != nil || d <= 0 {
					return a, fmt.Errorf("docs-check %s: timeout %q is not a positive duration", word, val)
				}
				a.Timeout = d
			case "ready":
				if a.Mode != Background {
					return a, fmt.Errorf("docs-check run: ready= belongs to background blocks")
				}
				a.Ready = val
			}
		}
		if a.Mode == Background && a.Ready == "" {
			return a, errors.New(`docs-check background: say when it is ready: ready="TEXT it prints"`)
		}
		return a, nil
	case "covered":
		refs, ok := strings.CutPrefix(rest, "by ")
		if !ok {
			return Annotation{}, errors.New("docs-check covered: write \"covered by REF, REF\"")
		}
		a := Annotation{Mode: Covered}
		for r := range strings.SplitSeq(refs, ",") {
			if r = strings.TrimSpace(r); r != "" {
				a.Refs = append(a.Refs, r)
			}
		}
		if len(a.Refs) == 0 {
			return a, errors.New("docs-check covered by: name at least one test file, func or make target")
		}
		return a, nil
	case "skip":
		reason := strings.TrimSpace(strings.TrimLeft(rest, "—–-: "))
		if len(reason) < 10 {
			return Annotation{}, errors.New("docs-check skip: give the reason (skip — REASON)")
		}
		return Annotation{Mode: Skip, Reason: reason}, nil
	}
	return Annotation{}, fmt.Errorf("docs-check: unknown mode %q (run, background, covered by, skip)", word)
}

// openFence reports whether line opens a fenced code block: its fence
// (``` or ~~~, possibly longer), indentation and info string.
func openFence(line string) (fence string, indent int, info string, ok bool) {
	trimmed := strings.TrimLeft(line, " ")
	indent = len(line) - len(trimmed) // list items indent their blocks
	for _, c := range []string{"`", "~"} {
		n := len(trimmed) - len(strings.TrimLeft(trimmed, c))
		if n >= 3 {
			info = strings.TrimSpace(trimmed[n:])
			if c == "`" && strings.Contains(info, "`") {
				return "", 0, "", false
			}
			return trimmed[:n], indent, info, true
		}
	}
	return "", 0, "", false
}

// isClose reports whether line closes a block opened with fence.
func isClose(line, fence string) bool {
	t := strings.TrimSpace(line)
	return strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]) == ""
}

// dedent removes up to n leading spaces.
func dedent(line string, n int) string {
	for i := 0; i < n && strings.HasPrefix(line, " "); i++ {
		line = line[1:]
	}
	return line
}

// Files returns the documentation files checked under root, relative to
// it: README.md, docs/*.md, examples/README.md and examples/*/README.md.
func Files(root string) ([]string, error) {
	var out []string
	for _, pattern := range []string{"README.md", "docs/*.md", "examples/README.md", "examples/*/README.md"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return nil, err
		}
		for _, p := range m {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return nil, err
			}
			out = append(out, filepath.ToSlash(rel))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Check verifies a block without running it: the references of a
// Covered block resolve, and every repository path the block names
// exists.
func Check(root string, b Block) error {
	var errs []error
	if b.Annotation.Mode == Covered {
		for _, r := range b.Annotation.Refs {
			if err := resolve(root, r); err != nil {
				errs = append(errs, fmt.Errorf("%s: covered by %s: %w", b.Where(), r, err))
			}
		}
	}
	tops, err := topLevel(root)
	if err != nil {
		return err
	}
	for _, p := range Paths(b.Text, tops) {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
			errs = append(errs, fmt.Errorf("%s: the block names %s, which does not exist", b.Where(), p))
		}
	}
	return errors.Join(errs...)
}

// resolve checks one reference of a Covered block.
func resolve(root, ref string) error {
	if target, ok := strings.CutPrefix(ref, "make "); ok {
		mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
		if err != nil {
			return err
		}
		rule := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(strings.TrimSpace(target)) + `\s*:`)
		if !rule.Match(mk) {
			return fmt.Errorf("the Makefile has no target %q", target)
		}
		return nil
	}
	path, fn, hasFn := strings.Cut(ref, ":")
	if strings.ContainsAny(path, " \t") || path == "" {
		return errors.New(`not a reference: write "path", "path:Func" or "make target"`)
	}
	full := filepath.Join(root, filepath.FromSlash(path))
	st, err := os.Stat(full)
	if err != nil {
		return fmt.Errorf("%s does not exist", path)
	}
	if !hasFn {
		return nil
	}
	files := []string{full}
	if st.IsDir() {
		if files, err = filepath.Glob(filepath.Join(full, "*.go")); err != nil {
			return err
		}
	}
	decl := regexp.MustCompile(`(?m)^func (\([^)]*\) )?` + regexp.QuoteMeta(fn) + `[\[(]`)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if decl.Match(src) {
			return nil
		}
	}
	return fmt.Errorf("no func %s in %s", fn, path)
}

// outputs are top-level names that builds and runs create; a block may
// name them before they exist.
var outputs = map[string]bool{"bin": true, "out": true}

// topLevel returns the names of root's top-level entries that a block's
// paths are checked against (not hidden, not build output).
func topLevel(root string) (map[string]bool, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range entries {
		if n := e.Name(); !strings.HasPrefix(n, ".") && !outputs[n] {
			out[n] = true
		}
	}
	return out, nil
}

// Paths returns the repository paths a block names: words that start
// with "./" or with a top-level entry followed by "/", without
// placeholders, globs or variables. "./pkg/..." names ./pkg.
func Paths(text string, tops map[string]bool) []string {
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, w := range strings.Fields(line) {
			w = strings.Trim(w, `"'();|&\`)
			if _, v, ok := strings.Cut(w, "="); ok {
				w = v // --flag=path, VAR=path
			}
			if w == "" || strings.ContainsAny(w, "$*<>{}?[]~") || strings.Contains(w, "://") {
				continue
			}
			p := strings.TrimSuffix(strings.TrimPrefix(w, "./"), "/...")
			first, _, hasSlash := strings.Cut(p, "/")
			if !strings.HasPrefix(w, "./") && (!hasSlash || !tops[first]) {
				continue
			}
			if p == "" || p == "." || p == "..." {
				continue
			}
			p = strings.TrimSuffix(p, "/")
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// tail returns at most the last n bytes of b, starting at a line.
func tail(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	b = b[len(b)-n:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return "…\n" + string(b)
}
