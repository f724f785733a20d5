package manifests_test

import (
	"encoding/json"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// external are the metrics the monitoring references that other
// components export, with where they come from.
var external = map[string]string{
	"kn_revision_pods_desired":                             "Knative Serving autoscaler (kn.revision.pods.desired, 1.20+)",
	"kn_revision_pods_requested":                           "Knative Serving KPA reconciler (kn.revision.pods.requested, 1.20+)",
	"kube_horizontalpodautoscaler_status_desired_replicas": "kube-state-metrics",
	"kube_horizontalpodautoscaler_spec_max_replicas":       "kube-state-metrics",
}

// prometheusRule mirrors the fields of the Prometheus Operator's
// monitoring.coreos.com/v1 PrometheusRule that ocrflow uses; a strict
// decode rejects anything else (a typo in a field name).
type prometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Groups []struct {
			Name     string `json:"name"`
			Interval string `json:"interval,omitempty"`
			Rules    []struct {
				Alert       string            `json:"alert,omitempty"`
				Record      string            `json:"record,omitempty"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// dashboard is the part of a Grafana dashboard the check reads.
type dashboard struct {
	Title  string  `json:"title"`
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

var (
	quoted    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	braces    = regexp.MustCompile(`\{[^{}]*\}`)
	brackets  = regexp.MustCompile(`\[[^\[\]]*\]`)
	grouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	ident     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	matcher   = regexp.MustCompile(`\b(consumer|stage)\s*=\s*"([^"]*)"`)
	operators = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges, grouping clauses,
// function calls and keywords are taken out.
func metricNames(expr string) []string {
	s := quoted.ReplaceAllString(expr, `""`)
	for prev := ""; prev != s; {
		prev = s
		s = braces.ReplaceAllString(s, " ")
		s = brackets.ReplaceAllString(s, " ")
	}
	s = grouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range ident.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && (s[loc[0]-1] == '$' || (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9')) {
			continue // a Grafana variable, or the unit of a number
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		if slices.Contains(operators, strings.ToLower(name)) {
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// balanced reports whether expr's parentheses, braces and brackets pair up.
func balanced(expr string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', '}': '{', ']': '['}
	for _, r := range quoted.ReplaceAllString(expr, `""`) {
		switch r {
		case '(', '{', '[':
			stack = append(stack, r)
		case ')', '}', ']':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0
}

// checkExpr reports what is wrong with one expression of the monitoring:
// unbalanced brackets, a metric ocrflow does not register (and no known
// component exports), a consumer that is no Trigger, a stage that is none.
func checkExpr(t *testing.T, where, expr string) []string {
	t.Helper()
	triggers, err := eventing.Triggers()
	require.NoError(t, err)
	consumers := []string{"ocrflow-dead-letters"}
	for _, tr := range triggers {
		consumers = append(consumers, tr.Name)
	}
	var problems []string
	if !balanced(expr) {
		problems = append(problems, where+": unbalanced brackets")
	}
	names := metricNames(expr)
	if len(names) == 0 {
		problems = append(problems, where+": selects no metric")
	}
	for _, n := range names {
		if _, ok := external[n]; !ok && !slices.Contains(obs.Names(), n) {
			problems = append(problems, where+": metric "+n+" is not one ocrflow registers")
		}
	}
	for _, m := range matcher.FindAllStringSubmatch(expr, -1) {
		switch {
		case m[1] == "consumer" && !slices.Contains(consumers, m[2]):
			problems = append(problems, where+": consumer "+m[2]+" is no Trigger's")
		case m[1] == "stage" && !stage.Known(m[2]):
			problems = append(problems, where+": stage "+m[2]+" is no stage")
		}
	}
	return problems
}

func TestMetricNames_finds_what_an_expression_selects(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		want       []string
		problems   int
	}{
		{"histogram_quantile_by_le", `histogram_quantile(0.9, sum by (le, stage) (rate(ocrflow_stage_duration_seconds_bucket{stage="recognize"}[$__rate_interval])))`,
			[]string{"ocrflow_stage_duration_seconds_bucket"}, 0},
		{"ratio_with_unless", `sum(rate(ocrflow_pages_total{outcome="failed"}[30m])) / sum(rate(ocrflow_pages_total[30m])) > 0.05 unless on () up`,
			[]string{"ocrflow_pages_total", "up"}, 1},
		{"misspelt_metric_is_caught", `sum(increase(ocrflow_pages_totals[1h]))`, []string{"ocrflow_pages_totals"}, 1},
		{"subquery_and_external_metric", `deriv(max(ocrflow_consumer_pending{consumer="ocrflow-recognize"})[15m:1m]) > 0 and on () max(kn_revision_pods_desired) > 1`,
			[]string{"ocrflow_consumer_pending", "kn_revision_pods_desired"}, 0},
		{"unknown_consumer_is_caught", `ocrflow_consumer_pending{consumer="ocrflow-recognise"}`, []string{"ocrflow_consumer_pending"}, 1},
		{"unbalanced_is_caught", `sum(rate(ocrflow_jobs_total[5m])`, []string{"ocrflow_jobs_total"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, metricNames(tc.expr))
			assert.Len(t, checkExpr(t, tc.name, tc.expr), tc.problems, "problems")
		})
	}
}

// TestMonitoring_builds_and_references_only_registered_metrics: the
// dashboard and the alerts build with kustomize into a ConfigMap Grafana
// loads and a PrometheusRule of the Prometheus Operator's shape, and every
// metric they read is one ocrflow registers (or a documented external
// one), so they cannot drift from the code.
func TestMonitoring_builds_and_references_only_registered_metrics(t *testing.T) {
	objs := build(t, "monitoring")
	kinds := map[string]int{}
	var referenced []string
	for _, o := range objs {
		kinds[o.Kind]++
		assert.Equal(t, "ocrflow", o.Metadata.Namespace, "%s namespace", o)
		switch o.APIVersion + " " + o.Kind {
		case "monitoring.coreos.com/v1 PrometheusRule":
			var pr prometheusRule
			require.NoError(t, yaml.UnmarshalStrict(o.raw, &pr), "%s: strict decode", o)
			require.NotEmpty(t, pr.Spec.Groups, "%s has no rule group", o)
			alerts := map[string]bool{}
			for _, g := range pr.Spec.Groups {
				assert.NotEmpty(t, g.Name, "a rule group has no name")
				for _, r := range g.Rules {
					where := o.String() + " " + r.Alert + r.Record
					assert.True(t, (r.Alert == "") != (r.Record == ""), "%s: a rule is an alert or a record", where)
					if r.For != "" {
						_, err := model.ParseDuration(r.For)
						assert.NoError(t, err, "%s: for", where)
					}
					if r.Alert != "" {
						alerts[r.Alert] = true
						assert.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], "%s: severity", where)
						assert.NotEmpty(t, r.Annotations["summary"], "%s: summary", where)
						assert.NotEmpty(t, r.Annotations["description"], "%s: description", where)
					}
					assert.Empty(t, checkExpr(t, where, r.Expr))
					referenced = append(referenced, metricNames(r.Expr)...)
				}
			}
			for _, a := range []string{"OcrflowDeadLettersGrowing", "OcrflowPageFailureRateHigh", "OcrflowEngineUnreachable", "OcrflowRecognizeBacklogAtMaxScale"} {
				assert.True(t, alerts[a], "alert %s is missing", a)
			}
		case "v1 ConfigMap":
			var cm corev1.ConfigMap
			require.NoError(t, yaml.UnmarshalStrict(o.raw, &cm), "%s: strict decode", o)
			assert.Equal(t, "1", cm.Labels["grafana_dashboard"], "%s: the Grafana sidecar's label", o)
			var d dashboard
			require.NoError(t, json.Unmarshal([]byte(cm.Data["dashboard.json"]), &d), "%s: dashboard.json", o)
			assert.Equal(t, "ocrflow", d.UID, "dashboard uid")
			var walk func(ps []panel)
			walk = func(ps []panel) {
				for _, p := range ps {
					walk(p.Panels)
					if p.Type == "row" {
						continue
					}
					assert.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
					for _, tg := range p.Targets {
						assert.Empty(t, checkExpr(t, "panel "+p.Title, tg.Expr))
						referenced = append(referenced, metricNames(tg.Expr)...)
					}
				}
			}
			walk(d.Panels)
		default:
			assert.Failf(t, "unexpected object", "%s is neither the rule nor the dashboard", o)
		}
	}
	assert.Equal(t, map[string]int{"PrometheusRule": 1, "ConfigMap": 1}, kinds, "objects built")
	// Each topic the monitoring is there for reads its metric.
	for topic, metric := range map[string]string{
		"throughput": obs.MetricJobs, "pages by route": obs.MetricPages, "GPU queue": obs.MetricPending,
		"engine in flight": obs.MetricEngineInflight, "latency percentiles": obs.MetricStageDuration + "_bucket",
		"dead letters": obs.MetricDeadLetters, "queue lag": obs.MetricEventAge + "_bucket",
	} {
		assert.Contains(t, referenced, metric, "nothing reads %s (%s)", metric, topic)
	}
}

// TestFunctions_are_annotated_for_scraping: every Knative Service of a
// stage tells Prometheus where its metrics are (METRICS_ADDR's port), and
// so does the API's (its own port).
func TestFunctions_are_annotated_for_scraping(t *testing.T) {
	// METRICS_ADDR's default, as .env.example states it (shared/config's
	// test keeps that file true to the code; importing the package would
	// link MuPDF into this test).
	env, err := os.ReadFile("../.env.example")
	require.NoError(t, err)
	port := ""
	for line := range strings.Lines(string(env)) {
		if addr, ok := strings.CutPrefix(strings.TrimSpace(line), "#METRICS_ADDR="); ok {
			_, port, _ = net.SplitHostPort(addr)
		}
	}
	require.NotEmpty(t, port, "METRICS_ADDR has no default port in .env.example")
	for _, dir := range overlays {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			n := 0
			for _, o := range build(t, dir) {
				if o.APIVersion != "serving.knative.dev/v1" || o.Kind != "Service" {
					continue
				}
				var s servingv1.Service
				require.NoError(t, yaml.Unmarshal(o.raw, &s))
				want := port
				switch {
				case stage.Known(eventing.StageOf(o.Metadata.Name)):
					n++
				case o.Metadata.Name == "ocrflow-api":
					cs := s.Spec.Template.Spec.Containers
					require.NotEmpty(t, cs, "%s has no container", o)
					require.NotEmpty(t, cs[0].Ports, "%s declares no port", o)
					want = strconv.Itoa(int(cs[0].Ports[0].ContainerPort))
				default:
					continue
				}
				a := s.Spec.Template.Annotations
				assert.Equal(t, "true", a["prometheus.io/scrape"], "%s scrape", o)
				assert.Equal(t, want, a["prometheus.io/port"], "%s port", o)
				assert.Equal(t, obs.MetricsPath, a["prometheus.io/path"], "%s path", o)
			}
			assert.Positive(t, n, "no stage Service in %s", dir)
		})
	}
}
