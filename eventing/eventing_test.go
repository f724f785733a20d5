package eventing_test

import (
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/ocrflow/ocrflow/eventing"
)

// triggersYAML is the embedded triggers manifest, the base every broken copy
// below is made from.
func triggersYAML(t *testing.T) string {
	t.Helper()
	b, err := fs.ReadFile(eventing.Files(), "triggers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTriggers_loads_the_embedded_manifests(t *testing.T) {
	ts, err := eventing.Triggers()
	if err != nil {
		t.Fatalf("Triggers: %v", err)
	}
	// One Trigger per stage input, each subscribing its stage's Service.
	want := map[string]string{
		"ocrflow-convert":          "simpleprocess.job",
		"ocrflow-convert-continue": "ocr.convert.continue",
		"ocrflow-recognize":        "ocr.page.rendered",
		"ocrflow-finalize":         "ocr.page.recognized",
	}
	service := func(trigger string) string { return strings.TrimSuffix(trigger, "-continue") }
	if len(ts) != len(want) {
		t.Fatalf("got %d triggers, want %d: %+v", len(ts), len(want), ts)
	}
	for i := 1; i < len(ts); i++ {
		if ts[i-1].Name >= ts[i].Name {
			t.Errorf("triggers not sorted by name: %q before %q", ts[i-1].Name, ts[i].Name)
		}
	}
	for _, tr := range ts {
		t.Run(tr.Name, func(t *testing.T) {
			wantType, ok := want[tr.Name]
			if !ok {
				t.Fatalf("unexpected trigger %q", tr.Name)
			}
			if tr.Exact["type"] != wantType {
				t.Errorf("filter type = %q, want %q", tr.Exact["type"], wantType)
			}
			if tr.Subscriber != service(tr.Name) {
				t.Errorf("subscriber = %q, want %q", tr.Subscriber, service(tr.Name))
			}
			if tr.Broker != "ocrflow" {
				t.Errorf("broker = %q, want ocrflow", tr.Broker)
			}
			d := tr.Delivery
			if d.DeadLetterSink != "ocrflow-deadletter" {
				t.Errorf("deadLetterSink = %q, want ocrflow-deadletter", d.DeadLetterSink)
			}
			if d.Timeout <= 0 || d.Timeout > 30*time.Second {
				t.Errorf("timeout = %v, want in (0, 30s]", d.Timeout)
			}
			if d.Retry < 1 {
				t.Errorf("retry = %d, want at least one retry", d.Retry)
			}
			if d.BackoffDelay <= 0 {
				t.Errorf("backoffDelay = %v, want > 0", d.BackoffDelay)
			}
			if d.BackoffPolicy != "linear" && d.BackoffPolicy != "exponential" {
				t.Errorf("backoffPolicy = %q", d.BackoffPolicy)
			}
		})
	}
	for _, tr := range ts {
		if tr.Name == "ocrflow-convert" && tr.Exact["uow"] != "ocr" {
			t.Errorf("convert trigger filters uow=%q, want ocr (jobs of other units of work must not reach convert)", tr.Exact["uow"])
		}
	}
}

func TestParse_refuses_what_the_standalone_runtime_cannot_honour(t *testing.T) {
	base := triggersYAML(t)
	// Sanity: the unedited copy parses, so every failure below is the edit's.
	if ts, err := eventing.Parse([]byte(base)); err != nil || len(ts) != 4 {
		t.Fatalf("Parse(embedded triggers.yaml) = %d triggers, %v; want 4, nil", len(ts), err)
	}
	for _, tc := range []struct {
		name     string
		old, new string
		// n is how many occurrences to replace (-1 = all).
		n       int
		wantMsg string
	}{
		{"no_backoffPolicy", "    backoffPolicy: exponential\n", "", 1, "backoffPolicy"},
		{"unknown_backoffPolicy", "backoffPolicy: exponential", "backoffPolicy: fibonacci", 1, "fibonacci"},
		{"no_retry", "    retry: 3\n", "", 1, "retry"},
		{"negative_retry", "retry: 3", "retry: -1", 1, "negative"},
		{"no_timeout", "    timeout: PT30S\n", "", 1, "timeout"},
		{"cesql_dialect", "  - exact:\n      type: simpleprocess.job", "  - cesql: \"type = 'simpleprocess.job'\"\n  - exact:\n      type: simpleprocess.job", 1, `"cesql"`},
		{"prefix_dialect", "  - exact:\n      type: ocr.page.rendered", "  - prefix:\n      type: ocr.page.", 1, `"prefix"`},
		{"no_type_filter", "      type: ocr.page.recognized\n", "      source: /x\n", 1, "exact type"},
		{"no_deadLetterSink", "    deadLetterSink:\n      ref:\n        apiVersion: serving.knative.dev/v1\n        kind: Service\n        name: ocrflow-deadletter", "", 1, "deadLetterSink"},
		{"deadLetterSink_uri_only", "    deadLetterSink:\n      ref:\n        apiVersion: serving.knative.dev/v1\n        kind: Service\n        name: ocrflow-deadletter", "    deadLetterSink:\n      uri: http://dlq.example", 1, "deadLetterSink"},
		{"bad_iso_backoffDelay", "backoffDelay: PT2S", "backoffDelay: 2s", 1, "backoffDelay"},
		{"bad_iso_timeout", "timeout: PT30S", "timeout: 30 seconds", 1, "timeout"},
		{"no_subscriber_ref", "      name: ocrflow-convert\n  delivery", "      name: \"\"\n  delivery", 1, "subscriber"},
		{"not_yaml", "  broker: ocrflow\n", "  broker: [ocrflow\n", 1, "document 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := strings.Replace(base, tc.old, tc.new, tc.n)
			if broken == base {
				t.Fatalf("edit %q found nothing to replace in triggers.yaml", tc.old)
			}
			ts, err := eventing.Parse([]byte(broken))
			if err == nil {
				t.Fatalf("Parse(broken copy) = %+v, nil; want an error mentioning %q", ts, tc.wantMsg)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Parse err = %q, want it to mention %q", err, tc.wantMsg)
			}
		})
	}
}

