package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// Reasons an engine gives up on a page. A failed page's recorded reason
// starts with one of them, so people and programs can group failures.
const (
	// ReasonRepetition: the model looped (finish_reason "length", or a
	// repeating tail) on every rung of the retry ladder.
	ReasonRepetition = "repetition"
	// ReasonEmpty: the model answered nothing for a page that visibly has
	// content, on every rung of the ladder.
	ReasonEmpty = "empty"
	// ReasonRejected: the model server refused the request (400, 422):
	// the request or the image is unacceptable to it.
	ReasonRejected = "rejected"
	// ReasonUnreadable: the page image cannot be decoded.
	ReasonUnreadable = "unreadable"
)

// GiveUpError is an engine's final word that it cannot recognize a page:
// retrying the same delivery cannot help. It is permanent
// (errors.Is(err, failure.ErrPermanent)) and its message starts with
// Reason, e.g. "repetition: page 3: finish_reason length on 3 attempts".
type GiveUpError struct {
	// Reason is one of the Reason* constants.
	Reason string
	// Detail says what happened, without the reason.
	Detail string
	// Raw is the model's last raw answer, kept for inspection ("" if none).
	Raw string
}

// Error returns "<reason>: <detail>".
func (e *GiveUpError) Error() string { return e.Reason + ": " + e.Detail }

// Is makes a GiveUpError match failure.ErrPermanent.
func (e *GiveUpError) Is(target error) bool { return target == failure.ErrPermanent }

// GiveUp returns a *GiveUpError with a formatted detail.
func GiveUp(reason, raw, format string, args ...any) error {
	return &GiveUpError{Reason: reason, Detail: fmt.Sprintf(format, args...), Raw: raw}
}

// ReasonOf returns the reason of the GiveUpError in err's chain and its
// full message, or ok=false when err carries none.
func ReasonOf(err error) (reason, message string, ok bool) {
	var g *GiveUpError
	if errors.As(err, &g) {
		return g.Reason, g.Error(), true
	}
	return "", "", false
}

// ErrOverloaded matches errors saying the model server sheds load (HTTP
// 429). Such errors are also transient; Limit turns them into backoff.
var ErrOverloaded = errors.New("overloaded")

// OverloadedError is a 429 from the model server.
type OverloadedError struct {
	// RetryAfter is the server's Retry-After hint (0 = none given).
	RetryAfter time.Duration
	// Message is the server's error message.
	Message string
}

// Error describes the refusal.
func (e *OverloadedError) Error() string {
	return "model server overloaded (429): " + e.Message
}

// Is makes an OverloadedError match ErrOverloaded and failure.ErrTransient.
func (e *OverloadedError) Is(target error) bool {
	return target == ErrOverloaded || target == failure.ErrTransient
}

// ErrUnavailable matches a 503 from the model server (a cold or
// overloaded GPU behind KServe, vLLM shutting down). Such errors are
// transient for the page; Limit also takes them as a sign to send less.
var ErrUnavailable = errors.New("model server unavailable")

// unavailableError marks a transient error as a 503 without changing its
// message.
type unavailableError struct{ error }

// Is makes an unavailableError match ErrUnavailable.
func (e unavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the transient error.
func (e unavailableError) Unwrap() error { return e.error }
