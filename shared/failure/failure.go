// Package failure classifies errors by what the pipeline should do about them.
//
// Every error that crosses a stage boundary is classified exactly once, by
// wrapping one of the sentinels below with %w. Callers decide behaviour with
// errors.Is, never by reading messages:
//
//	if errors.Is(err, failure.ErrTransient) { /* retry with backoff */ }
//
// An error that carries no class is treated as transient: retrying something
// unknown is safe because every stage is idempotent, and retries are bounded
// by the delivery spec, after which the event is dead-lettered.
package failure

import (
	"errors"
	"fmt"
)

// Sentinel classes. Wrap them, never return them bare without context.
var (
	// ErrValidation means the input itself is unacceptable (bad job, missing
	// source, unsupported or corrupt file). Retrying cannot help.
	ErrValidation = errors.New("validation")
	// ErrPermanent means processing failed in a way retrying cannot fix
	// (e.g. the model rejected the request with 400).
	ErrPermanent = errors.New("permanent")
	// ErrTransient means a retry later may succeed (timeouts, 5xx, 429,
	// connection errors, GPU cold start).
	ErrTransient = errors.New("transient")
)

// Type is the error_type reported in ocr.job.failed events.
type Type string

// The three error types of the lifecycle contract.
const (
	TypeValidation Type = "validation"
	TypePermanent  Type = "permanent"
	TypeTransient  Type = "transient"
)

// Classify returns the Type of err. Unclassified errors are transient.
func Classify(err error) Type {
	switch {
	case errors.Is(err, ErrValidation):
		return TypeValidation
	case errors.Is(err, ErrPermanent):
		return TypePermanent
	default:
		return TypeTransient
	}
}

// Retryable reports whether err should be retried by the transport.
func Retryable(err error) bool {
	return err != nil && Classify(err) == TypeTransient
}

// Validation returns a validation error with a formatted message.
func Validation(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrValidation, fmt.Sprintf(format, args...))
}

// Permanent returns a permanent error with a formatted message.
func Permanent(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPermanent, fmt.Sprintf(format, args...))
}

// Transient returns a transient error with a formatted message.
func Transient(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrTransient, fmt.Sprintf(format, args...))
}

// As wraps err with class unless it is already classified, keeping the
// chain intact. It returns nil for a nil err.
func As(class, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrValidation) || errors.Is(err, ErrPermanent) || errors.Is(err, ErrTransient) {
		return err
	}
	return fmt.Errorf("%w: %w", class, err)
}

// Message returns err's text truncated to at most n bytes on a rune
// boundary, for event payloads and HTTP bodies that must stay small (the
// NATS channel dispatcher panics on error bodies over ~768 bytes).
func Message(err error, n int) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	ell := "…"
	if n < len(ell) {
		ell = ""
	}
	cut := n - len(ell)
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + ell
}

// Bounds on the error text carried in events and HTTP bodies.
const (
	// MaxMessage bounds a job's error message (ocr.job.failed, the
	// knativeerrordata of a dead letter, an HTTP error body): the NATS
	// channel dispatcher panics on error bodies over ~768 bytes.
	MaxMessage = 700
	// MaxReason bounds the reason of a failed page, which is repeated per
	// page in ocr.job.completed and in the result's metadata.
	MaxReason = 500
)

// Text returns err's message cut to MaxMessage bytes.
func Text(err error) string { return Message(err, MaxMessage) }

// Reason returns the reason recorded for a failed page: err's class and
// its message cut to MaxReason bytes ("permanent: page 3: …").
func Reason(err error) string {
	return string(Classify(err)) + ": " + Message(err, MaxReason)
}
