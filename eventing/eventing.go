// Package eventing holds the Knative Broker and Trigger manifests (embedded)
// and reads the routing they define: which events reach which stage, and
// with what delivery spec. The standalone runtime routes by exactly this,
// so the YAML is the single source of truth for both ways of running.
package eventing

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"sigs.k8s.io/yaml"

	"github.com/ocrflow/ocrflow/shared/events"
)

//go:embed *.yaml
var manifests embed.FS

//go:embed optional/*.yaml
var optional embed.FS

// Files returns the embedded manifests.
func Files() fs.FS { return manifests }

// Trigger is the routing a Knative Trigger defines.
type Trigger struct {
	Name   string
	Broker string
	// Exact holds the attribute values an event must have (all of them).
	Exact map[string]string
	// Subscriber is the name of the subscribed Service.
	Subscriber string
	Delivery   Delivery
}

// Delivery is a Knative DeliverySpec.
type Delivery struct {
	// Retry is the number of retries after the first attempt.
	Retry int
	// BackoffPolicy is "exponential" or "linear".
	BackoffPolicy string
	BackoffDelay  time.Duration
	// Timeout bounds each attempt.
	Timeout time.Duration
	// DeadLetterSink is the name of the Service dead events go to.
	DeadLetterSink string
}

// Backoff returns the wait before redelivering an event that has been
// delivered `delivered` times, as the JetStream channel dispatcher computes
// it: linear backoffDelay*n, exponential backoffDelay*2^n.
func (d Delivery) Backoff(delivered int) time.Duration {
	if delivered < 1 {
		delivered = 1
	}
	var f float64
	if d.BackoffPolicy == "linear" {
		f = float64(delivered)
	} else {
		f = math.Pow(2, float64(delivered))
	}
	const maxWait = time.Hour
	w := time.Duration(float64(d.BackoffDelay) * f)
	if w > maxWait || w < 0 {
		return maxWait
	}
	return w
}

// Matches reports whether an event with the given attributes passes the
// Trigger's filter. attr returns an attribute or extension value.
func (t Trigger) Matches(attr func(name string) (string, bool)) bool {
	for k, want := range t.Exact {
		if got, ok := attr(k); !ok || got != want {
			return false
		}
	}
	return true
}

// ServicePrefix starts the name of every ocrflow Knative Service: a stage
// named s is served by the Service ocrflow-<s>.
const ServicePrefix = "ocrflow-"

// ServiceName returns the Knative Service name of a stage, as the Trigger
// manifests reference it.
func ServiceName(stage string) string { return ServicePrefix + stage }

// BulkSuffix ends the name of a Service that serves a stage's low-priority
// lane apart from its live work (ocrflow-recognize-bulk).
const BulkSuffix = "-bulk"

// StageOf returns the stage a Service name serves ("" for a name that is
// not an ocrflow stage Service): ocrflow-recognize and its bulk lane's
// ocrflow-recognize-bulk both serve recognize.
func StageOf(service string) string {
	s, ok := strings.CutPrefix(service, ServicePrefix)
	if !ok {
		return ""
	}
	return strings.TrimSuffix(s, BulkSuffix)
}

