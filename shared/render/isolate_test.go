package render_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/render"
)

// childMain turns this test binary into a render child when the parent
// started it as one (see TestMain).
func childMain() {
	if os.Getenv(render.ChildEnv) == "1" {
		if err := render.ServeChild(os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
}

func TestIsolation(t *testing.T) {
	ctx := context.Background()
	t.Run("child_renders_the_same_pixels_as_in_process", func(t *testing.T) {
		in, err := render.Open(ctx, "../../testdata/report.pdf", render.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		iso, err := render.Open(ctx, "../../testdata/report.pdf", render.Limits{Isolation: render.Isolation{Enabled: true, ChildArgs: []string{}}})
		if err != nil {
			t.Fatal(err)
		}
		defer iso.Close()
		if iso.Pages() != in.Pages() {
			t.Fatalf("child sees %d pages, in-process %d", iso.Pages(), in.Pages())
		}
		for _, n := range []int{1, in.Pages()} {
			a, err := in.Render(ctx, n, render.Target{LongSide: 1024})
			if err != nil {
				t.Fatal(err)
			}
			b, err := iso.Render(ctx, n, render.Target{LongSide: 1024})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("page %d differs between child and in-process rendering", n)
			}
		}
		h, _, _, ok, err := iso.PageHTML(ctx, 1)
		if err != nil || !ok || !strings.Contains(h, "Introduction and Scope") {
			t.Fatalf("child page html: ok=%v err=%v", ok, err)
		}
	})
	t.Run("child_reports_validation_errors", func(t *testing.T) {
		bad := t.TempDir() + "/garbage.pdf"
		if err := os.WriteFile(bad, append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte{0xff, 0x00, 0x13}, 400)...), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := render.Open(ctx, bad, render.Limits{Isolation: render.Isolation{Enabled: true, ChildArgs: []string{}}})
		if !errors.Is(err, failure.ErrValidation) || strings.Count(err.Error(), "validation") != 1 {
			t.Fatalf("err = %v, want one validation error", err)
		}
	})
	for _, tc := range []struct {
		name    string
		script  string
		timeout time.Duration
		want    string
	}{
		// A renderer killed by SIGSEGV, as MuPDF on a hostile file.
		{"a_crashing_renderer_fails_the_document_only", "kill -SEGV $$", time.Minute, "crashed the renderer (signal segmentation fault)"},
		// A renderer that never answers is killed at the call timeout.
		{"a_hanging_renderer_is_killed", "exec sleep 60", 200 * time.Millisecond, "took longer than 200ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := render.Open(ctx, "../../testdata/report.pdf", render.Limits{Isolation: render.Isolation{
				Enabled: true, Command: "/bin/sh", ChildArgs: []string{"-c", tc.script}, CallTimeout: tc.timeout,
			}})
			if !errors.Is(err, failure.ErrPermanent) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a permanent error containing %q", err, tc.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
}

// BenchmarkIsolation measures what a child process costs per document.
func BenchmarkIsolation(b *testing.B) {
	for _, tc := range []struct {
		name string
		iso  render.Isolation
	}{{"in-process", render.Isolation{}}, {"child-process", render.Isolation{Enabled: true, ChildArgs: []string{}}}} {
		b.Run(tc.name, func(b *testing.B) {
			renderLoop(b, "../../testdata/report.pdf", render.Limits{Isolation: tc.iso}, render.Target{LongSide: 1024})
		})
	}
}
