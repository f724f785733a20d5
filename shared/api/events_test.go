package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/api"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/status"
)

// sseEvent is one Server-Sent Event (or, with name ":", a comment).
type sseEvent struct {
	name, id, data string
}

// stream reads an event stream: its events arrive on the channel, which
// is closed at the end of the stream.
func stream(t *testing.T, url string) <-chan sseEvent {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	out := make(chan sseEvent, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var e sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.name != "" {
					e.data = strings.Join(data, "\n")
					out <- e
				}
				e, data = sseEvent{}, nil
			case strings.HasPrefix(line, ":"):
				out <- sseEvent{name: ":", data: strings.TrimSpace(line[1:])}
			default:
				k, v, _ := strings.Cut(line, ": ")
				switch k {
				case "event":
					e.name = v
				case "id":
					e.id = v
				case "data":
					data = append(data, v)
				}
			}
		}
	}()
	return out
}

// next returns the stream's next event (skipping comments unless
// comments is set); ok is false at the end of the stream.
func next(t *testing.T, s <-chan sseEvent, comments bool) (sseEvent, bool) {
	t.Helper()
	for {
		select {
		case e, ok := <-s:
			if ok && e.name == ":" && !comments {
				continue
			}
			return e, ok
		case <-time.After(10 * time.Second):
			require.FailNow(t, "no event within 10s")
		}
	}
}

func stateOf(t *testing.T, e sseEvent) status.State {
	t.Helper()
	require.Equal(t, api.EventStatus, e.name, "event %+v", e)
	var st status.Job
	require.NoError(t, json.Unmarshal([]byte(e.data), &st))
	return st.State
}

func lifecycle(t *testing.T, id, typ string) event.Event {
	t.Helper()
	e, err := events.New(nil, id+"-"+typ, typ, "/test", 0, id, events.JobProgress{JobID: id, PagesCompleted: 1, TotalPages: 2, Percent: 50})
	require.NoError(t, err)
	return e
}

func TestEvents_follow_the_lifecycle_until_the_terminal_event(t *testing.T) {
	feeds := make(chan chan event.Event, 4)
	f := newFixture(t, func(c *api.Config) {
		c.Follow = func(ctx context.Context) (<-chan event.Event, error) {
			ch := make(chan event.Event, 8)
			feeds <- ch
			return ch, nil
		}
	})
	f.putJob("job-1", "", "")
	s := stream(t, f.url+"/v1/jobs/job-1/events")
	e, ok := next(t, s, false)
	require.True(t, ok)
	assert.Equal(t, status.Queued, stateOf(t, e), "the stream starts with the current status")
	feed := <-feeds
	feed <- lifecycle(t, "job-2", events.TypeJobProgress)
	feed <- lifecycle(t, "job-1", events.TypeJobProgress)
	feed <- terminal(t, "job-1", "completed")
	feed <- lifecycle(t, "job-1", events.TypeJobProgress)

	var got []string
	for {
		e, ok := next(t, s, false)
		if !ok {
			break
		}
		var ce event.Event
		require.NoError(t, json.Unmarshal([]byte(e.data), &ce), "data is a structured CloudEvent")
		assert.Equal(t, e.name, ce.Type())
		assert.Equal(t, e.id, ce.ID())
		got = append(got, ce.Type()+" "+ce.Extensions()[events.ExtJob].(string))
	}
	assert.Equal(t, []string{events.TypeJobProgress + " job-1", events.TypeJobCompleted + " job-1"}, got,
		"only the job's events, up to its terminal event; then the stream ends")
}

func TestEvents_poll_the_status_without_a_follower(t *testing.T) {
	f := newFixture(t, func(c *api.Config) { c.PollInterval = 5 * time.Millisecond })
	f.putJob("job-1", "", "")
	s := stream(t, f.url+"/v1/jobs/job-1/events")
	e, ok := next(t, s, false)
	require.True(t, ok)
	assert.Equal(t, status.Queued, stateOf(t, e))

	m := scratch.Manifest{JobID: "job-1", Pages: []int{1, 2}, TotalPages: 2, StartedAt: now.Add(-time.Minute)}
	require.NoError(t, scratch.PutJSON(t.Context(), f.store, scratch.ManifestKey("job-1"), m))
	e, ok = next(t, s, false)
	require.True(t, ok)
	assert.Equal(t, status.Converting, stateOf(t, e), "a status event on change")

	_, err := scratch.Conclude(t.Context(), f.store, "job-1", "cause", terminal(t, "job-1", "failed"))
	require.NoError(t, err)
	e, ok = next(t, s, false)
	require.True(t, ok)
	assert.Equal(t, status.Failed, stateOf(t, e))
	e, ok = next(t, s, false)
	require.True(t, ok)
	assert.Equal(t, events.TypeJobFailed, e.name, "the terminal event follows the final status")
	_, ok = next(t, s, false)
	assert.False(t, ok, "the stream ends after the terminal event")
}

func TestEvents_of_an_ended_job(t *testing.T) {
	for _, tc := range []struct {
		name    string
		follow  bool
		outcome string
		state   status.State
		typ     string
	}{
		{"completed_with_a_follower", true, "completed", status.Completed, events.TypeJobCompleted},
		{"failed_with_a_follower", true, "failed", status.Failed, events.TypeJobFailed},
		{"completed_when_polling", false, "completed", status.Completed, events.TypeJobCompleted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *api.Config) {
				if tc.follow {
					c.Follow = func(context.Context) (<-chan event.Event, error) { return make(chan event.Event), nil }
				}
			})
			f.putJob("job-1", "", tc.outcome)
			s := stream(t, f.url+"/v1/jobs/job-1/events")
			e, ok := next(t, s, false)
			require.True(t, ok)
			assert.Equal(t, tc.state, stateOf(t, e))
			e, ok = next(t, s, false)
			require.True(t, ok)
			assert.Equal(t, tc.typ, e.name, "the terminal event, rebuilt from the outcome")
			assert.Equal(t, terminal(t, "job-1", tc.outcome).ID(), e.id)
			_, ok = next(t, s, false)
			assert.False(t, ok, "the stream ends")
		})
	}
}

func TestServe_shuts_down_gracefully_and_ends_streams(t *testing.T) {
	f := newFixture(t, func(c *api.Config) { c.KeepAlive = 5 * time.Millisecond; c.PollInterval = time.Hour })
	f.putJob("job-1", "", "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- f.server.Serve(ctx, l, 5*time.Second) }()
	s := stream(t, "http://"+l.Addr().String()+"/v1/jobs/job-1/events")
	e, ok := next(t, s, false)
	require.True(t, ok)
	assert.Equal(t, status.Queued, stateOf(t, e))
	e, ok = next(t, s, true)
	require.True(t, ok)
	assert.Equal(t, sseEvent{name: ":", data: "keep-alive"}, e, "an idle stream sends keep-alive comments")
	stop()
	for ok {
		_, ok = next(t, s, true)
	}
	select {
	case err := <-served:
		assert.NoError(t, err, "Serve after shutdown")
	case <-time.After(10 * time.Second):
		require.FailNow(t, "Serve did not return after its context ended")
	}
	resp, err := http.Get("http://" + l.Addr().String() + "/healthz")
	if err == nil {
		_ = resp.Body.Close()
	}
	assert.Error(t, err, "the listener is closed")
}
