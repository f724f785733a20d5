package knative_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/internal/leaktest"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/knative"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// received is what the fake sink decoded from one request.
type received struct {
	event  event.Event
	binary bool
}

// fakeSink is a sink that decodes every posted CloudEvent and answers
// status.
type fakeSink struct {
	srv    *httptest.Server
	status int
	mu     sync.Mutex
	got    []received
}

func newFakeSink(t *testing.T, status int) *fakeSink {
	t.Helper()
	f := &fakeSink{status: status}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msg := cehttp.NewMessageFromHttpRequest(r)
		binary := msg.ReadEncoding() == binding.EncodingBinary
		e, err := binding.ToEvent(r.Context(), msg)
		if err != nil {
			http.Error(w, "not a cloudevent: "+err.Error(), http.StatusUnsupportedMediaType)
			return
		}
		f.mu.Lock()
		f.got = append(f.got, received{event: *e, binary: binary})
		f.mu.Unlock()
		w.WriteHeader(f.status)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSink) received() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.got...)
}

func newSender(t *testing.T, url string) *knative.Sink {
	t.Helper()
	s, err := knative.NewSink(url)
	require.NoError(t, err, "NewHTTP(%q)", url)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func pageEvent() event.Event {
	e := event.New()
	e.SetID("job1-p1-rendered")
	e.SetType("ocr.page.rendered")
	e.SetSource("/ocrflow/convert")
	e.SetExtension("ocrjob", "job1")
	_ = e.SetData(event.ApplicationJSON, map[string]any{"job_id": "job1", "page": 1})
	return e
}

func TestSink_Send_classifies_the_sink_answer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		down     bool // the sink is not listening
		wantErr  error
		wantSeen bool
	}{
		{name: "202 accepted", status: http.StatusAccepted, wantSeen: true},
		{name: "200 ok", status: http.StatusOK, wantSeen: true},
		{name: "503 unavailable is transient", status: http.StatusServiceUnavailable, wantErr: failure.ErrTransient, wantSeen: true},
		{name: "500 is transient", status: http.StatusInternalServerError, wantErr: failure.ErrTransient, wantSeen: true},
		{name: "429 too many requests is transient", status: http.StatusTooManyRequests, wantErr: failure.ErrTransient, wantSeen: true},
		{name: "408 request timeout is transient", status: http.StatusRequestTimeout, wantErr: failure.ErrTransient, wantSeen: true},
		{name: "400 bad request is permanent", status: http.StatusBadRequest, wantErr: failure.ErrPermanent, wantSeen: true},
		{name: "404 not found is permanent", status: http.StatusNotFound, wantErr: failure.ErrPermanent, wantSeen: true},
		{name: "server down is transient", down: true, wantErr: failure.ErrTransient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeSink(t, tc.status)
			if tc.down {
				fs.srv.Close()
			}
			s := newSender(t, fs.srv.URL)
			in := pageEvent()
			err := s.Send(t.Context(), in)
			if tc.wantErr == nil {
				require.NoError(t, err, "Send")
			} else {
				require.Error(t, err, "Send: want %v", tc.wantErr)
				require.Equal(t, failure.Classify(tc.wantErr), failure.Classify(err), "Send: %v, want %v", err, tc.wantErr)
				assert.ErrorContains(t, err, in.ID(), "the error names the event")
			}
			got := fs.received()
			if !tc.wantSeen {
				require.Empty(t, got, "sink saw events, want none")
				return
			}
			require.Len(t, got, 1, "sink saw events, want exactly 1 (no retries)")
			r := got[0]
			assert.True(t, r.binary, "event was not sent in binary mode")
			assert.Equal(t, in.ID(), r.event.ID(), "event id")
			assert.Equal(t, in.Type(), r.event.Type(), "event type")
			assert.Equal(t, in.Source(), r.event.Source(), "event source")
			assert.Equal(t, "job1", r.event.Extensions()["ocrjob"], "extension ocrjob")
			assert.Equal(t, string(in.Data()), string(r.event.Data()), "data")
		})
	}
}

func TestSink_Send_refuses_an_invalid_event_without_sending_it(t *testing.T) {
	fs := newFakeSink(t, http.StatusAccepted)
	s := newSender(t, fs.srv.URL)
	e := pageEvent()
	e.SetType("")
	err := s.Send(t.Context(), e)
	require.ErrorIs(t, err, failure.ErrPermanent, "Send: want a permanent error")
	assert.Empty(t, fs.received(), "sink saw events, want none")
}

func TestSink_Send_gives_up_at_the_context_deadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	s := newSender(t, srv.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, pageEvent())
	require.Error(t, err, "Send: want a transient error")
	assert.True(t, failure.Retryable(err), "Send: %v, want a transient error", err)
	assert.Less(t, time.Since(start), 5*time.Second, "Send returned late, want about the 100ms deadline")
}

func TestNewSink_rejects_bad_urls(t *testing.T) {
	for _, url := range []string{"", "broker-ingress/ns/broker", "ftp://host/x", "http://", "http://[::1"} {
		_, err := knative.NewSink(url)
		assert.Error(t, err, "NewHTTP(%q) = nil error, want one", url)
	}
}
