package backfill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// Publisher sends job events.
type Publisher interface {
	// Publish sends e and waits until the transport has accepted it.
	// duplicate reports that the transport already held e (JetStream drops
	// a second publish of the same event id within its duplicate window).
	Publish(ctx context.Context, e event.Event) (duplicate bool, err error)
}

// Gauge reports the pipeline's backlog.
type Gauge interface {
	// Backlog returns the work waiting in the pipeline.
	Backlog(ctx context.Context) (int, error)
}

// NATS publishes jobs to the standalone runtime's stream, as `ocrflow
// submit --nats` does, and gauges the backlog of the stages that pace a
// backfill: the pending and unacknowledged messages of every consumer
// whose Trigger subscribes a convert or recognize Service (jobs waiting to
// be converted, pages waiting to be recognized, live ones included).
type NATS struct {
	js         jetstream.JetStream
	stream     string
	jobSubject string
	consumers  []string
}

// NewNATS returns the transport over nc for the runtime's stream and job
// subject (defaults: standalone.DefaultStream, DefaultJobSubject) and the
// routing of triggers (its consumers, one per priority lane, are named
// after the Triggers: standalone.ConsumerNames).
func NewNATS(nc *nats.Conn, stream, jobSubject string, triggers []eventing.Trigger) (*NATS, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if stream == "" {
		stream = standalone.DefaultStream
	}
	if jobSubject == "" {
		jobSubject = standalone.DefaultJobSubject
	}
	n := &NATS{js: js, stream: stream, jobSubject: jobSubject}
	for _, t := range triggers {
		if s := eventing.StageOf(t.Subscriber); strings.HasPrefix(s, stage.Convert) || strings.HasPrefix(s, stage.Recognize) {
			n.consumers = append(n.consumers, standalone.ConsumerNames(t)...)
		}
	}
	if len(n.consumers) == 0 {
		return nil, errors.New("the routing names no convert or recognize Trigger to gauge")
	}
	return n, nil
}

// Consumers names the consumers Backlog sums.
func (n *NATS) Consumers() []string { return n.consumers }

// Publish publishes e on the job subject and waits for the stream's ack.
func (n *NATS) Publish(ctx context.Context, e event.Event) (bool, error) {
	m, err := standalone.Encode(ctx, standalone.SubjectOf(n.jobSubject, e), e)
	if err != nil {
		return false, err
	}
	ack, err := n.js.PublishMsg(ctx, m)
	if err != nil {
		return false, fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	return ack.Duplicate, nil
}

// Backlog sums NumPending and NumAckPending of the consumers. A consumer
// that does not exist yet (no process serves its stage) holds nothing.
// JetStream counts a consumer's pending messages as the stream signals
// them, so the sum can lag a publish by a moment: pacing on it may let a
// few more through, never stall.
func (n *NATS) Backlog(ctx context.Context) (int, error) {
	total := 0
	for _, name := range n.consumers {
		c, err := n.js.Consumer(ctx, n.stream, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("consumer %s: %w", name, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("consumer %s: %w", name, err)
		}
		total += int(info.NumPending) + info.NumAckPending
	}
	return total, nil
}

// Broker posts jobs to a Knative broker ingress over HTTP, retrying
// connection errors and the statuses a busy or starting broker answers
// (404, 429, 502, 503, 504) with exponential backoff.
type Broker struct {
	url     string
	client  cloudevents.Client
	backoff time.Duration
	tries   int
}

// NewBroker returns the transport posting to url.
func NewBroker(url string) (*Broker, error) {
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		return nil, fmt.Errorf("broker client: %w", err)
	}
	return &Broker{url: url, client: c, backoff: 200 * time.Millisecond, tries: 8}, nil
}

// Publish posts e; the broker cannot report duplicates.
func (b *Broker) Publish(ctx context.Context, e event.Event) (bool, error) {
	ctx = cloudevents.ContextWithTarget(ctx, b.url)
	ctx = cloudevents.ContextWithRetriesExponentialBackoff(ctx, b.backoff, b.tries)
	if res := b.client.Send(ctx, e); !cloudevents.IsACK(res) {
		return false, fmt.Errorf("post to broker %s: %w", b.url, res)
	}
	return false, nil
}
