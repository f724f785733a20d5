package standalone_test

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

func TestEncode_Decode_round_trip(t *testing.T) {
	page, err := events.New(nil, events.PageRenderedID("job-1", 3), events.TypePageRendered, "/convert", 3, "job-1",
		events.PageRendered{JobID: "job-1", Page: 3, Pages: 6, Route: events.RouteOCR, ImageKey: "jobs/job-1/pages/3.jpg"})
	require.NoError(t, err)
	page.SetExtension(events.ExtTraceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	jobEv, err := job.NewEvent(job.Spec{ID: "job-2", ContentID: "c-1", Hints: map[string]string{"force": "true"}})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		e    event.Event
	}{
		{"page_rendered_with_extensions", page},
		{"job_with_uow", jobEv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := standalone.Encode(t.Context(), "ocr.subject", tc.e)
			require.NoError(t, err)
			assert.Equal(t, "ocr.subject", m.Subject, "subject")
			assert.Equal(t, standalone.ContentTypeStructured, m.Header.Get("Content-Type"), "Content-Type")
			assert.Equal(t, tc.e.Type()+"/"+tc.e.ID(), m.Header.Get(nats.MsgIdHdr), "Nats-Msg-Id (dedupe key)")
			got, err := standalone.Decode(m.Header, m.Data)
			require.NoError(t, err, "Decode(Encode(e))")
			assert.Equal(t, tc.e.ID(), got.ID(), "id")
			assert.Equal(t, tc.e.Type(), got.Type(), "type")
			assert.Equal(t, tc.e.Source(), got.Source(), "source")
			assert.Equal(t, tc.e.DataContentType(), got.DataContentType(), "datacontenttype")
			assert.True(t, got.Time().Equal(tc.e.Time()), "time = %v, want %v", got.Time(), tc.e.Time())
			assert.Equal(t, tc.e.Extensions(), got.Extensions(), "extensions")
			assert.JSONEq(t, string(tc.e.Data()), string(got.Data()), "data")
		})
	}
}

