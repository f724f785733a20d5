package bench

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// GPU saturation (target 4 of issue 14): the default configuration keeps
// ≥ 95 % of the server's capacity C busy for C = 8, 64 and 256 with a
// short server queue, one process or several; the seed's one page at a
// time, the old fixed default and the latency-only signal beside it.

// saturationTarget is the share of C busy the default must keep.
const saturationTarget = 0.95

// latencyPerSlot sets the fake's latency L = C × latencyPerSlot, so every
// capacity asks the same 40 pages/s of ocrflow — what two shared cores
// feed comfortably — and the limiter, not this machine, is measured.
const latencyPerSlot = 25 * time.Millisecond

// shortQueue is the most mean server queue a saturation row accepts: an
// eighth of C (a page waits at most an eighth of a latency there), at
// least 4 requests.
func shortQueue(c int) float64 { return math.Max(4, float64(c)/8) }

func saturationRows(ctx context.Context, env *Env) ([]Row, error) {
	caps := []int{8, 64, 256}
	if env.Quick {
		caps = []int{8, 64}
	}
	pages := func(c int) int {
		if env.Quick {
			return max(4*c, 120)
		}
		return max(6*c, 400)
	}
	var rows, targets []Row
	for _, c := range caps {
		lat := time.Duration(c) * latencyPerSlot
		row, err := saturationRow(ctx, env, "saturation_c"+strconv.Itoa(c), SaturationConfig{Capacity: c, Latency: lat, Pages: pages(c)}, true)
		if err != nil {
			return rows, err
		}
		targets = append(targets, row)
		rows = append(rows, row)
		base, err := saturationRow(ctx, env, "baseline_one_at_a_time_c"+strconv.Itoa(c), SaturationConfig{
			Capacity: c, Latency: lat, Pages: 2,
			Env: map[string]string{"OCR_INFLIGHT_POLICY": "fixed", "OCR_MAX_INFLIGHT": "1", "RECOGNIZE_WORKERS": "1"},
		}, false)
		if err != nil {
			return rows, err
		}
		base.Note = "the seed's design: one page at a time; " + base.Note
		rows = append(rows, base)
	}

	// Several processes sharing one server, and the alternatives at C = 64.
	const c = 64
	lat := time.Duration(c) * latencyPerSlot
	for _, alt := range []struct {
		name   string
		target bool
		note   string
		cfg    SaturationConfig
	}{
		{"saturation_2procs_c64", true, "two recognize processes, defaults", SaturationConfig{Procs: 2}},
		{"inflight_latency_only_c64", false, "adaptive without the server's gauges (OCR_ENGINE_METRICS_URL=off)", SaturationConfig{Env: map[string]string{"OCR_ENGINE_METRICS_URL": "off"}}},
		{"inflight_fixed_16_c64", false, "the old default: OCR_INFLIGHT_POLICY=fixed OCR_MAX_INFLIGHT=16", SaturationConfig{Env: map[string]string{"OCR_INFLIGHT_POLICY": "fixed", "OCR_MAX_INFLIGHT": "16"}}},
	} {
		if env.Quick && !alt.target {
			continue
		}
		cfg := alt.cfg
		cfg.Capacity, cfg.Latency, cfg.Pages = c, lat, pages(c)
		if alt.name == "inflight_fixed_16_c64" {
			cfg.Pages = 10 * 16 // ten rounds of 16 are enough to see a quarter of C busy
		}
		row, err := saturationRow(ctx, env, alt.name, cfg, alt.target)
		if err != nil {
			return rows, err
		}
		row.Note = alt.note + "; " + row.Note
		if alt.target {
			targets = append(targets, row)
		}
		rows = append(rows, row)
	}

	// The headline: the worst of the default's rows.
	worst := targets[0]
	for _, r := range targets[1:] {
		if !r.Pass && worst.Pass || r.Pass == worst.Pass && r.Ratio < worst.Ratio {
			worst = r
		}
	}
	head := worst
	head.Name = "saturation"
	head.Note = "worst of " + names(targets) + ": " + worst.Name + "; " + worst.Note
	return append([]Row{head}, rows...), nil
}

// saturationRow measures one configuration: Value is the mean number of
// requests in service, Reference C, Ratio their quotient; a target row
// also needs a short queue.
func saturationRow(ctx context.Context, env *Env, name string, cfg SaturationConfig, target bool) (Row, error) {
	env.Logf("bench:   %s (C=%d, L=%s, %d pages, %d process(es))", name, cfg.Capacity, cfg.Latency, cfg.Pages, max(cfg.Procs, 1))
	res, err := Saturation(ctx, env.Dir, cfg)
	if err != nil {
		return Failed(name, err), nil //nolint:nilerr // a run that fails is a row that says so
	}
	row := Row{Name: name, Value: res.Busy, Unit: "req"}.Compare(float64(cfg.Capacity), "req", "C")
	limits := make([]string, len(res.Limits))
	for i, l := range res.Limits {
		limits[i] = strconv.Itoa(l)
	}
	row.Note = fmt.Sprintf("L=%s, server queue %.1f avg %d max, filled after %.2f L, limit %s, %d requests, %.1f s measured",
		cfg.Latency, res.Queue, res.QueueMax, res.Fill.Seconds()/cfg.Latency.Seconds(), strings.Join(limits, "+"), res.Requests, res.Window.Seconds())
	if !target {
		return row, nil
	}
	row = row.Judge(RatioAtLeast(saturationTarget))
	q := shortQueue(cfg.Capacity)
	row.Target += fmt.Sprintf(", queue ≤ %s", Number(q))
	if res.Queue > q {
		row.Pass = false
		row.Note = "server queue too long; " + row.Note
	}
	return row, nil
}

func names(rows []Row) string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Name
	}
	return strings.Join(out, ", ")
}
