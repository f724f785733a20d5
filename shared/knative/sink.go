package knative

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// DefaultTimeout bounds one Send whose context carries no deadline.
const DefaultTimeout = 10 * time.Second

// Sink posts events to one sink URL in binary mode (Ce-* headers, the data
// as the body). It is safe for concurrent use.
//
// Send makes one attempt and does not retry: every ocrflow event has a
// deterministic id, so the caller's transport redelivering the whole
// handler call is harmless, and retrying here would only spend the handler's
// 30-second budget.
type Sink struct {
	target    string
	client    cloudevents.Client
	transport *http.Transport
}

// NewSink returns a sender for the sink at target, an absolute http or
// https URL such as http://broker-ingress.knative-eventing.svc.cluster.local/ns/broker.
func NewSink(target string) (*Sink, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("sink url %q: %w", target, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sink url %q: not an absolute http(s) URL", target)
	}
	// An own transport, so Close can drop its idle connections without
	// touching http.DefaultTransport.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c, err := cloudevents.NewClientHTTP(cehttp.WithRoundTripper(tr))
	if err != nil {
		return nil, fmt.Errorf("sink client: %w", err)
	}
	return &Sink{target: u.String(), client: c, transport: tr}, nil
}

// Target returns the sink URL.
func (h *Sink) Target() string { return h.target }

// Send posts e to the sink and classifies the outcome with package failure:
//   - a 2xx answer is success (the broker ingress answers 202);
//   - a transport error, a timeout, 408, 429 and any other non-2xx status
//     is transient: the broker may be scaling or overloaded;
//   - any other 4xx is permanent: the sink refused this event, and sending
//     it again cannot change that;
//   - an event that fails CloudEvents validation is permanent and is not
//     sent.
func (h *Sink) Send(ctx context.Context, e event.Event) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	ctx = cloudevents.ContextWithTarget(ctx, h.target)
	ctx = cloudevents.WithEncodingBinary(ctx)
	return classify(e, h.client.Send(ctx, e))
}

// Close drops the sender's idle connections. The sender stays usable.
func (h *Sink) Close() error {
	h.transport.CloseIdleConnections()
	return nil
}

// classify turns the sdk's result of sending e into a failure-classified
// error, or nil for an acknowledged event.
func classify(e event.Event, res protocol.Result) error {
	if cloudevents.IsACK(res) {
		return nil
	}
	var hr *cehttp.Result
	if cloudevents.ResultAs(res, &hr) {
		err := fmt.Errorf("send %s %s: sink answered %d", e.Type(), e.ID(), hr.StatusCode)
		if permanentStatus(hr.StatusCode) {
			return failure.As(failure.ErrPermanent, err)
		}
		return err // transient: the broker may be scaling or overloaded
	}
	err := fmt.Errorf("send %s %s: %w", e.Type(), e.ID(), res)
	if cloudevents.IsNACK(res) || errors.Is(res, context.DeadlineExceeded) || errors.Is(res, context.Canceled) {
		// The request did not get an answer: connection refused, reset,
		// timed out. Transient, like every unclassified error.
		return err
	}
	// Neither ACK nor NACK: the sdk refused the event before sending it
	// (validation, encoding).
	return failure.As(failure.ErrPermanent, err)
}

// permanentStatus reports whether the sink's status refuses the event for
// good: a 4xx other than 408 Request Timeout and 429 Too Many Requests.
func permanentStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}
