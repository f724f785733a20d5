package failure

import (
	"errors"
	"net/http"
)

// ErrUnroutable means an event reached a process that serves no stage for
// it: a Trigger routes its type to the wrong Service, or OCR_STAGES is
// wrong. It is a deployment error, not a property of the event, so the
// event is neither retried here nor dead-lettered (which would turn a
// healthy page into a failed one).
var ErrUnroutable = errors.New("unroutable")

// Disposition is what a transport does with an event once its handler has
// returned. Decide is the only place that chooses it; both transports (the
// standalone JetStream runtime and the Knative function) act on it.
type Disposition int

// The dispositions.
const (
	// Ack: the event is done (its reply, if any, was published).
	Ack Disposition = iota
	// Retry: deliver the event again later, with the Trigger's backoff.
	Retry
	// DeadLetter: give up and hand the event to its dead-letter sink,
	// where it becomes a failed page or a failed job.
	DeadLetter
	// Discard: drop the event without dead-lettering it (ErrUnroutable).
	Discard
)

// String names the disposition for logs and metrics.
func (d Disposition) String() string {
	switch d {
	case Ack:
		return "ack"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead-letter"
	case Discard:
		return "discard"
	}
	return "unknown"
}

// Decide returns what to do with an event whose handler returned err on
// delivery attempt (1-based) of maxAttempts; maxAttempts 0 means the
// transport does not count deliveries (Knative's channel counts for us):
//
//   - nil: Ack.
//   - ErrUnroutable: Discard.
//   - transient (unclassified included): Retry, until the last attempt,
//     then DeadLetter.
//   - validation and permanent: DeadLetter at once. Stages turn the
//     validation and permanent failures they own into reply events
//     (ocr.job.failed, a failed page) and return nil, so an error of
//     these classes that still reaches the transport has no reply, and
//     only the dead-letter stage can give its job an outcome.
func Decide(err error, attempt, maxAttempts int) Disposition {
	switch {
	case err == nil:
		return Ack
	case errors.Is(err, ErrUnroutable):
		return Discard
	case !Retryable(err):
		return DeadLetter
	case maxAttempts > 0 && attempt >= maxAttempts:
		return DeadLetter
	default:
		return Retry
	}
}

// Status is the HTTP status that answers an event whose handler returned
// err, for transports that deliver events as HTTP requests (Knative). It
// renders Decide's disposition in the only terms the Knative NATS
// JetStream channel understands (knative-extensions/eventing-natss
// pkg/channel/jetstream/dispatcher): 2xx acks; 5xx, 408 and 429 are
// redelivered with backoff and dead-lettered when retries run out; any
// other 4xx is dropped at once, reaching the dead-letter sink only on the
// last attempt. So:
//
//   - Ack → 200.
//   - Retry → 503.
//   - DeadLetter → 500. The channel has no "dead-letter now": a 4xx would
//     drop the event on any attempt but the last, so a 500 makes the
//     channel retry it (harmless: every stage is idempotent) and then
//     dead-letter it. This is the one behaviour that differs from the
//     standalone runtime, which dead-letters at once.
//   - Discard → 400: dropping is what ErrUnroutable asks for.
//
// It is also the status the standalone runtime records as a dead letter's
// knativeerrorcode, so dead letters read the same from both runtimes.
func Status(err error) int {
	switch Decide(err, 1, 0) {
	case Ack:
		return http.StatusOK
	case Discard:
		return http.StatusBadRequest
	case Retry:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
