package standalone

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/ocrflow/ocrflow/shared/events"
)

// ContentTypeStructured marks a structured-mode CloudEvent body.
const ContentTypeStructured = "application/cloudevents+json"

// Encode builds the NATS message for e on subject: a structured-mode JSON
// CloudEvent (what the simple-* family publishes), with the event id as
// Nats-Msg-Id so JetStream drops a duplicate publish of the same event.
func Encode(subject string, e event.Event) (*nats.Msg, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Type(), err)
	}
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set("Content-Type", ContentTypeStructured)
	m.Header.Set(nats.MsgIdHdr, e.Type()+"/"+e.ID())
	return m, nil
}

// Decode reads a CloudEvent from a NATS message in binary mode (ce-*
// headers, as sdk-go's JetStream sender writes) or structured mode (a JSON
// body). A simple-process job published without a uow extension gets one
// from its data, so the family's own producers are routed too.
func Decode(h nats.Header, data []byte) (event.Event, error) {
	var e event.Event
	if sv := header(h, "ce-specversion"); sv != "" {
		e = event.New(sv)
		for k, vs := range h {
			lk := strings.ToLower(k)
			if !strings.HasPrefix(lk, "ce-") || len(vs) == 0 {
				continue
			}
			name, v := strings.TrimPrefix(lk, "ce-"), vs[0]
			switch name {
			case "specversion":
			case "id":
				e.SetID(v)
			case "source":
				e.SetSource(v)
			case "type":
				e.SetType(v)
			case "subject":
				e.SetSubject(v)
			case "dataschema":
				e.SetDataSchema(v)
			case "datacontenttype":
				e.SetDataContentType(v)
			case "time":
				t, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					return e, fmt.Errorf("decode event: time %q: %w", v, err)
				}
				e.SetTime(t)
			default:
				e.SetExtension(name, v)
			}
		}
		if e.DataContentType() == "" {
			if ct := header(h, "content-type"); ct != "" {
				e.SetDataContentType(ct)
			}
		}
		e.DataEncoded = data
	} else if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("decode event: %w", err)
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("decode event: %w", err)
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
	return e, nil
}

// header returns the first value of the header named key, ignoring case
// (NATS headers are case-sensitive; producers differ).
func header(h nats.Header, key string) string {
	for k, vs := range h {
		if strings.EqualFold(k, key) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// attr returns the value of a context attribute or extension of e as a
// string, for Trigger filters.
func attr(e event.Event) func(string) (string, bool) {
	return func(name string) (string, bool) {
		switch name {
		case "type":
			return e.Type(), true
		case "source":
			return e.Source(), true
		case "id":
			return e.ID(), true
		case "subject":
			return e.Subject(), e.Subject() != ""
		case "datacontenttype":
			return e.DataContentType(), e.DataContentType() != ""
		}
		v, ok := e.Extensions()[name]
		if !ok {
			return "", false
		}
		return fmt.Sprint(v), true
	}
}
