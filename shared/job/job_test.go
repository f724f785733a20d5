package job_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
)

// jobData is a valid simple-process job payload for id; tests mutate a copy.
func jobData(id string) map[string]any {
	return map[string]any{
		"version": "1.0",
		"job_id":  id,
		"uow":     "ocr",
		"file": map[string]any{
			"id":        "file-7",
			"tenant_id": "tenant-1",
			"owner_id":  "owner-1",
			"name":      "report.pdf",
			"blob":      map[string]any{"location": "s3://bucket/report.pdf", "size": 13584},
			"attributes": map[string]any{
				"content_id": "content-42",
				"mime":       "application/pdf",
				"sha256":     "abc123",
			},
		},
		"hints": map[string]string{},
	}
}

// jobEvent wraps data in a simpleprocess.job CloudEvent with the given id.
func jobEvent(t *testing.T, id string, data any) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetType(events.TypeJob)
	e.SetSource("/test")
	require.NoError(t, e.SetData(event.ApplicationJSON, data))
	return e
}

func file(d map[string]any) map[string]any { return d["file"].(map[string]any) }

func TestParse_envelope_and_source(t *testing.T) {
	for _, tc := range []struct {
		name    string
		id      string
		data    func(d map[string]any) // edits the payload
		env     func(e *event.Event)   // edits the envelope after encoding
		wantErr error
		// wantMsg is a substring of the error a user should see.
		wantMsg string
		check   func(t *testing.T, j job.Job)
	}{
		{
			name: "content_id_attribute_wins_over_file_id",
			id:   "job-1",
			check: func(t *testing.T, j job.Job) {
				assert.Equal(t, "content-42", j.ContentID, "ContentID, want the content_id attribute")
				const msg = "job fields not copied from the envelope: %+v"
				assert.Equal(t, "job-1", j.ID, msg, j)
				assert.Equal(t, "tenant-1", j.TenantID, msg, j)
				assert.Equal(t, "owner-1", j.OwnerID, msg, j)
				assert.Equal(t, "report.pdf", j.Name, msg, j)
				assert.Equal(t, "s3://bucket/report.pdf", j.Location, msg, j)
				assert.Equal(t, int64(13584), j.Size, msg, j)
				assert.Equal(t, "application/pdf", j.MIME, msg, j)
				assert.Equal(t, "abc123", j.SHA256, msg, j)
				assert.Equal(t, job.PriorityNormal, j.Hints.Priority, "default priority")
			},
		},
		{
			name: "file_id_is_the_fallback_content_id",
			id:   "job-2",
			data: func(d map[string]any) {
				delete(file(d)["attributes"].(map[string]any), "content_id")
			},
			check: func(t *testing.T, j job.Job) {
				assert.Equal(t, "file-7", j.ContentID, "ContentID, want file.id")
			},
		},
		{
			name: "non_string_content_id_falls_back_to_file_id",
			id:   "job-2b",
			data: func(d map[string]any) {
				file(d)["attributes"].(map[string]any)["content_id"] = 42
			},
			check: func(t *testing.T, j job.Job) {
				assert.Equal(t, "file-7", j.ContentID, "ContentID, want file.id")
			},
		},
		{
			name: "filename_attribute_names_a_nameless_file",
			id:   "job-3",
			data: func(d map[string]any) {
				delete(file(d), "name")
				file(d)["attributes"].(map[string]any)["filename"] = "scan.png"
			},
			check: func(t *testing.T, j job.Job) {
				assert.Equal(t, "scan.png", j.Name, "Name")
			},
		},
		{
			name: "presigned_get_alone_is_a_source",
			id:   "job-4",
			data: func(d map[string]any) {
				d["file"] = map[string]any{}
				d["presigned_get"] = "https://example.test/obj?sig=1"
			},
			check: func(t *testing.T, j job.Job) {
				assert.Equal(t, "https://example.test/obj?sig=1", j.PresignedGet, "job = %+v, want only PresignedGet set", j)
				assert.Empty(t, j.ContentID, "job = %+v, want only PresignedGet set", j)
			},
		},
		{
			name: "missing_job_id_takes_the_event_id",
			id:   "job-5",
			data: func(d map[string]any) {
				delete(d, "job_id")
			},
			check: func(t *testing.T, j job.Job) {
				assert.Equal(t, "job-5", j.ID, "ID, want the event id")
			},
		},
		{
			name:    "wrong_type",
			id:      "job-6",
			env:     func(e *event.Event) { e.SetType("ocr.page.rendered") },
			wantErr: failure.ErrValidation,
			wantMsg: "is not simpleprocess.job",
		},
		{
			name:    "wrong_datacontenttype",
			id:      "job-7",
			env:     func(e *event.Event) { e.SetDataContentType("application/xml") },
			wantErr: failure.ErrValidation,
			wantMsg: "application/xml",
		},
		{
			name:    "data_is_not_json",
			id:      "job-8",
			env:     func(e *event.Event) { e.DataEncoded = []byte("not json") },
			wantErr: failure.ErrValidation,
			wantMsg: "not a simple-process job",
		},
		{
			name:    "job_id_differs_from_event_id",
			id:      "job-9",
			data:    func(d map[string]any) { d["job_id"] = "other-job" },
			wantErr: failure.ErrValidation,
			wantMsg: "differs from event id",
		},
		{
			name: "invalid_id_characters",
			id:   "job/../etc",
			data: func(d map[string]any) {
				d["job_id"] = "job/../etc"
			},
			wantErr: failure.ErrValidation,
			wantMsg: "must match",
		},
		{
			name:    "uow_is_not_ocr",
			id:      "job-10",
			data:    func(d map[string]any) { d["uow"] = "hash" },
			wantErr: failure.ErrValidation,
			wantMsg: `uow "hash"`,
		},
		{
			name:    "no_source_at_all",
			id:      "job-11",
			data:    func(d map[string]any) { d["file"] = map[string]any{} },
			wantErr: failure.ErrValidation,
			wantMsg: "names no source",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := jobData(tc.id)
			if tc.data != nil {
				tc.data(d)
			}
			e := jobEvent(t, tc.id, d)
			if tc.env != nil {
				tc.env(&e)
			}
			j, err := job.Parse(e)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr, "Parse")
				assert.ErrorContains(t, err, tc.wantMsg, "Parse")
				assert.NotEmpty(t, j.ID, "Parse returned no job id with the error; failures could not be reported")
				return
			}
			require.NoError(t, err, "Parse")
			tc.check(t, j)
		})
	}
}

