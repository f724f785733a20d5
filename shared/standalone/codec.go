package standalone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/ocrflow/ocrflow/shared/events"
)

// ContentTypeStructured marks a structured-mode CloudEvent body.
const ContentTypeStructured = "application/cloudevents+json"

// Encode builds the NATS message for e on subject through sdk-go's
// JetStream binding: a structured-mode JSON CloudEvent (what the simple-*
// family publishes and reads), with the event's type and id as
// Nats-Msg-Id so JetStream drops a duplicate publish of the same event.
func Encode(ctx context.Context, subject string, e event.Event) (*nats.Msg, error) {
	var body bytes.Buffer
	if _, err := cejs.WriteMsg(binding.WithForceStructured(ctx), binding.ToMessage(&e), &body); err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Type(), err)
	}
	m := nats.NewMsg(subject)
	m.Data = body.Bytes()
	m.Header.Set("Content-Type", ContentTypeStructured)
	m.Header.Set(nats.MsgIdHdr, e.Type()+"/"+e.ID())
	return m, nil
}

// Decode reads a CloudEvent from a NATS message through sdk-go's JetStream
// binding, in binary mode (ce-* headers, as sdk-go's JetStream sender
// writes them) or structured mode (a JSON body), and validates it. Header
// names are matched regardless of case: NATS headers are case-sensitive,
// and producers that bridge HTTP write "Ce-Id" and "Content-Type" where the
// binding reads "ce-id" and "content-type". A simple-process job published
// without a uow extension gets one from its data, so the family's own
// producers are routed too.
func Decode(h nats.Header, data []byte) (event.Event, error) {
	msg := &nats.Msg{Header: lowerCE(h), Data: data}
	e, err := binding.ToEvent(context.Background(), cejs.NewMessage(msg))
	if err != nil {
		return event.Event{}, fmt.Errorf("decode event: %w", err)
	}
	if err := e.Validate(); err != nil {
		return *e, fmt.Errorf("decode event: %w", err)
	}
	if e.Type() == events.TypeJob {
		if _, ok := e.Extensions()[events.ExtUoW]; !ok {
			var d struct {
				UoW string `json:"uow"`
			}
			if json.Unmarshal(e.Data(), &d) == nil && d.UoW != "" {
				e.SetExtension(events.ExtUoW, d.UoW)
			}
		}
	}
	return *e, nil
}

// lowerCE returns h with the CloudEvents binding's header names (ce-* and
// content-type) in lower case, the spelling sdk-go's binding reads. An
// explicit ce-datacontenttype wins over content-type (the binding would
// take whichever header it met last).
func lowerCE(h nats.Header) nats.Header {
	out := make(nats.Header, len(h))
	for k, vs := range h {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "ce-") || lk == "content-type" {
			k = lk
		}
		out[k] = vs
	}
	if _, ok := out["ce-datacontenttype"]; ok {
		delete(out, "content-type")
	}
	return out
}
