package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// Fallback returns a wrapper that answers a page with fb (OCR_FALLBACK_ENGINE,
// e.g. tesseract) when the wrapped primary engine is unavailable past its
// retries: the primary failed transiently and last reports that the
// transport will not deliver the page again. Earlier attempts return the
// primary's error, so the broker's backoff can absorb a GPU cold start
// first. Permanent failures (a page that loops, a rejected request) are
// never handed to fb: they say something about the page, not the server.
//
// On the last attempt the primary gets half of the remaining deadline, so
// the fallback has time to answer within the same delivery. The result's
// Engine names the engine that produced it (engine_used), and Meta records
// why the fallback answered. last == nil means the delivery count is
// unknown and no retry is to be waited for: fb answers the first
// transient failure.
func Fallback(fb Engine, last func(ctx context.Context) bool) func(Engine) Engine {
	return func(primary Engine) Engine {
		return &fallback{primary: primary, fb: fb, last: last}
	}
}

type fallback struct {
	primary, fb Engine
	last        func(context.Context) bool
}

// Name returns the primary's name.
func (f *fallback) Name() string { return f.primary.Name() }

// Unwrap returns the primary engine (DemandOf).
func (f *fallback) Unwrap() Engine { return f.primary }

// Check checks the fallback engine when it can be checked (a tesseract
// that is not installed fails at start-up, not on the first dead GPU).
func (f *fallback) Check(ctx context.Context) error {
	if c, ok := f.fb.(interface{ Check(context.Context) error }); ok {
		if err := c.Check(ctx); err != nil {
			return fmt.Errorf("fallback engine: %w", err)
		}
	}
	return nil
}

// Recognize asks the primary, and fb when the primary is unavailable on
// the last attempt.
func (f *fallback) Recognize(ctx context.Context, p Page) (Result, error) {
	last := f.last == nil || f.last(ctx)
	pctx := ctx
	if dl, ok := ctx.Deadline(); ok && last {
		var cancel context.CancelFunc
		pctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
		defer cancel()
	}
	res, err := f.primary.Recognize(pctx, p)
	if err == nil {
		if res.Engine == "" {
			res.Engine = f.primary.Name()
		}
		return res, nil
	}
	// What the primary spent goes with whatever answer this call gives.
	spent := Result{Usage: res.Usage, Steps: res.Steps}
	if !last || !failure.Retryable(err) || ctx.Err() != nil {
		return spent, err
	}
	res, ferr := f.fb.Recognize(ctx, p)
	if ferr != nil {
		return spent, fmt.Errorf("fallback %s after %s failed (%s): %w", f.fb.Name(), f.primary.Name(), failure.Message(err, 200), ferr)
	}
	res.Usage, res.Steps = spent.Usage.Add(res.Usage), append(spent.Steps, res.Steps...)
	if res.Engine == "" {
		res.Engine = f.fb.Name()
	}
	if res.Meta == nil {
		res.Meta = map[string]string{}
	}
	res.Meta["fallback_from"] = f.primary.Name()
	res.Meta["fallback_reason"] = failure.Message(err, 300)
	return res, nil
}
