package engine

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// latencyFor is the service time of the simulated server of capacity c:
// 25 ms per slot, so every size asks the same 40 pages/s of ocrflow (what
// the bench's fake asks too).
func latencyFor(c int) time.Duration { return time.Duration(c) * 25 * time.Millisecond }

func TestAdaptive_keeps_the_server_full_with_a_short_queue(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    simConfig
		queue  float64 // most mean queue, as a share of C (at least 4 requests)
		fillBy float64 // latencies until the server first runs C at once
	}{
		{name: "gauges", cfg: simConfig{gauges: true}, queue: 1.0 / 16, fillBy: 1},
		{name: "gauges_pages_vary", cfg: simConfig{gauges: true, jitter: 0.3}, queue: 1.0 / 16, fillBy: 1},
		{name: "latency", cfg: simConfig{}, queue: 1.0 / 6, fillBy: 8},
		{name: "latency_pages_vary", cfg: simConfig{jitter: 0.3}, queue: 1.0 / 6, fillBy: 8},
		{name: "gauges_busy_cpu", cfg: simConfig{gauges: true, pre: 10 * time.Millisecond, req: 5 * time.Millisecond, ans: 5 * time.Millisecond, post: 10 * time.Millisecond}, queue: 1.0 / 10, fillBy: 1},
	} {
		for _, c := range []int{8, 64, 256} {
			t.Run(fmt.Sprintf("%s_c%d", tc.name, c), func(t *testing.T) {
				cfg := tc.cfg
				cfg.capacity, cfg.latency, cfg.adaptive, cfg.seed = c, latencyFor(c), true, 1
				r := runSim(cfg)
				assert.GreaterOrEqual(t, r.util, 0.95, "share of C busy")
				assert.LessOrEqual(t, r.queue, max(4, tc.queue*float64(c)), "mean queue at the server")
				assert.LessOrEqual(t, float64(r.fill), tc.fillBy*float64(cfg.latency), "time to fill the server: %s", r.fill)
				assert.LessOrEqual(t, r.limitMax, DefaultMaxInflight, "limit within the maximum")
			})
		}
	}
}

func TestAdaptive_processes_share_a_server(t *testing.T) {
	for _, tc := range []struct {
		name    string
		procs   int
		gauges  bool
		c       int
		minUtil float64
		queue   float64 // most mean queue, share of C (at least 4 per process)
	}{
		{name: "two_with_gauges_c64", procs: 2, gauges: true, c: 64, minUtil: 0.95, queue: 1.0 / 10},
		{name: "four_with_gauges_c256", procs: 4, gauges: true, c: 256, minUtil: 0.95, queue: 1.0 / 10},
		{name: "four_with_gauges_c8", procs: 4, gauges: true, c: 8, minUtil: 0.95, queue: 1.0 / 8},
		{name: "two_by_latency_c64", procs: 2, c: 64, minUtil: 0.95, queue: 1.0 / 4},
		{name: "two_by_latency_c256", procs: 2, c: 256, minUtil: 0.90, queue: 1.0 / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runSim(simConfig{capacity: tc.c, latency: latencyFor(tc.c), adaptive: true, gauges: tc.gauges, procs: tc.procs, seed: 1})
			assert.GreaterOrEqual(t, r.util, tc.minUtil, "share of C busy")
			assert.LessOrEqual(t, r.queue, max(4*float64(tc.procs), tc.queue*float64(tc.c)), "mean queue at the server")
			sum := 0
			for _, l := range r.limits {
				sum += l
			}
			assert.Less(t, sum, 2*tc.c+8*tc.procs, "summed limits %v stay near C", r.limits)
		})
	}
}

func TestLimit_policies_side_by_side(t *testing.T) {
	// The seed's one page at a time and a fixed cap serve C in proportion
	// to what they allow; the adaptive limit serves all of it.
	const c = 64
	for _, tc := range []struct {
		name     string
		cfg      simConfig
		min, max float64
	}{
		{name: "one_page_at_a_time", cfg: simConfig{oneByOne: true}, min: 0.9 / c, max: 1.0 / c},
		{name: "fixed_16", cfg: simConfig{max: 16}, min: 0.9 * 16 / c, max: 16.0 / c},
		{name: "fixed_at_the_capacity", cfg: simConfig{max: c}, min: 0.95, max: 1},
		{name: "adaptive_capped_by_max_32", cfg: simConfig{max: 32, adaptive: true, gauges: true}, min: 0.9 * 32 / c, max: 32.0 / c},
		{name: "adaptive", cfg: simConfig{adaptive: true, gauges: true}, min: 0.98, max: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.capacity, cfg.latency, cfg.seed = c, latencyFor(c), 1
			r := runSim(cfg)
			assert.GreaterOrEqual(t, r.util, tc.min, "share of C busy")
			assert.LessOrEqual(t, r.util, tc.max+1e-9, "share of C busy")
		})
	}
}

