package chaos

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// Result is one scenario's row in docs/reliability.md.
type Result struct {
	Scenario string
	Jobs     int
	Pages    int
	// Faults describes what was injected.
	Faults string
	// Outcome is "pass" or what went wrong.
	Outcome string
	Time    time.Duration
}

// Markers around the generated table in docs/reliability.md.
const (
	beginMarker = "<!-- chaos-results:begin (written by make chaos; do not edit) -->"
	endMarker   = "<!-- chaos-results:end -->"
)

// Table renders results as the markdown table docs/reliability.md holds.
func Table(results []Result, at time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Last run: %s, `make chaos` on the project machine.\n\n", at.UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString("| Scenario | Jobs | Pages | Faults injected | Outcome | Time |\n|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %.0f s |\n", r.Scenario, r.Jobs, r.Pages,
			strings.ReplaceAll(r.Faults, "|", "\\|"), strings.ReplaceAll(r.Outcome, "|", "\\|"), r.Time.Seconds())
	}
	return b.String()
}

// WriteTable replaces the table between the markers in the markdown file
// at path.
func WriteTable(path, table string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no chaos-results markers", path)
	}
	s = s[:i+len(beginMarker)] + "\n" + table + "\n" + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}
