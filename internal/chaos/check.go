package chaos

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ocrflow/ocrflow/shared/engine/vllmtest"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
	"github.com/ocrflow/ocrflow/shared/status"
)

// Job is a job a scenario submitted and what it expects of it.
type Job struct {
	ID        string
	ContentID string
	// Tag and Pages name the document (vllmtest.Document).
	Tag, Pages int
	// FailPages are pages that must end as placeholders (the engine
	// never reads them).
	FailPages []int
	// Fail is true when the job must end failed (the page-failure policy).
	Fail bool
}

// Wait polls the jobs' durable status until every one has ended, or
// within passes; it returns the statuses.
func (e *Env) Wait(ctx context.Context, jobs []Job, within time.Duration) (map[string]status.Job, error) {
	deadline := time.Now().Add(within)
	out := map[string]status.Job{}
	for {
		pending := 0
		for _, j := range jobs {
			if st, ok := out[j.ID]; ok && st.State.Terminal() {
				continue
			}
			st, err := status.Read(ctx, e.Scratch, j.ID, time.Now())
			if err == nil {
				out[j.ID] = st
			}
			if err != nil || !st.State.Terminal() {
				pending++
			}
		}
		if pending == 0 {
			return out, nil
		}
		if time.Now().After(deadline) {
			var open []string
			for _, j := range jobs {
				if st := out[j.ID]; !st.State.Terminal() {
					open = append(open, fmt.Sprintf("%s:%s(%d/%d)", j.ID, st.State, st.Pages.Done, st.Pages.Total))
				}
			}
			return out, fmt.Errorf("%d job(s) did not end within %s: %s", pending, within, strings.Join(open, " "))
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Verify checks the guarantees for every job and returns the violations:
// exactly one terminal event per job in the stream, agreeing with the
// durable outcome; one current derived content per source (none for a
// failed job); every page exactly once and in order, the expected failed
// pages as placeholders.
func (e *Env) Verify(ctx context.Context, jobs []Job, states map[string]status.Job) []string {
	var bad []string
	terminal := map[string]map[string]string{} // job → terminal event id → type
	evs, err := e.Stream(ctx, "ocr.job.completed", "ocr.job.failed")
	if err != nil {
		return []string{"read the stream: " + err.Error()}
	}
	for _, ev := range evs {
		job, _ := ev.Extensions()[events.ExtJob].(string)
		if terminal[job] == nil {
			terminal[job] = map[string]string{}
		}
		terminal[job][ev.ID()] = ev.Type()
	}
	for _, j := range jobs {
		st := states[j.ID]
		if n := len(terminal[j.ID]); n != 1 {
			bad = append(bad, fmt.Sprintf("%s: %d terminal events (%v), want exactly 1", j.ID, n, terminal[j.ID]))
		}
		want := status.Completed
		if j.Fail {
			want = status.Failed
		}
		if st.State != want {
			bad = append(bad, fmt.Sprintf("%s: ended %s (%s %s), want %s", j.ID, st.State, st.ErrorType, st.ErrorMessage, want))
			continue
		}
		bad = append(bad, e.verifyContent(ctx, j, st)...)
	}
	return bad
}

// verifyContent checks the job's derived contents and its markdown.
func (e *Env) verifyContent(ctx context.Context, j Job, st status.Job) []string {
	list, err := e.API.ListDerived(ctx, j.ContentID)
	if err != nil {
		return []string{fmt.Sprintf("%s: list derived: %v", j.ID, err)}
	}
	var current []string
	for _, c := range list {
		m, err := e.API.GetMetadata(ctx, c.ID)
		if err != nil {
			return []string{fmt.Sprintf("%s: metadata of %s: %v", j.ID, c.ID, err)}
		}
		if m.Custom[simplecontent.MetaState] == simplecontent.StateCompleted {
			current = append(current, c.ID)
		}
	}
	if j.Fail {
		if len(current) != 0 {
			return []string{fmt.Sprintf("%s: failed, yet %d current result(s) %v", j.ID, len(current), current)}
		}
		return nil
	}
	if len(current) != 1 {
		return []string{fmt.Sprintf("%s: %d current derived contents %v, want 1", j.ID, len(current), current)}
	}
	if current[0] != st.DerivedContentID {
		return []string{fmt.Sprintf("%s: current result %s, but the job reported %s", j.ID, current[0], st.DerivedContentID)}
	}
	md, err := e.download(ctx, current[0])
	if err != nil {
		return []string{fmt.Sprintf("%s: download result: %v", j.ID, err)}
	}
	return pagesOnceInOrder(j, md)
}

// download fetches a content's bytes as a platform user would.
func (e *Env) download(ctx context.Context, id string) (string, error) {
	f, err := e.API.GetFile(ctx, id)
	if err != nil {
		return "", err
	}
	resp, err := e.API.Download(ctx, f.DownloadURL, 30*time.Second)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// pagesOnceInOrder checks that each page's text is in md once, in page
// order, and each expected failed page is a placeholder instead.
func pagesOnceInOrder(j Job, md string) []string {
	var bad []string
	pos := -1
	for p := 1; p <= j.Pages; p++ {
		tok := vllmtest.Token(j.Tag, p)
		n := strings.Count(md, tok)
		if slices.Contains(j.FailPages, p) {
			if n != 0 || !strings.Contains(md, fmt.Sprintf("ocrflow:failed-page %d ", p)) {
				bad = append(bad, fmt.Sprintf("%s: page %d should be a placeholder", j.ID, p))
			}
			continue
		}
		if n != 1 {
			bad = append(bad, fmt.Sprintf("%s: page %d appears %d times", j.ID, p, n))
			continue
		}
		at := strings.Index(md, tok)
		if at < pos {
			bad = append(bad, fmt.Sprintf("%s: page %d is out of order", j.ID, p))
		}
		pos = at
	}
	return bad
}

// Resources is what a process holds: goroutines and open files.
type Resources struct{ Goroutines, FDs float64 }

// Resources scrapes p's goroutines and open file descriptors.
func (p *Proc) Resources(ctx context.Context) (Resources, error) {
	g, err := p.Gauges(ctx, "go_goroutines", "process_open_fds")
	if err != nil {
		return Resources{}, err
	}
	if _, ok := g["go_goroutines"]; !ok {
		return Resources{}, fmt.Errorf("%s: no go_goroutines in /metrics", p.Name)
	}
	return Resources{Goroutines: g["go_goroutines"], FDs: g["process_open_fds"]}, nil
}

// Grew reports resource growth beyond slack from before to after.
func Grew(name string, before, after Resources) []string {
	const goroutineSlack, fdSlack = 25, 12
	var bad []string
	if after.Goroutines > before.Goroutines+goroutineSlack {
		bad = append(bad, fmt.Sprintf("%s: goroutines %v → %v", name, before.Goroutines, after.Goroutines))
	}
	if after.FDs > before.FDs+fdSlack {
		bad = append(bad, fmt.Sprintf("%s: open files %v → %v", name, before.FDs, after.FDs))
	}
	return bad
}
