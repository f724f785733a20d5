// Package bench is the performance harness behind `make bench`: each
// target of docs/performance.md is a row producer listed in All; the
// ocrflow-bench program (cmd/ocrflow-bench) runs them and prints one table
// of rows — measured value, reference value, ratio, target, pass/fail —
// and the same rows as JSON for comparison across commits.
//
// A row is measured side by side with its reference in one run: the
// machine is shared and noisy, so targets are ratios (or counts) rather
// than absolute timings wherever a reference exists.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Row is one line of the bench table.
type Row struct {
	// Name identifies the row across commits (snake_case, stable).
	Name string `json:"name"`
	// Value is the measured figure, in Unit.
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
	// Reference is what Value is compared with, measured in the same run
	// where possible (pdftoppm, the server's capacity, the seed's design),
	// in RefUnit; RefNote says what it is.
	Reference float64 `json:"reference,omitempty"`
	RefUnit   string  `json:"ref_unit,omitempty"`
	RefNote   string  `json:"ref_note,omitempty"`
	// Ratio is Value / Reference unless the producer sets another.
	Ratio float64 `json:"ratio,omitempty"`
	// Target is the goal in words, e.g. "ratio ≥ 0.95"; empty for an
	// informational row (a baseline, a breakdown).
	Target string `json:"target,omitempty"`
	// Pass reports whether the target is met (false for informational
	// rows and for rows whose producer failed).
	Pass bool `json:"pass"`
	// Note explains the figure: conditions, the reason a target is
	// missed, the parts of a breakdown.
	Note string `json:"note,omitempty"`
	// Error is set when the producer could not measure the row.
	Error string `json:"error,omitempty"`
}

// Informational reports whether the row has no target.
func (r Row) Informational() bool { return r.Target == "" && r.Error == "" }

// Compare sets Reference (with its unit and note) and Ratio = Value /
// Reference.
func (r Row) Compare(ref float64, unit, note string) Row {
	r.Reference, r.RefUnit, r.RefNote = ref, unit, note
	if ref != 0 {
		r.Ratio = r.Value / ref
	}
	return r
}

// Judge sets Target and Pass from g.
func (r Row) Judge(g Goal) Row {
	r.Target = g.String()
	r.Pass = r.Error == "" && g.Met(r)
	return r
}

// Failed returns the row named name reporting err (no measurement).
func Failed(name string, err error) Row {
	return Row{Name: name, Error: err.Error(), Target: "measured", Note: err.Error()}
}

// Of says which figure of a row a Goal constrains.
type Of string

// The figures a goal can constrain.
const (
	OfRatio Of = "ratio"
	OfValue Of = "value"
)

// Goal is a target: the figure Of, compared by Op ("≥", "≤", "<", ">")
// with Limit.
type Goal struct {
	Of    Of
	Op    string
	Limit float64
	Unit  string // printed after Limit, e.g. "ms"
}

// RatioAtLeast is the goal ratio ≥ limit.
func RatioAtLeast(limit float64) Goal { return Goal{Of: OfRatio, Op: "≥", Limit: limit} }

// RatioAtMost is the goal ratio ≤ limit.
func RatioAtMost(limit float64) Goal { return Goal{Of: OfRatio, Op: "≤", Limit: limit} }

// ValueAtLeast is the goal value ≥ limit (in unit).
func ValueAtLeast(limit float64, unit string) Goal {
	return Goal{Of: OfValue, Op: "≥", Limit: limit, Unit: unit}
}

// ValueAtMost is the goal value ≤ limit (in unit).
func ValueAtMost(limit float64, unit string) Goal {
	return Goal{Of: OfValue, Op: "≤", Limit: limit, Unit: unit}
}

// ValueBelow is the goal value < limit (in unit).
func ValueBelow(limit float64, unit string) Goal {
	return Goal{Of: OfValue, Op: "<", Limit: limit, Unit: unit}
}

// String renders the goal, e.g. "ratio ≥ 0.95" or "value < 50 ms".
func (g Goal) String() string {
	s := fmt.Sprintf("%s %s %s", g.Of, g.Op, Number(g.Limit))
	if g.Unit != "" {
		s += " " + g.Unit
	}
	return s
}

