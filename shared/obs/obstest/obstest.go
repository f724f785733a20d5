// Package obstest reads Prometheus metrics in tests: it scrapes a /metrics
// endpoint (or calls its handler) and parses the text exposition format
// with expfmt, the parser Prometheus itself uses.
package obstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// Metrics are parsed metric families by name.
type Metrics map[string]*dto.MetricFamily

// Parse parses the text exposition format.
func Parse(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// Scrape gets url (a /metrics endpoint) and parses the answer.
func Scrape(t testing.TB, url string) Metrics {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // a test's scrape of a local listener
	require.NoError(t, err, "scrape %s", url)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "scrape %s", url)
	m, err := Parse(resp.Body)
	require.NoError(t, err, "parse %s", url)
	return m
}

// ScrapeHandler calls h as a scrape of /metrics would and parses the
// answer.
func ScrapeHandler(t testing.TB, h http.Handler) Metrics {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code, "scrape: %s", rec.Body.String())
	m, err := Parse(rec.Body)
	require.NoError(t, err, "parse the scrape")
	return m
}

// Value returns the sum over the samples of family name whose labels
// include every pair of want: their values for a counter or gauge, their
// sample counts for a histogram. A family or sample that is absent counts
// 0.
func (m Metrics) Value(name string, want map[string]string) float64 {
	f, ok := m[name]
	if !ok {
		return 0
	}
	sum := 0.0
	for _, s := range f.GetMetric() {
		if !matches(s, want) {
			continue
		}
		switch {
		case s.Counter != nil:
			sum += s.GetCounter().GetValue()
		case s.Gauge != nil:
			sum += s.GetGauge().GetValue()
		case s.Histogram != nil:
			sum += float64(s.GetHistogram().GetSampleCount())
		case s.Untyped != nil:
			sum += s.GetUntyped().GetValue()
		}
	}
	return sum
}

// Labels returns the label sets of family name's samples.
func (m Metrics) Labels(name string) []map[string]string {
	var out []map[string]string
	for _, s := range m[name].GetMetric() {
		ls := map[string]string{}
		for _, l := range s.GetLabel() {
			ls[l.GetName()] = l.GetValue()
		}
		out = append(out, ls)
	}
	return out
}

func matches(s *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range s.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(want)
}
