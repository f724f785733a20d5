package knative_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/knative"
	"github.com/ocrflow/ocrflow/shared/stage"
)

func TestResult_maps_error_classes_to_http_status(t *testing.T) {
	long := strings.Repeat("é", 2000) // multi-byte: the cut must stay on a rune boundary
	for _, tc := range []struct {
		name       string
		err        error
		wantStatus int // 0: no result at all (200)
		wantBody   string
	}{
		{name: "success", err: nil},
		{name: "transient_is_retried_503", err: failure.Transient("engine busy"), wantStatus: 503, wantBody: "transient: engine busy"},
		{name: "unclassified_counts_as_transient_503", err: errors.New("connection reset"), wantStatus: 503, wantBody: "connection reset"},
		{name: "permanent_without_a_reply_is_retried_then_dead_lettered_500", err: failure.Permanent("no manifest"), wantStatus: 500, wantBody: "permanent: no manifest"},
		{name: "validation_without_a_reply_500", err: failure.Validation("bad job"), wantStatus: 500, wantBody: "validation: bad job"},
		{name: "unroutable_is_a_deployment_error_400", err: fmt.Errorf("%w: type x", failure.ErrUnroutable), wantStatus: 400, wantBody: "unroutable: type x"},
		{name: "long_bodies_are_cut_below_768_bytes", err: failure.Transient("%s", long), wantStatus: 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := knative.Result(tc.err)
			if tc.wantStatus == 0 {
				assert.Nil(t, res)
				return
			}
			var r *cehttp.Result
			require.True(t, protocol.ResultAs(res, &r), "Result(%v) = %T, want *cehttp.Result", tc.err, res)
			assert.Equal(t, tc.wantStatus, r.StatusCode)
			body := fmt.Errorf(r.Format, r.Args...).Error() // what sdk-go writes as the body
			if tc.wantBody != "" {
				assert.Equal(t, tc.wantBody, body)
			}
			assert.LessOrEqual(t, len(body), failure.MaxMessage)
			assert.Less(t, len(body), 768)
			assert.Equal(t, tc.err.Error()[:10], body[:10], "the body keeps the error's start")
		})
	}
}

// recorder is a set of stage handlers that note which stage saw which
// event type.
type recorder struct {
	mu  sync.Mutex
	got map[string]string // event type → stage
}

func (r *recorder) stage(name string) stage.Stage {
	return stage.Stage{Name: name, Workers: 1, Handler: func(_ context.Context, e event.Event) (*event.Event, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got[e.Type()] = name
		return nil, nil
	}}
}

func newEvent(typ string) event.Event {
	e := event.New()
	e.SetID("id-1")
	e.SetType(typ)
	e.SetSource("/test")
	return e
}

// The transport routes by event type exactly as the Trigger manifests do:
// every type a Trigger sends to a stage's Service reaches that stage.
func TestTransport_routes_every_Trigger_type_to_its_stage(t *testing.T) {
	triggers, err := eventing.Routing(true, "content.uploaded")
	require.NoError(t, err)
	tr, err := knative.New(knative.Config{Sink: "http://127.0.0.1:1/", Triggers: triggers})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	rec := &recorder{got: map[string]string{}}
	var stages []stage.Stage
	for _, s := range append(stage.Pipeline(), stage.AutoOCR) {
		stages = append(stages, rec.stage(s))
	}
	require.NoError(t, tr.Serve(t.Context(), stages...))

	want := map[string]string{}
	for _, trg := range triggers {
		want[trg.Exact["type"]] = eventing.StageOf(trg.Subscriber)
	}
	require.Contains(t, want, events.TypeJob)
	require.Contains(t, want, "content.uploaded")
	for typ := range want {
		_, err := tr.Handle(t.Context(), newEvent(typ))
		require.NoError(t, err, typ)
	}
	assert.Equal(t, want, rec.got)
}

func TestTransport_answers_by_what_it_serves(t *testing.T) {
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	for _, tc := range []struct {
		name       string
		sink       string
		serve      []string
		event      event.Event
		wantStatus int // 0: handled
		wantServe  string
	}{
		{name: "not_started_is_503", event: newEvent(events.TypeJob), wantStatus: 503},
		{name: "a_type_for_another_stage_is_400", serve: []string{stage.Recognize}, event: newEvent(events.TypeJob), wantStatus: 400},
		{name: "an_unknown_type_is_400", serve: []string{stage.Recognize}, event: newEvent("com.example.other"), wantStatus: 400},
		{name: "served_type_is_handled", serve: []string{stage.Recognize}, event: newEvent(events.TypePageRendered)},
		{name: "convert_without_a_sink_cannot_serve", serve: []string{stage.Convert}, wantServe: knative.EnvSink + " is empty"},
		{name: "convert_with_a_sink_serves", sink: "http://127.0.0.1:1/", serve: []string{stage.Convert}, event: newEvent(events.TypeJob)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := knative.New(knative.Config{Sink: tc.sink, Triggers: triggers})
			require.NoError(t, err)
			t.Cleanup(func() { _ = tr.Close() })
			rec := &recorder{got: map[string]string{}}
			if tc.serve != nil {
				var stages []stage.Stage
				for _, s := range tc.serve {
					stages = append(stages, rec.stage(s))
				}
				err := tr.Serve(t.Context(), stages...)
				if tc.wantServe != "" {
					require.ErrorContains(t, err, tc.wantServe)
					assert.False(t, tr.Ready())
					return
				}
				require.NoError(t, err)
				assert.True(t, tr.Ready())
			}
			_, err = tr.Handle(t.Context(), tc.event)
			if tc.wantStatus == 0 {
				require.NoError(t, err)
				assert.Equal(t, tc.serve[0], rec.got[tc.event.Type()])
				return
			}
			var r *cehttp.Result
			require.True(t, protocol.ResultAs(err, &r), "Handle error %v is not an HTTP result", err)
			assert.Equal(t, tc.wantStatus, r.StatusCode)
			assert.Empty(t, rec.got)
		})
	}
}

func TestTransport_Send_needs_a_sink(t *testing.T) {
	tr, err := knative.New(knative.Config{})
	require.NoError(t, err)
	err = tr.Send(t.Context(), newEvent(events.TypePageRendered))
	require.Error(t, err)
	assert.ErrorIs(t, err, failure.ErrPermanent)
	assert.Contains(t, err.Error(), knative.EnvSink)
}