func TestParse_hints(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hints   map[string]string
		want    job.Hints
		wantErr error
		wantMsg string
	}{
		{
			name:  "none_defaults_to_normal_priority",
			hints: nil,
			want:  job.Hints{Priority: job.PriorityNormal},
		},
		{
			name: "every_known_hint",
			hints: map[string]string{
				"force": "true", "priority": "HIGH", "timeout_seconds": "300",
				"pages": "1-3,5", "output_format": "markdown", "resolution": "gundam",
			},
			want: job.Hints{
				Force: true, Priority: job.PriorityHigh, TimeoutSeconds: 300,
				Pages: "1-3,5", OutputFormat: "markdown", Resolution: "gundam",
			},
		},
		{
			name:  "mode_is_an_alias_of_resolution_and_values_are_trimmed",
			hints: map[string]string{"mode": " base ", "priority": " low "},
			want:  job.Hints{Priority: job.PriorityLow, Resolution: "base"},
		},
		{
			name:  "unknown_hints_are_kept_not_fatal",
			hints: map[string]string{"colour": "blue", "dpi": "300", "force": "0"},
			want: job.Hints{
				Priority: job.PriorityNormal,
				Unknown:  map[string]string{"colour": "blue", "dpi": "300"},
			},
		},
		{name: "force_not_boolean", hints: map[string]string{"force": "yes please"}, wantErr: failure.ErrValidation, wantMsg: "force"},
		{name: "priority_unknown", hints: map[string]string{"priority": "urgent"}, wantErr: failure.ErrValidation, wantMsg: "priority"},
		{name: "timeout_zero", hints: map[string]string{"timeout_seconds": "0"}, wantErr: failure.ErrValidation, wantMsg: "timeout_seconds"},
		{name: "timeout_301", hints: map[string]string{"timeout_seconds": "301"}, wantErr: failure.ErrValidation, wantMsg: "timeout_seconds"},
		{name: "timeout_not_integer", hints: map[string]string{"timeout_seconds": "1.5"}, wantErr: failure.ErrValidation, wantMsg: "timeout_seconds"},
		{name: "pages_reversed_range", hints: map[string]string{"pages": "3-1"}, wantErr: failure.ErrValidation, wantMsg: "3-1"},
		{name: "output_format_unsupported", hints: map[string]string{"output_format": "html"}, wantErr: failure.ErrValidation, wantMsg: `output_format="html": "html" is not an output (markdown, json, pdf)`},
		{name: "output_format_one_unknown_among_known", hints: map[string]string{"output_format": "markdown,docx"}, wantErr: failure.ErrValidation, wantMsg: `"docx" is not an output`},
		{name: "output_format_only_commas", hints: map[string]string{"output_format": ", ,"}, wantErr: failure.ErrValidation, wantMsg: "no output named"},
		{
			name:  "output_format_list_is_made_canonical",
			hints: map[string]string{"output_format": " PDF, markdown,json,pdf "},
			want:  job.Hints{Priority: job.PriorityNormal, OutputFormat: "markdown,json,pdf"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := jobData("job-h")
			d["hints"] = tc.hints
			j, err := job.Parse(jobEvent(t, "job-h", d))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr, "Parse")
				assert.ErrorContains(t, err, tc.wantMsg, "Parse")
				return
			}
			require.NoError(t, err, "Parse")
			got, want := j.Hints, tc.want
			assert.Equal(t, want.Force, got.Force, "hints.Force")
			assert.Equal(t, want.Priority, got.Priority, "hints.Priority")
			assert.Equal(t, want.TimeoutSeconds, got.TimeoutSeconds, "hints.TimeoutSeconds")
			assert.Equal(t, want.Pages, got.Pages, "hints.Pages")
			assert.Equal(t, want.OutputFormat, got.OutputFormat, "hints.OutputFormat")
			if want.OutputFormat != "" {
				assert.Equal(t, strings.Split(want.OutputFormat, ","), j.OutputsOr([]string{"x"}), "OutputsOr, with the hint")
			} else {
				assert.Equal(t, []string{"x"}, j.OutputsOr([]string{"x"}), "OutputsOr, without the hint: the default")
			}
			assert.Equal(t, want.Resolution, got.Resolution, "hints.Resolution")
			// maps.Equal: no unknown hints may come back as nil or empty.
			assert.True(t, maps.Equal(got.Unknown, want.Unknown), "hints.Unknown = %v, want %v", got.Unknown, want.Unknown)
		})
	}
}