func TestAdaptive_does_not_grow_without_work(t *testing.T) {
	// Four pages at a time are all the process has: the limit is never
	// what holds calls back, so it stays where it started.
	r := runSim(simConfig{capacity: 64, latency: latencyFor(64), adaptive: true, gauges: true, supply: 4, seed: 1})
	assert.Equal(t, adaptiveStart, r.limitMax, "highest limit")
	assert.LessOrEqual(t, r.maxHeld, 4, "pages held")
}

func TestAdaptive_backs_off_when_the_server_refuses(t *testing.T) {
	// A server that answers 429 beyond its capacity instead of queueing:
	// the limit halves on refusals and comes back below where they came,
	// so most requests are served, not refused.
	for _, gauges := range []bool{false, true} {
		t.Run(fmt.Sprintf("gauges_%v", gauges), func(t *testing.T) {
			r := runSim(simConfig{capacity: 64, latency: latencyFor(64), adaptive: true, gauges: gauges, reject: true, seed: 1})
			assert.Positive(t, r.rejected, "refusals")
			assert.GreaterOrEqual(t, r.util, 0.8, "share of C busy")
			assert.Less(t, r.limits[0], 2*64, "limit")
		})
	}
}

func TestControl_overload_halves_once_per_latency(t *testing.T) {
	t0 := time.Unix(0, 0)
	for _, tc := range []struct {
		name      string
		adaptive  bool
		gaps      []time.Duration // between 429s
		wantLimit int
	}{
		{name: "fixed_one_429", gaps: []time.Duration{0}, wantLimit: 32},
		{name: "fixed_two_429s_one_latency_apart", gaps: []time.Duration{0, time.Second}, wantLimit: 16},
		{name: "fixed_429s_of_one_burst", gaps: []time.Duration{0, 100 * time.Millisecond, 100 * time.Millisecond}, wantLimit: 32},
		{name: "adaptive_three_apart", adaptive: true, gaps: []time.Duration{0, time.Second, time.Second}, wantLimit: 8},
		{name: "never_below_one", gaps: []time.Duration{0, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second}, wantLimit: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newControl(64, tc.adaptive)
			if tc.adaptive {
				c.limit = 64
			}
			c.base = 500 * time.Millisecond
			at := t0
			for _, g := range tc.gaps {
				at = at.Add(g)
				c.overloaded(at)
			}
			assert.Equal(t, tc.wantLimit, c.current())
		})
	}
}

func TestControl_comes_back_below_the_ceiling_then_one_by_one(t *testing.T) {
	c := newControl(512, true)
	c.limit, c.slow, c.base = 100, false, time.Second
	c.overloaded(time.Unix(10, 0))
	require.Equal(t, 50, c.current(), "halved")
	var got []int
	for range 5 {
		c.limited = true
		c.observed(40, 0, c.current()) // the server has room and no queue
		got = append(got, c.current())
	}
	assert.Equal(t, []int{99, 100, 101, 102, 103}, got, "limits after each poll")
}

func TestControl_cut_is_shared_by_the_processes(t *testing.T) {
	// Two processes with 96 and 32 calls in flight see one queue of 64
	// (target 2): they cut 3/4 and 1/4 of the excess of 62.
	a, b := newControl(512, true), newControl(512, true)
	a.limit, b.limit = 96, 32
	a.observed(64, 64, 96)
	b.observed(64, 64, 32)
	assert.Equal(t, 49, a.current(), "first process: 96 − 46.5")
	assert.Equal(t, 16, b.current(), "second process: 32 − 15.5")
	// 44 calls later (33 of them the first process's) the queue is 20:
	// the excess left is the first process's share again — no second cut.
	a.observed(64, 20, 63)
	assert.Equal(t, 49, a.current(), "no cut twice")
}

func TestDemand(t *testing.T) {
	for _, tc := range []struct{ limit, want int }{{1, 3}, {8, 10}, {16, 18}, {64, 72}, {256, 288}} {
		t.Run(fmt.Sprintf("limit_%d", tc.limit), func(t *testing.T) {
			assert.Equal(t, tc.want, demandFor(tc.limit))
		})
	}
	assert.Equal(t, 576, Workers(DefaultMaxInflight), "workers at the default maximum")
	l := NewLimit(LimitConfig{Max: 100, Adaptive: true})(&Fake{})
	d := DemandOf(Fallback(&Fake{}, nil)(l))
	require.NotNil(t, d, "demand through the fallback")
	assert.Equal(t, demandFor(adaptiveStart), d(), "demand at the start")
	assert.Nil(t, DemandOf(&Fake{}), "an unlimited engine has no demand")
}

func TestPollPeriod(t *testing.T) {
	for _, tc := range []struct {
		base, want time.Duration
	}{
		{0, gaugePollFirst}, {100 * time.Millisecond, gaugePollMin}, {time.Second, 250 * time.Millisecond}, {time.Minute, gaugePollMax},
	} {
		t.Run(tc.base.String(), func(t *testing.T) { assert.Equal(t, tc.want, pollPeriod(tc.base)) })
	}
}