// Routing returns the routing of a deployment: the Triggers of the
// embedded manifests, plus the optional autoocr Trigger — with its type
// filter set to autoOCRType — when autoOCR is on.
func Routing(autoOCR bool, autoOCRType string) ([]Trigger, error) {
	ts, err := Triggers()
	if err != nil || !autoOCR {
		return ts, err
	}
	opt, err := OptionalTriggers()
	if err != nil {
		return nil, err
	}
	for _, t := range opt {
		if StageOf(t.Subscriber) == "autoocr" && autoOCRType != "" {
			t.Exact["type"] = autoOCRType
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// Accepts reports whether e passes the Trigger's filter.
func (t Trigger) Accepts(e event.Event) bool { return t.Matches(Attributes(e)) }

// Attributes returns the lookup of e's context attributes and extensions
// (as strings) that Trigger filters read. An event without an ocrpriority
// extension is on the normal lane.
func Attributes(e event.Event) func(string) (string, bool) {
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
		case events.ExtPriority:
			return events.PriorityOf(e), true
		}
		v, ok := e.Extensions()[name]
		if !ok {
			return "", false
		}
		return fmt.Sprint(v), true
	}
}

// Triggers returns the Triggers of the embedded manifests, sorted by name.
func Triggers() ([]Trigger, error) { return triggersIn(manifests) }

// OptionalTriggers returns the Triggers of optional features
// (eventing/optional: autoocr), sorted by name.
func OptionalTriggers() ([]Trigger, error) { return triggersIn(optional) }

func triggersIn(fsys fs.FS) ([]Trigger, error) {
	var all []Trigger
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		ts, err := Parse(b)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		all = append(all, ts...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all, nil
}

type ref struct {
	Ref struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"ref"`
	URI string `json:"uri"`
}

type triggerDoc struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Broker string `json:"broker"`
		Filter *struct {
			Attributes map[string]string `json:"attributes"`
		} `json:"filter"`
		Filters    []map[string]any `json:"filters"`
		Subscriber ref              `json:"subscriber"`
		Delivery   *struct {
			Retry          *int   `json:"retry"`
			BackoffPolicy  string `json:"backoffPolicy"`
			BackoffDelay   string `json:"backoffDelay"`
			Timeout        string `json:"timeout"`
			DeadLetterSink *ref   `json:"deadLetterSink"`
		} `json:"delivery"`
	} `json:"spec"`
}

// Parse reads the Triggers from a multi-document YAML manifest; other kinds
// are skipped. It refuses what the standalone runtime cannot honour: filter
// dialects other than exact, and a delivery without retry, backoffPolicy,
// backoffDelay, timeout and a dead-letter sink.
func Parse(manifest []byte) ([]Trigger, error) {
	var out []Trigger
	for i, doc := range splitDocs(manifest) {
		var d triggerDoc
		if err := yaml.Unmarshal(doc, &d); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if d.Kind != "Trigger" {
			continue
		}
		t, err := d.trigger()
		if err != nil {
			return nil, fmt.Errorf("trigger %q: %w", d.Metadata.Name, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func (d triggerDoc) trigger() (Trigger, error) {
	t := Trigger{Name: d.Metadata.Name, Broker: d.Spec.Broker, Exact: map[string]string{}}
	if d.Spec.Filter != nil {
		for k, v := range d.Spec.Filter.Attributes {
			t.Exact[k] = v
		}
	}
	for _, f := range d.Spec.Filters {
		for dialect, v := range f {
			if dialect != "exact" {
				return t, fmt.Errorf("filter dialect %q is not supported by the standalone runtime (use exact)", dialect)
			}
			m, ok := v.(map[string]any)
			if !ok {
				return t, fmt.Errorf("exact filter is not a map")
			}
			for k, val := range m {
				s, ok := val.(string)
				if !ok {
					return t, fmt.Errorf("exact filter %s is not a string", k)
				}
				t.Exact[k] = s
			}
		}
	}
	if t.Exact["type"] == "" {
		return t, fmt.Errorf("filter must match an exact type")
	}
	t.Subscriber = d.Spec.Subscriber.Ref.Name
	if t.Subscriber == "" {
		return t, fmt.Errorf("subscriber must reference a Service")
	}
	del := d.Spec.Delivery
	if del == nil || del.Retry == nil || del.BackoffPolicy == "" || del.BackoffDelay == "" || del.Timeout == "" {
		return t, fmt.Errorf("delivery must set retry, backoffPolicy, backoffDelay and timeout together")
	}
	if del.BackoffPolicy != "linear" && del.BackoffPolicy != "exponential" {
		return t, fmt.Errorf("backoffPolicy %q is not linear or exponential", del.BackoffPolicy)
	}
	if del.DeadLetterSink == nil || del.DeadLetterSink.Ref.Name == "" {
		return t, fmt.Errorf("delivery must name a deadLetterSink Service")
	}
	var err error
	t.Delivery = Delivery{Retry: *del.Retry, BackoffPolicy: del.BackoffPolicy, DeadLetterSink: del.DeadLetterSink.Ref.Name}
	if t.Delivery.BackoffDelay, err = ParseDuration(del.BackoffDelay); err != nil {
		return t, fmt.Errorf("backoffDelay: %w", err)
	}
	if t.Delivery.Timeout, err = ParseDuration(del.Timeout); err != nil {
		return t, fmt.Errorf("timeout: %w", err)
	}
	if t.Delivery.Retry < 0 {
		return t, fmt.Errorf("retry %d is negative", t.Delivery.Retry)
	}
	return t, nil
}

func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for line := range bytes.SplitAfterSeq(b, []byte("\n")) {
		if strings.TrimRight(string(line), " \r\n") == "---" {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	docs = append(docs, cur.Bytes())
	var out [][]byte
	for _, d := range docs {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			out = append(out, d)
		}
	}
	return out
}

func stripComments(b []byte) []byte {
	var out bytes.Buffer
	for line := range bytes.SplitAfterSeq(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out.Write(line)
		}
	}
	return out.Bytes()
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// ParseDuration parses the ISO-8601 durations Knative uses (PT30S, PT0.5S,
// PT1M30S, P1DT2H).
func ParseDuration(s string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || s == "PT" {
		return 0, fmt.Errorf("%q is not an ISO-8601 duration like PT30S", s)
	}
	// Knative's durations are seconds to hours; a year is a safe ceiling
	// that also keeps the arithmetic far from overflow.
	const ceiling = 365 * 24 * time.Hour
	var secs float64
	units := []float64{86400, 3600, 60}
	for i, u := range units {
		if m[i+1] != "" {
			n, err := strconv.ParseFloat(m[i+1], 64)
			if err != nil {
				return 0, fmt.Errorf("%q: %w", s, err)
			}
			secs += n * u
		}
	}
	if m[4] != "" {
		f, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, err)
		}
		secs += f
	}
	if secs > ceiling.Seconds() {
		return 0, fmt.Errorf("%q is longer than a year", s)
	}
	return time.Duration(secs * float64(time.Second)), nil
}