func TestJob_Timeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		secs int
		want time.Duration
	}{
		{"unset_uses_default", 0, 30 * time.Second},
		{"hint_wins", 90, 90 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := job.Job{Hints: job.Hints{TimeoutSeconds: tc.secs}}
			assert.Equal(t, tc.want, j.Timeout(30*time.Second), "Timeout")
		})
	}
}

func TestParsePages(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    string
		total   int
		want    []int
		wantErr error
	}{
		{name: "empty_selects_every_page", spec: "", total: 4, want: []int{1, 2, 3, 4}},
		{name: "blank_selects_every_page", spec: "  ", total: 2, want: []int{1, 2}},
		{name: "range_and_single", spec: "1-3,5", total: 6, want: []int{1, 2, 3, 5}},
		{name: "spaces_around_parts", spec: " 2 - 3 , 1 ", total: 6, want: []int{1, 2, 3}},
		{name: "duplicates_and_overlaps_merged_sorted", spec: "5,1-3,2,3-4,5", total: 6, want: []int{1, 2, 3, 4, 5}},
		{name: "range_clipped_to_total", spec: "5-9", total: 6, want: []int{5, 6}},
		{name: "reversed_range", spec: "3-1", total: 6, wantErr: failure.ErrValidation},
		{name: "beyond_total", spec: "9", total: 6, wantErr: failure.ErrValidation},
		{name: "zero_page", spec: "0", total: 6, wantErr: failure.ErrValidation},
		{name: "negative_page", spec: "-3", total: 6, wantErr: failure.ErrValidation},
		{name: "not_a_number", spec: "one", total: 6, wantErr: failure.ErrValidation},
		{name: "empty_part", spec: "1,,2", total: 6, wantErr: failure.ErrValidation},
		{name: "open_range", spec: "2-", total: 6, wantErr: failure.ErrValidation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := job.ParsePages(tc.spec, tc.total)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr, "ParsePages(%q, %d) = %v", tc.spec, tc.total, got)
				return
			}
			require.NoError(t, err, "ParsePages(%q, %d)", tc.spec, tc.total)
			assert.Equal(t, tc.want, got, "ParsePages(%q, %d)", tc.spec, tc.total)
		})
	}
}

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		want bool
	}{
		{"plain", "job-1.a_b", true},
		{"max_length_128", strings.Repeat("a", 128), true},
		{"too_long_129", strings.Repeat("a", 129), false},
		{"empty", "", false},
		{"leading_dot", ".hidden", false},
		{"slash", "a/b", false},
		{"space", "a b", false},
		{"non_ascii", "jöb", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, job.ValidID(tc.id), "ValidID(%q)", tc.id)
		})
	}
}