func TestParseGauges(t *testing.T) {
	for _, tc := range []struct {
		name    string
		text    string
		want    Gauges
		wantErr string
	}{
		{name: "vllm", text: `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="deepseek-ai/DeepSeek-OCR"} 64.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="deepseek-ai/DeepSeek-OCR"} 3.0
vllm:num_requests_swapped{model_name="x"} 9
vllm:gpu_cache_usage_perc{model_name="x"} 0.5
`, want: Gauges{Running: 64, Waiting: 3}},
		{name: "two_engines_summed", text: "vllm:num_requests_running{engine=\"0\"} 10\nvllm:num_requests_running{engine=\"1\"} 12\nvllm:num_requests_waiting{engine=\"0\"} 1\nvllm:num_requests_waiting{engine=\"1\"} 0\n", want: Gauges{Running: 22, Waiting: 1}},
		{name: "no_labels", text: "vllm:num_requests_running 5\nvllm:num_requests_waiting 0\n", want: Gauges{Running: 5}},
		{name: "sglang", text: "sglang:num_running_reqs{model_name=\"m\"} 30\nsglang:num_queue_reqs{model_name=\"m\"} 4\n", want: Gauges{Running: 30, Waiting: 4}},
		{name: "not_a_model_server", text: "go_goroutines 12\n", wantErr: "no vllm:num_requests_running"},
		{name: "waiting_missing", text: "vllm:num_requests_running 5\n", wantErr: "gauges"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := parseGauges(strings.NewReader(tc.text))
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, g)
		})
	}
}

func TestMetricsURL(t *testing.T) {
	for _, tc := range []struct{ name, base, override, want string }{
		{"vllm", "http://vllm:8000/v1", "", "http://vllm:8000/metrics"},
		{"kserve", "http://ocr-predictor.ns.svc.cluster.local/openai/v1", "", "http://ocr-predictor.ns.svc.cluster.local/metrics"},
		{"override", "http://vllm:8000/v1", "http://vllm:9000/metrics", "http://vllm:9000/metrics"},
		{"off", "http://vllm:8000/v1", "off", ""},
		{"no_base", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, MetricsURL(tc.base, tc.override)) })
	}
}

func TestVLLMGauges_over_http(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/metrics":
			http.NotFound(w, r)
		case r.Header.Get("Authorization") != "Bearer k":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			fmt.Fprint(w, "vllm:num_requests_running 7\nvllm:num_requests_waiting 2\n")
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name, url, key string
		want           Gauges
		wantErr        string
	}{
		{name: "read", url: srv.URL + "/metrics", key: "k", want: Gauges{Running: 7, Waiting: 2}},
		{name: "unauthorized", url: srv.URL + "/metrics", wantErr: "status 401"},
		{name: "not_found", url: srv.URL + "/nope", key: "k", wantErr: "status 404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := VLLMGauges(tc.url, tc.key, nil)(context.Background())
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, g)
		})
	}
}

// BenchmarkInflightPolicies runs the in-flight policies against the
// simulated server (virtual time: the figures do not depend on this
// machine) and reports the share of C busy and the mean server queue.
//
//	go test -run '^$' -bench InflightPolicies ./shared/engine/
func BenchmarkInflightPolicies(b *testing.B) {
	for _, c := range []int{8, 64, 256} {
		for _, p := range []struct {
			name string
			cfg  simConfig
		}{
			{"one_page_at_a_time", simConfig{oneByOne: true}},
			{"fixed_16", simConfig{max: 16}},
			{"fixed_C", simConfig{max: c}},
			{"fixed_1.25C", simConfig{max: c * 5 / 4}},
			{"adaptive_gauges", simConfig{adaptive: true, gauges: true}},
			{"adaptive_latency", simConfig{adaptive: true}},
			{"adaptive_gauges_2procs", simConfig{adaptive: true, gauges: true, procs: 2}},
			{"adaptive_latency_2procs", simConfig{adaptive: true, procs: 2}},
			{"adaptive_gauges_jitter30", simConfig{adaptive: true, gauges: true, jitter: 0.3}},
			{"adaptive_latency_jitter30", simConfig{adaptive: true, jitter: 0.3}},
		} {
			b.Run(fmt.Sprintf("C=%d/%s", c, p.name), func(b *testing.B) {
				cfg := p.cfg
				cfg.capacity, cfg.latency, cfg.seed = c, latencyFor(c), 1
				var r simResult
				for b.Loop() {
					r = runSim(cfg)
				}
				b.ReportMetric(r.util, "util")
				b.ReportMetric(r.queue, "queue")
				b.ReportMetric(float64(r.fill)/float64(cfg.latency), "fill_L")
			})
		}
	}
}
