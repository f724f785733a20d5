package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Gauges is the load a model server reports: requests it runs (its batch)
// and requests waiting for a place in it, over every client.
type Gauges struct {
	Running, Waiting float64
}

// GaugeReader reads a model server's Gauges.
type GaugeReader func(ctx context.Context) (Gauges, error)

// The gauges VLLMGauges reads: vLLM's, and SGLang's equivalents
// (sglang.launch_server --enable-metrics), which speak the same API.
var (
	gaugesRunning = []string{"vllm:num_requests_running", "sglang:num_running_reqs"}
	gaugesWaiting = []string{"vllm:num_requests_waiting", "sglang:num_queue_reqs"}
)

// maxMetricsBytes bounds a /metrics answer (vLLM's is ~100 KiB).
const maxMetricsBytes = 8 << 20

// MetricsOff is the OCR_ENGINE_METRICS_URL value that reads no gauges.
const MetricsOff = "off"

// MetricsURL returns where the model server at the OpenAI base URL base
// serves Prometheus metrics: override when set ("" for MetricsOff), else
// /metrics at base's scheme and host — vLLM serves it there, beside /v1,
// and so does KServe's Hugging Face runtime beside /openai/v1.
func MetricsURL(base, override string) string {
	switch o := strings.TrimSpace(override); {
	case strings.EqualFold(o, MetricsOff):
		return ""
	case o != "":
		return o
	}
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || u.Host == "" {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/metrics"}).String()
}

// VLLMGauges returns a reader of vLLM's num_requests_running and
// num_requests_waiting (or SGLang's num_running_reqs and num_queue_reqs)
// from the Prometheus text at metricsURL, summed over their label sets:
// every model the server runs. apiKey, when set, is
// sent as a bearer token; client nil means http.DefaultClient. A server
// whose metrics lack both gauges is an error: it is not vLLM, and the
// limiter falls back to latency.
func VLLMGauges(metricsURL, apiKey string, client *http.Client) GaugeReader {
	if client == nil {
		client = http.DefaultClient
	}
	return func(ctx context.Context) (Gauges, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
		if err != nil {
			return Gauges{}, fmt.Errorf("gauges: %w", err)
		}
		if apiKey != "" {
			req.Header.Set("Authorization", "Bearer "+apiKey)
		}
		resp, err := client.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return Gauges{}, fmt.Errorf("gauges: get %s: %w", metricsURL, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxMetricsBytes))
			return Gauges{}, fmt.Errorf("gauges: get %s: status %d", metricsURL, resp.StatusCode)
		}
		g, err := parseGauges(io.LimitReader(resp.Body, maxMetricsBytes))
		if err != nil {
			return Gauges{}, fmt.Errorf("gauges: %s: %w", metricsURL, err)
		}
		return g, nil
	}
}

// parseGauges reads the two gauges from Prometheus text exposition.
func parseGauges(r io.Reader) (Gauges, error) {
	var g Gauges
	var running, waiting bool
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "vllm:num_") && !strings.HasPrefix(line, "sglang:num_") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		if !strings.Contains(line, "{") {
			name, rest, _ = strings.Cut(line, " ")
		} else if _, after, ok := strings.Cut(rest, "}"); ok {
			rest = after
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		switch name = strings.TrimSpace(name); {
		case slices.Contains(gaugesRunning, name):
			g.Running += v
			running = true
		case slices.Contains(gaugesWaiting, name):
			g.Waiting += v
			waiting = true
		}
	}
	if err := sc.Err(); err != nil {
		return Gauges{}, fmt.Errorf("read metrics: %w", err)
	}
	if !running || !waiting {
		return Gauges{}, fmt.Errorf("no %s and %s gauges", gaugesRunning[0], gaugesWaiting[0])
	}
	return g, nil
}
