package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Fake is a deterministic engine for tests: the text of a page is derived
// from a hash of its image bytes, so a test that renders the same pages can
// check that every page appears exactly once and in order.
type Fake struct {
	// Fail, when set, is called before each recognition; a non-nil error is
	// returned instead of a result (fault injection).
	Fail func(p Page) error
	// Latency is added to every call (to model a model server's time).
	Latency time.Duration
}

// Name returns "fake".
func (f *Fake) Name() string { return NameFake }

// Recognize returns FakeText(p.Image) unless Fail injects an error.
func (f *Fake) Recognize(ctx context.Context, p Page) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-ctx.Done():
			t.Stop()
			return Result{}, ctx.Err()
		case <-t.C:
		}
	}
	if f.Fail != nil {
		if err := f.Fail(p); err != nil {
			return Result{}, err
		}
	}
	text := FakeText(p.Image)
	return Result{Markdown: text, Raw: fmt.Sprintf("page=%d %s", p.Number, text)}, nil
}

// FakeText is the text the fake engine reads from an image.
func FakeText(img []byte) string {
	sum := sha256.Sum256(img)
	return "fake-ocr " + hex.EncodeToString(sum[:8])
}
