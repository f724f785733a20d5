package job_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

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
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		t.Fatal(err)
	}
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
				if j.ContentID != "content-42" {
					t.Errorf("ContentID = %q, want the content_id attribute content-42", j.ContentID)
				}
				if j.ID != "job-1" || j.TenantID != "tenant-1" || j.OwnerID != "owner-1" ||
					j.Name != "report.pdf" || j.Location != "s3://bucket/report.pdf" || j.Size != 13584 ||
					j.MIME != "application/pdf" || j.SHA256 != "abc123" {
					t.Errorf("job fields not copied from the envelope: %+v", j)
				}
				if j.Hints.Priority != job.PriorityNormal {
					t.Errorf("default priority = %q, want normal", j.Hints.Priority)
				}
			},
		},
		{
			name: "file_id_is_the_fallback_content_id",
			id:   "job-2",
			data: func(d map[string]any) {
				delete(file(d)["attributes"].(map[string]any), "content_id")
			},
			check: func(t *testing.T, j job.Job) {
				if j.ContentID != "file-7" {
					t.Errorf("ContentID = %q, want file.id file-7", j.ContentID)
				}
			},
		},
		{
			name: "non_string_content_id_falls_back_to_file_id",
			id:   "job-2b",
			data: func(d map[string]any) {
				file(d)["attributes"].(map[string]any)["content_id"] = 42
			},
			check: func(t *testing.T, j job.Job) {
				if j.ContentID != "file-7" {
					t.Errorf("ContentID = %q, want file.id file-7", j.ContentID)
				}
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
				if j.Name != "scan.png" {
					t.Errorf("Name = %q, want scan.png", j.Name)
				}
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
				if j.PresignedGet != "https://example.test/obj?sig=1" || j.ContentID != "" {
					t.Errorf("job = %+v, want only PresignedGet set", j)
				}
			},
		},
		{
			name: "missing_job_id_takes_the_event_id",
			id:   "job-5",
			data: func(d map[string]any) {
				delete(d, "job_id")
			},
			check: func(t *testing.T, j job.Job) {
				if j.ID != "job-5" {
					t.Errorf("ID = %q, want the event id job-5", j.ID)
				}
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
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Parse err = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("Parse err = %q, want it to mention %q", err, tc.wantMsg)
				}
				if j.ID == "" {
					t.Errorf("Parse returned no job id with the error; failures could not be reported")
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
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
		{name: "output_format_unsupported", hints: map[string]string{"output_format": "html"}, wantErr: failure.ErrValidation, wantMsg: "output_format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := jobData("job-h")
			d["hints"] = tc.hints
			j, err := job.Parse(jobEvent(t, "job-h", d))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Parse err = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("Parse err = %q, want it to mention %q", err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := j.Hints
			if got.Force != tc.want.Force || got.Priority != tc.want.Priority ||
				got.TimeoutSeconds != tc.want.TimeoutSeconds || got.Pages != tc.want.Pages ||
				got.OutputFormat != tc.want.OutputFormat || got.Resolution != tc.want.Resolution ||
				!maps.Equal(got.Unknown, tc.want.Unknown) {
				t.Errorf("hints = %+v, want %+v", got, tc.want)
			}
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
			if got := j.Timeout(30 * time.Second); got != tc.want {
				t.Errorf("Timeout = %v, want %v", got, tc.want)
			}
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
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ParsePages(%q, %d) = %v, %v; want %v", tc.spec, tc.total, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePages(%q, %d): %v", tc.spec, tc.total, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ParsePages(%q, %d) = %v, want %v", tc.spec, tc.total, got, tc.want)
			}
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
			if got := job.ValidID(tc.id); got != tc.want {
				t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
			}
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
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Validate(); err != nil {
				t.Fatalf("NewEvent built an invalid CloudEvent: %v", err)
			}
			if e.ID() != tc.spec.ID || e.Type() != events.TypeJob {
				t.Errorf("event id/type = %q/%q, want %q/%q", e.ID(), e.Type(), tc.spec.ID, events.TypeJob)
			}
			wantSource := tc.spec.Source
			if wantSource == "" {
				wantSource = "ocrflow/submit"
			}
			if e.Source() != wantSource {
				t.Errorf("source = %q, want %q", e.Source(), wantSource)
			}
			if got := e.Extensions()[events.ExtUoW]; got != events.UoW {
				t.Errorf("uow extension = %v, want %q", got, events.UoW)
			}
			if got := e.Extensions()[events.ExtJob]; got != tc.spec.ID {
				t.Errorf("ocrjob extension = %v, want %q", got, tc.spec.ID)
			}
			j, err := job.Parse(e)
			if err != nil {
				t.Fatalf("Parse(NewEvent(spec)): %v", err)
			}
			if j.ID != tc.want.ID || j.ContentID != tc.want.ContentID || j.Name != tc.want.Name ||
				j.TenantID != tc.want.TenantID || j.OwnerID != tc.want.OwnerID || j.Location != tc.want.Location {
				t.Errorf("job = %+v, want %+v", j, tc.want)
			}
			h, w := j.Hints, tc.want.Hints
			if h.Force != w.Force || h.Priority != w.Priority || h.Pages != w.Pages || !maps.Equal(h.Unknown, w.Unknown) {
				t.Errorf("hints = %+v, want %+v", h, w)
			}
		})
	}
}

func TestNewEvent_requires_an_id(t *testing.T) {
	if _, err := job.NewEvent(job.Spec{ContentID: "c"}); err == nil {
		t.Fatal("NewEvent without an id succeeded")
	}
}
