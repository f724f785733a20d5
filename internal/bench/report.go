package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the JSON document the harness writes: the rows plus what is
// needed to compare them across commits.
type Report struct {
	Time   time.Time `json:"time"`
	Commit string    `json:"commit,omitempty"`
	Dirty  bool      `json:"dirty,omitempty"`
	Go     string    `json:"go"`
	OS     string    `json:"os"`
	Arch   string    `json:"arch"`
	CPUs   int       `json:"cpus"`
	Quick  bool      `json:"quick,omitempty"`
	Rows   []Row     `json:"rows"`
	// Passed counts rows with a target that is met; Failed those with a
	// target that is not (or that could not be measured).
	Passed int `json:"passed"`
	Failed int `json:"failed"`
}

// NewReport wraps rows with the run's context; the commit is read from
// git in root (left empty outside a repository).
func NewReport(ctx context.Context, root string, quick bool, rows []Row) Report {
	r := Report{
		Time: time.Now().UTC().Truncate(time.Second), Go: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Quick: quick, Rows: rows,
	}
	if out, err := gitOutput(ctx, root, "rev-parse", "HEAD"); err == nil {
		r.Commit = out
		st, err := gitOutput(ctx, root, "status", "--porcelain", "--untracked-files=no")
		r.Dirty = err == nil && st != ""
	}
	for _, row := range rows {
		switch {
		case row.Informational():
		case row.Pass:
			r.Passed++
		default:
			r.Failed++
		}
	}
	return r
}

func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	return strings.TrimSpace(string(b)), err
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("bench json: %w", err)
	}
	return nil
}

// WriteTable prints rows as one aligned table. The name column is
// right-aligned so that each row reads "name ratio …" — the saturation row
// starts "saturation 0.97" — then the target, PASS/FAIL (info for rows
// without a target, ERROR for rows that could not be measured), the
// measured value, the reference and the note.
func WriteTable(w io.Writer, rows []Row) error {
	width := len("row")
	for _, r := range rows {
		width = max(width, len(r.Name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%*s %s\t%s\t%s\t%s\t%s\t%s\n", width, "row", "ratio", "target", "pass", "measured", "reference", "note")
	for _, r := range rows {
		ratio := "-"
		if r.Ratio != 0 || r.Reference != 0 {
			ratio = Ratio(r.Ratio)
		}
		target := r.Target
		if target == "" {
			target = "-"
		}
		ref := "-"
		if r.Reference != 0 || r.RefNote != "" {
			ref = strings.TrimSpace(withUnit(r.Reference, r.RefUnit) + " " + r.RefNote)
			if r.Reference == 0 {
				ref = r.RefNote
			}
		}
		measured := withUnit(r.Value, r.Unit)
		if r.Error != "" {
			measured = "-"
		}
		fmt.Fprintf(tw, "%*s %s\t%s\t%s\t%s\t%s\t%s\n", width, r.Name, ratio, target, verdict(r), measured, ref, oneLine(r.Note))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench table: %w", err)
	}
	return nil
}

func verdict(r Row) string {
	switch {
	case r.Error != "":
		return "ERROR"
	case r.Informational():
		return "info"
	case r.Pass:
		return "PASS"
	}
	return "FAIL"
}

func withUnit(v float64, unit string) string {
	if unit == "" {
		return Number(v)
	}
	return Number(v) + " " + unit
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Ratio formats a ratio as a decimal with two places ("0.97", "1.30"),
// or two significant digits below 0.1 ("0.0039").
func Ratio(x float64) string {
	switch a := math.Abs(x); {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return strconv.FormatFloat(x, 'f', -1, 64)
	case a != 0 && a < 0.1:
		return strconv.FormatFloat(x, 'g', 2, 64)
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

// Number formats a measured figure with about three significant digits
// and no exponent: 0.0123, 1.23, 12.3, 123, 12345; whole numbers print
// without decimals (50, 8).
func Number(x float64) string {
	a := math.Abs(x)
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return strconv.FormatFloat(x, 'f', -1, 64)
	case a >= 100 || x == math.Trunc(x):
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}