func TestNewEvent_round_trips_through_Parse(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec job.Spec
		want job.Job
	}{
		{
			name: "content_id_and_hints",
			spec: job.Spec{
				ID: "rt-1", ContentID: "content-9", Name: "scan.pdf", TenantID: "t", OwnerID: "o",
				Hints: map[string]string{"force": "true", "pages": "2-3", "x-extra": "1"},
			},
			want: job.Job{
				ID: "rt-1", ContentID: "content-9", Name: "scan.pdf", TenantID: "t", OwnerID: "o",
				Hints: job.Hints{Force: true, Priority: job.PriorityNormal, Pages: "2-3", Unknown: map[string]string{"x-extra": "1"}},
			},
		},
		{
			name: "location_only",
			spec: job.Spec{ID: "rt-2", Location: "file:///data/page.png", Source: "/custom"},
			want: job.Job{ID: "rt-2", Location: "file:///data/page.png", Hints: job.Hints{Priority: job.PriorityNormal}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := job.NewEvent(tc.spec)
			require.NoError(t, err)
			require.NoError(t, e.Validate(), "NewEvent built an invalid CloudEvent")
			assert.Equal(t, tc.spec.ID, e.ID(), "event id")
			assert.Equal(t, events.TypeJob, e.Type(), "event type")
			wantSource := tc.spec.Source
			if wantSource == "" {
				wantSource = "ocrflow/submit"
			}
			assert.Equal(t, wantSource, e.Source(), "source")
			assert.Equal(t, events.UoW, e.Extensions()[events.ExtUoW], "uow extension")
			assert.Equal(t, tc.spec.ID, e.Extensions()[events.ExtJob], "ocrjob extension")
			j, err := job.Parse(e)
			require.NoError(t, err, "Parse(NewEvent(spec))")
			assert.Equal(t, tc.want.ID, j.ID, "job.ID")
			assert.Equal(t, tc.want.ContentID, j.ContentID, "job.ContentID")
			assert.Equal(t, tc.want.Name, j.Name, "job.Name")
			assert.Equal(t, tc.want.TenantID, j.TenantID, "job.TenantID")
			assert.Equal(t, tc.want.OwnerID, j.OwnerID, "job.OwnerID")
			assert.Equal(t, tc.want.Location, j.Location, "job.Location")
			h, w := j.Hints, tc.want.Hints
			assert.Equal(t, w.Force, h.Force, "hints.Force")
			assert.Equal(t, w.Priority, h.Priority, "hints.Priority")
			assert.Equal(t, w.Pages, h.Pages, "hints.Pages")
			assert.True(t, maps.Equal(h.Unknown, w.Unknown), "hints.Unknown = %v, want %v", h.Unknown, w.Unknown)
		})
	}
}

func TestNewEvent_requires_an_id(t *testing.T) {
	_, err := job.NewEvent(job.Spec{ContentID: "c"})
	assert.Error(t, err, "NewEvent without an id succeeded")
}

func TestAgain_makes_a_new_job_of_the_same_source(t *testing.T) {
	orig, err := job.NewEvent(job.Spec{ID: "job-7", ContentID: "c-7", TenantID: "t", OwnerID: "o", Name: "scan.pdf",
		Hints: map[string]string{"pages": "1-3", "force": "true"}})
	require.NoError(t, err)
	orig.SetExtension(events.ExtTraceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")

	again, err := job.Again(orig, "job-7.r1", map[string]string{job.HintReplayOf: "job-7", "force": "false"})
	require.NoError(t, err)
	assert.Equal(t, "job-7.r1", again.ID())
	assert.Equal(t, "job-7.r1", again.Extensions()[events.ExtJob])
	assert.Equal(t, orig.Extensions()[events.ExtTraceparent], again.Extensions()[events.ExtTraceparent])
	j, err := job.Parse(again)
	require.NoError(t, err, "the new job is a valid job")
	assert.Equal(t, "job-7.r1", j.ID)
	assert.Equal(t, "c-7", j.ContentID)
	assert.Equal(t, "scan.pdf", j.Name)
	assert.Equal(t, "1-3", j.Hints.Pages, "the original's hints are kept")
	assert.False(t, j.Hints.Force, "a hint given replaces the original's")
	assert.Equal(t, "job-7", j.Hints.ReplayOf)

	_, err = job.Again(orig, "bad id", nil)
	assert.ErrorIs(t, err, failure.ErrValidation)
	bad := orig.Clone()
	require.NoError(t, bad.SetData(event.ApplicationJSON, []byte(`[1]`)))
	_, err = job.Again(bad, "job-7.r2", nil)
	assert.ErrorIs(t, err, failure.ErrValidation)
}

func TestParse_replay_of_hint_must_name_a_job(t *testing.T) {
	e, err := job.NewEvent(job.Spec{ID: "job-8", ContentID: "c", Hints: map[string]string{job.HintReplayOf: "not a job/id"}})
	require.NoError(t, err)
	_, err = job.Parse(e)
	assert.ErrorIs(t, err, failure.ErrValidation)
	assert.ErrorContains(t, err, "replay_of")
}