func TestParse_skips_other_kinds_and_comment_only_documents(t *testing.T) {
	manifest := `# leading comment only
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: ocrflow
---
# another comment
---
` + triggersYAML(t)
	ts, err := eventing.Parse([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 4 {
		t.Errorf("got %d triggers, want the 4 of triggers.yaml", len(ts))
	}
}

func TestParse_legacy_filter_attributes(t *testing.T) {
	manifest := `apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: legacy
spec:
  broker: b
  filter:
    attributes:
      type: a.b
      ocrjob: j1
  subscriber:
    ref:
      kind: Service
      name: svc
  delivery:
    retry: 0
    backoffPolicy: linear
    backoffDelay: PT0.5S
    timeout: PT1M
    deadLetterSink:
      ref:
        kind: Service
        name: dl
`
	ts, err := eventing.Parse([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 {
		t.Fatalf("got %d triggers, want 1", len(ts))
	}
	tr := ts[0]
	if tr.Exact["type"] != "a.b" || tr.Exact["ocrjob"] != "j1" || len(tr.Exact) != 2 {
		t.Errorf("Exact = %v, want type=a.b ocrjob=j1", tr.Exact)
	}
	want := eventing.Delivery{Retry: 0, BackoffPolicy: "linear", BackoffDelay: 500 * time.Millisecond, Timeout: time.Minute, DeadLetterSink: "dl"}
	if tr.Delivery != want {
		t.Errorf("Delivery = %+v, want %+v", tr.Delivery, want)
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "PT30S", want: 30 * time.Second},
		{in: "PT0.5S", want: 500 * time.Millisecond},
		{in: "PT1M30S", want: 90 * time.Second},
		{in: "P1DT2H", want: 26 * time.Hour},
		{in: "P2D", want: 48 * time.Hour},
		{in: "PT1H2M3S", want: time.Hour + 2*time.Minute + 3*time.Second},
		{in: "30s", wantErr: true},
		{in: "P", wantErr: true},
		{in: "PT", wantErr: true},
		{in: "", wantErr: true},
		{in: "PT-5S", wantErr: true},
		{in: "pt30s", wantErr: true},
		{in: "PT30S ", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := eventing.ParseDuration(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDuration(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseDuration(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestDelivery_Backoff(t *testing.T) {
	for _, tc := range []struct {
		name      string
		policy    string
		delay     time.Duration
		delivered int
		want      time.Duration
	}{
		{"linear_first", "linear", 2 * time.Second, 1, 2 * time.Second},
		{"linear_third", "linear", 2 * time.Second, 3, 6 * time.Second},
		{"exponential_first", "exponential", 2 * time.Second, 1, 4 * time.Second},
		{"exponential_third", "exponential", 2 * time.Second, 3, 16 * time.Second},
		{"zero_deliveries_count_as_one", "linear", time.Second, 0, time.Second},
		{"exponential_capped_at_an_hour", "exponential", time.Second, 40, time.Hour},
		{"exponential_overflow_capped", "exponential", time.Second, 2000, time.Hour},
		{"linear_capped_at_an_hour", "linear", time.Minute, 100, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := eventing.Delivery{BackoffPolicy: tc.policy, BackoffDelay: tc.delay}
			if got := d.Backoff(tc.delivered); got != tc.want {
				t.Errorf("Backoff(%d) = %v, want %v", tc.delivered, got, tc.want)
			}
		})
	}
}

func TestTrigger_Matches(t *testing.T) {
	tr := eventing.Trigger{Exact: map[string]string{"type": "simpleprocess.job", "uow": "ocr"}}
	for _, tc := range []struct {
		name  string
		attrs map[string]string
		want  bool
	}{
		{"all_attributes_match", map[string]string{"type": "simpleprocess.job", "uow": "ocr", "source": "/x"}, true},
		{"wrong_value", map[string]string{"type": "simpleprocess.job", "uow": "hash"}, false},
		{"missing_extension", map[string]string{"type": "simpleprocess.job"}, false},
		{"empty_value_is_not_a_match", map[string]string{"type": "simpleprocess.job", "uow": ""}, false},
		{"case_sensitive", map[string]string{"type": "SimpleProcess.Job", "uow": "ocr"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attr := func(k string) (string, bool) { v, ok := tc.attrs[k]; return v, ok }
			if got := tr.Matches(attr); got != tc.want {
				t.Errorf("Matches(%v) = %v, want %v", tc.attrs, got, tc.want)
			}
		})
	}
	t.Run("empty_filter_matches_everything", func(t *testing.T) {
		if !(eventing.Trigger{}).Matches(func(string) (string, bool) { return "", false }) {
			t.Error("a trigger without filters should match any event")
		}
	})
}