func TestDecode(t *testing.T) {
	jobData := `{"job_id":"job-9","uow":"ocr","file":{"id":"c-9"}}`
	ts := time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)
	for _, tc := range []struct {
		name    string
		h       nats.Header
		data    string
		wantErr string
		check   func(t *testing.T, e event.Event)
	}{
		{
			name: "binary_mode_headers",
			h: nats.Header{
				"ce-specversion": {"1.0"}, "ce-id": {"job-9-p1-rendered"}, "ce-type": {events.TypePageRendered},
				"ce-source": {"/convert"}, "ce-ocrjob": {"job-9"}, "ce-ocrpage": {"1"}, "ce-subject": {"page"},
				"ce-time": {ts.Format(time.RFC3339Nano)}, "Content-Type": {"application/json"},
			},
			data: `{"job_id":"job-9","page":1}`,
			check: func(t *testing.T, e event.Event) {
				assert.Equal(t, "job-9-p1-rendered", e.ID(), "id")
				assert.Equal(t, events.TypePageRendered, e.Type(), "type")
				assert.Equal(t, "/convert", e.Source(), "source")
				assert.Equal(t, "page", e.Subject(), "subject")
				assert.True(t, e.Time().Equal(ts), "time = %v, want %v", e.Time(), ts)
				assert.Equal(t, "application/json", e.DataContentType(), "datacontenttype, want it from Content-Type")
				assert.Equal(t, "job-9", e.Extensions()[events.ExtJob], "extension ocrjob")
				assert.Equal(t, "1", e.Extensions()[events.ExtPage], "extension ocrpage")
				var p events.PageRendered
				if assert.NoError(t, events.Decode(e, &p), "data") {
					assert.Equal(t, "job-9", p.JobID, "data job_id")
					assert.Equal(t, 1, p.Page, "data page")
				}
			},
		},
		{
			name: "binary_ce_datacontenttype_wins_over_content_type",
			h: nats.Header{
				"ce-specversion": {"1.0"}, "ce-id": {"x"}, "ce-type": {"t"}, "ce-source": {"/s"},
				"ce-datacontenttype": {"text/plain"}, "Content-Type": {"application/json"},
			},
			data: "hello",
			check: func(t *testing.T, e event.Event) {
				assert.Equal(t, "text/plain", e.DataContentType(), "datacontenttype")
				assert.Equal(t, "hello", string(e.Data()), "data")
			},
		},
		{
			name: "binary_job_without_uow_header_gets_uow_from_data",
			h: nats.Header{
				"ce-specversion": {"1.0"}, "ce-id": {"job-9"}, "ce-type": {events.TypeJob}, "ce-source": {"/sp"},
				"Content-Type": {"application/json"},
			},
			data: jobData,
			check: func(t *testing.T, e event.Event) {
				assert.Equal(t, "ocr", e.Extensions()[events.ExtUoW], "uow, want ocr from data")
			},
		},
		{
			name: "structured_job_without_uow_gets_uow_from_data",
			data: `{"specversion":"1.0","id":"job-9","type":"simpleprocess.job","source":"/sp","datacontenttype":"application/json","data":` + jobData + `}`,
			check: func(t *testing.T, e event.Event) {
				assert.Equal(t, "ocr", e.Extensions()[events.ExtUoW], "uow, want ocr from data")
				_, err := job.Parse(e)
				assert.NoError(t, err, "decoded job does not parse")
			},
		},
		{
			name: "structured_job_uow_extension_is_kept",
			data: `{"specversion":"1.0","id":"job-9","type":"simpleprocess.job","source":"/sp","uow":"other","datacontenttype":"application/json","data":` + jobData + `}`,
			check: func(t *testing.T, e event.Event) {
				assert.Equal(t, "other", e.Extensions()[events.ExtUoW], "uow, want the producer's extension kept")
			},
		},
		{
			name: "structured_job_with_data_uow_missing_gets_none",
			data: `{"specversion":"1.0","id":"job-9","type":"simpleprocess.job","source":"/sp","datacontenttype":"application/json","data":{"job_id":"job-9"}}`,
			check: func(t *testing.T, e event.Event) {
				assert.NotContains(t, e.Extensions(), events.ExtUoW, "uow, want none")
			},
		},
		{
			name: "non_job_event_is_not_given_a_uow",
			data: `{"specversion":"1.0","id":"p1","type":"ocr.page.rendered","source":"/c","datacontenttype":"application/json","data":{"uow":"ocr"}}`,
			check: func(t *testing.T, e event.Event) {
				assert.NotContains(t, e.Extensions(), events.ExtUoW, "uow on a non-job event")
			},
		},
		{name: "invalid_json", data: `{"specversion":`, wantErr: "decode event"},
		{name: "empty_body", data: ``, wantErr: "decode event"},
		{name: "structured_missing_id", data: `{"specversion":"1.0","type":"t","source":"/s"}`, wantErr: "id"},
		{name: "structured_missing_type", data: `{"specversion":"1.0","id":"x","source":"/s"}`, wantErr: "type"},
		{
			name:    "binary_missing_id",
			h:       nats.Header{"ce-specversion": {"1.0"}, "ce-type": {"t"}, "ce-source": {"/s"}},
			wantErr: "id",
		},
		{
			name:    "binary_bad_time",
			h:       nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"x"}, "ce-type": {"t"}, "ce-source": {"/s"}, "ce-time": {"yesterday"}},
			wantErr: "time",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := standalone.Decode(tc.h, []byte(tc.data))
			if tc.wantErr != "" {
				require.Error(t, err, "Decode = %v, want an error mentioning %q", e, tc.wantErr)
				assert.ErrorContains(t, err, tc.wantErr, "Decode err")
				return
			}
			require.NoError(t, err, "Decode")
			tc.check(t, e)
		})
	}
}

// TestDecode_header_case checks binary-mode header names regardless of
// case: NATS headers are case-sensitive, but producers bridging HTTP (which
// canonicalises to "Ce-Id", "Content-Type") or following the binding's
// lower-case spelling ("content-type") both exist. The codec (sdk-go's
// binding) matches header names regardless of case; the lower-case and
// canonical cases guard that fix of the earlier case-sensitive reads.
func TestDecode_header_case(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    nats.Header
	}{
		{
			name: "lower_case",
			h:    nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"x"}, "ce-type": {"t"}, "ce-source": {"/s"}, "content-type": {"application/json"}},
		},
		{
			name: "canonical_http_case",
			h:    nats.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"x"}, "Ce-Type": {"t"}, "Ce-Source": {"/s"}, "Content-Type": {"application/json"}},
		},
		{
			name: "exact_spelling_the_code_reads",
			h:    nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"x"}, "ce-type": {"t"}, "ce-source": {"/s"}, "Content-Type": {"application/json"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := standalone.Decode(tc.h, []byte(`{"a":1}`))
			require.NoError(t, err, "Decode")
			assert.Equal(t, "x", e.ID(), "id")
			assert.Equal(t, "t", e.Type(), "type")
			assert.Equal(t, "application/json", e.DataContentType(), "datacontenttype")
		})
	}
}