// Met reports whether r meets the goal. A NaN figure never does.
func (g Goal) Met(r Row) bool {
	x := r.Value
	if g.Of == OfRatio {
		x = r.Ratio
	}
	if math.IsNaN(x) {
		return false
	}
	switch g.Op {
	case "≥", ">=":
		return x >= g.Limit
	case "≤", "<=":
		return x <= g.Limit
	case "<":
		return x < g.Limit
	case ">":
		return x > g.Limit
	}
	return false
}

// Producer measures one or more rows.
type Producer struct {
	// Name is the producer's name, matched by the harness's -run filter
	// (a substring of Name or Group).
	Name string
	// Group is the target it serves, e.g. "memory", "cpu", "gpu", "events".
	Group string
	// Run measures; an error becomes one failed row named Name.
	Run func(ctx context.Context, env *Env) ([]Row, error)
}

// All is every producer of the harness, in the order the table prints
// them: memory, CPU per page, photos, GPU saturation, event overhead and
// the function's cold start.
func All() []Producer {
	return []Producer{
		{Name: "memory_flat", Group: "memory", Run: memoryRows},
		{Name: "cpu_per_page", Group: "cpu", Run: cpuRows},
		{Name: "photo_to_model_size", Group: "cpu", Run: photoRows},
		{Name: "saturation", Group: "gpu", Run: saturationRows},
		{Name: "events_per_second", Group: "events", Run: eventRows},
		{Name: "cold_start", Group: "cold", Run: coldStartRows},
	}
}

// Select returns the producers of ps whose name or group contains one of
// filter's comma-separated terms (all of ps for "").
func Select(ps []Producer, filter string) []Producer {
	var out []Producer
	for _, p := range ps {
		if matches(p, filter) {
			out = append(out, p)
		}
	}
	return out
}

func matches(p Producer, filter string) bool {
	if filter == "" {
		return true
	}
	for t := range strings.SplitSeq(filter, ",") {
		t = strings.TrimSpace(t)
		if t != "" && (strings.Contains(p.Name, t) || strings.Contains(p.Group, t)) {
			return true
		}
	}
	return false
}

// Run runs ps in order and returns their rows; a producer's error becomes a
// failed row, and a producer that returns no rows yields a failed row too
// (a target must never vanish silently from the table).
func Run(ctx context.Context, env *Env, ps []Producer) []Row {
	var rows []Row
	for _, p := range ps {
		start := time.Now()
		env.Logf("bench: %s …", p.Name)
		rs, err := p.Run(ctx, env)
		switch {
		case err != nil:
			rows = append(rows, rs...)
			rows = append(rows, Failed(p.Name, err))
		case len(rs) == 0:
			rows = append(rows, Failed(p.Name, errors.New("no rows measured")))
		default:
			rows = append(rows, rs...)
		}
		env.Logf("bench: %s done in %s", p.Name, time.Since(start).Round(time.Millisecond))
		if ctx.Err() != nil {
			break
		}
	}
	return rows
}

// Env is what producers share: the repository root, a scratch directory
// for the run, binaries built once, and a progress log.
type Env struct {
	// Root is the repository root (where go.mod is).
	Root string
	// Dir is a scratch directory for this run (removed by the caller).
	Dir string
	// Quick asks producers for a shorter run (fewer repeats, smaller
	// inputs) — for smoke tests of the harness, not for figures.
	Quick bool
	// Log receives progress lines (nil: discarded).
	Log io.Writer

	mu    sync.Mutex
	built map[string]string
}

// Logf writes a progress line to Log.
func (e *Env) Logf(format string, args ...any) {
	if e == nil || e.Log == nil {
		return
	}
	fmt.Fprintf(e.Log, format+"\n", args...)
}

// Build builds the main package pkg (relative to Root, e.g. "./cmd/ocrflow")
// with the given extra `go build` flags once per Env and returns the
// binary's path.
func (e *Env) Build(ctx context.Context, pkg string, flags ...string) (string, error) {
	key := strings.Join(append([]string{pkg}, flags...), " ")
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.built[key]; ok {
		return p, nil
	}
	if e.built == nil {
		e.built = map[string]string{}
	}
	out := filepath.Join(e.Dir, fmt.Sprintf("bin%d-%s", len(e.built), filepath.Base(pkg)))
	args := append([]string{"build", "-o", out}, flags...)
	args = append(args, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = e.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w: %s", pkg, err, strings.TrimSpace(string(b)))
	}
	e.built[key] = out
	return out, nil
}

// Median returns the median of xs (NaN for none); xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
