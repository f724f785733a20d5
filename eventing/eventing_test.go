package eventing_test

import (
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/eventing"
)

// triggersYAML is the embedded triggers manifest, the base every broken copy
// below is made from.
func triggersYAML(t *testing.T) string {
	t.Helper()
	b, err := fs.ReadFile(eventing.Files(), "triggers.yaml")
	require.NoError(t, err)
	return string(b)
}

func TestTriggers_loads_the_embedded_manifests(t *testing.T) {
	ts, err := eventing.Triggers()
	require.NoError(t, err, "Triggers")
	// One Trigger per stage input, each subscribing its stage's Service;
	// recognize's input in three priority lanes, the low one to the bulk
	// Service.
	want := map[string]string{
		"ocrflow-convert":          "simpleprocess.job",
		"ocrflow-convert-continue": "ocr.convert.continue",
		"ocrflow-recognize":        "ocr.page.rendered",
		"ocrflow-recognize-high":   "ocr.page.rendered",
		"ocrflow-recognize-bulk":   "ocr.page.rendered",
		"ocrflow-finalize":         "ocr.page.recognized",
	}
	lanes := map[string]string{"ocrflow-recognize": "normal", "ocrflow-recognize-high": "high", "ocrflow-recognize-bulk": "low"}
	service := func(trigger string) string {
		return strings.TrimSuffix(strings.TrimSuffix(trigger, "-continue"), "-high")
	}
	require.Len(t, ts, len(want), "triggers: %+v", ts)
	for i := 1; i < len(ts); i++ {
		assert.Less(t, ts[i-1].Name, ts[i].Name, "triggers not sorted by name")
	}
	for _, tr := range ts {
		t.Run(tr.Name, func(t *testing.T) {
			wantType, ok := want[tr.Name]
			require.True(t, ok, "unexpected trigger %q", tr.Name)
			assert.Equal(t, wantType, tr.Exact["type"], "filter type")
			assert.Equal(t, service(tr.Name), tr.Subscriber, "subscriber")
			assert.Equal(t, lanes[tr.Name], tr.Exact["ocrpriority"], "priority lane")
			assert.Equal(t, "ocrflow", tr.Broker, "broker")
			d := tr.Delivery
			assert.Equal(t, "ocrflow-deadletter", d.DeadLetterSink, "deadLetterSink")
			assert.Positive(t, d.Timeout, "timeout, want in (0, 30s]")
			assert.LessOrEqual(t, d.Timeout, 30*time.Second, "timeout, want in (0, 30s]")
			assert.GreaterOrEqual(t, d.Retry, 1, "retry, want at least one retry")
			assert.Positive(t, d.BackoffDelay, "backoffDelay")
			assert.Contains(t, []string{"linear", "exponential"}, d.BackoffPolicy, "backoffPolicy")
		})
	}
	for _, tr := range ts {
		if tr.Name == "ocrflow-convert" {
			assert.Equal(t, "ocr", tr.Exact["uow"], "convert trigger filters uow, want ocr (jobs of other units of work must not reach convert)")
		}
	}
}

func TestParse_refuses_what_the_standalone_runtime_cannot_honour(t *testing.T) {
	base := triggersYAML(t)
	// Sanity: the unedited copy parses, so every failure below is the edit's.
	ts, err := eventing.Parse([]byte(base))
	require.NoError(t, err, "Parse(embedded triggers.yaml)")
	require.Len(t, ts, 6, "Parse(embedded triggers.yaml)")
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
			require.NotEqual(t, base, broken, "edit %q found nothing to replace in triggers.yaml", tc.old)
			ts, err := eventing.Parse([]byte(broken))
			require.Error(t, err, "Parse(broken copy) = %+v, nil; want an error mentioning %q", ts, tc.wantMsg)
			assert.ErrorContains(t, err, tc.wantMsg, "Parse err")
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
	require.NoError(t, err)
	assert.Len(t, ts, 6, "want the 6 triggers of triggers.yaml")
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
	require.NoError(t, err)
	require.Len(t, ts, 1)
	tr := ts[0]
	assert.Equal(t, map[string]string{"type": "a.b", "ocrjob": "j1"}, tr.Exact, "Exact")
	want := eventing.Delivery{Retry: 0, BackoffPolicy: "linear", BackoffDelay: 500 * time.Millisecond, Timeout: time.Minute, DeadLetterSink: "dl"}
	assert.Equal(t, want, tr.Delivery, "Delivery")
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
				assert.Error(t, err, "ParseDuration(%q) = %v, want an error", tc.in, got)
				return
			}
			require.NoError(t, err, "ParseDuration(%q)", tc.in)
			assert.Equal(t, tc.want, got, "ParseDuration(%q)", tc.in)
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
			assert.Equal(t, tc.want, d.Backoff(tc.delivered), "Backoff(%d)", tc.delivered)
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
			assert.Equal(t, tc.want, tr.Matches(attr), "Matches(%v)", tc.attrs)
		})
	}
	t.Run("empty_filter_matches_everything", func(t *testing.T) {
		assert.True(t, (eventing.Trigger{}).Matches(func(string) (string, bool) { return "", false }),
			"a trigger without filters should match any event")
	})
}
