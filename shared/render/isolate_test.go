package render_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
		require.NoError(t, err)
		defer func() { assert.NoError(t, in.Close()) }()
		iso, err := render.Open(ctx, "../../testdata/report.pdf", render.Limits{Isolation: render.Isolation{Enabled: true, ChildArgs: []string{}}})
		require.NoError(t, err)
		defer func() { assert.NoError(t, iso.Close()) }()
		require.Equal(t, in.Pages(), iso.Pages(), "pages the child sees, as in-process")
		for _, n := range []int{1, in.Pages()} {
			a, err := in.Render(ctx, n, render.Target{LongSide: 1024})
			require.NoError(t, err)
			b, err := iso.Render(ctx, n, render.Target{LongSide: 1024})
			require.NoError(t, err)
			assert.True(t, bytes.Equal(a.Data, b.Data), "page %d differs between child and in-process rendering", n)
		}
		h, _, _, ok, err := iso.PageHTML(ctx, 1)
		require.NoError(t, err, "child page html")
		require.True(t, ok, "child page html: ok")
		assert.Contains(t, h, "Introduction and Scope", "child page html")
	})
	t.Run("child_reports_validation_errors", func(t *testing.T) {
		bad := t.TempDir() + "/garbage.pdf"
		require.NoError(t, os.WriteFile(bad, append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte{0xff, 0x00, 0x13}, 400)...), 0o644))
		_, err := render.Open(ctx, bad, render.Limits{Isolation: render.Isolation{Enabled: true, ChildArgs: []string{}}})
		require.ErrorIs(t, err, failure.ErrValidation, "want one validation error")
		assert.Equal(t, 1, strings.Count(err.Error(), "validation"), "err = %v, want one validation error", err)
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
			require.ErrorIs(t, err, failure.ErrPermanent, "want a permanent error containing %q", tc.want)
			assert.ErrorContains(t, err, tc.want)
			assert.LessOrEqual(t, time.Since(start), 10*time.Second, "took too long")
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
