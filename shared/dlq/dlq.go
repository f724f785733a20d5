// Package dlq reads the dead letters the deadletter stage keeps under
// deadletters/ in the scratch store and replays them.
//
// A dead letter belongs to a job (its ocrjob extension; for a
// simpleprocess.job, the job's id). Replay starts one new attempt per job:
// the job event again under the id <job>.r<k> with the hint
// replay_of=<job> (job.Again), published like any job. Convert takes over
// the pages the replayed job finished, so only the rest reach the engine
// again, and the attempt's result supersedes the replayed job's. The
// replayed job is linked to its attempt (jobs/<job>/replayed.json) and its
// dead letters are marked replayed, so replaying again publishes nothing.
package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// Entry is one dead letter as List shows it.
type Entry struct {
	// ID names the dead letter (deadletters/<id>.json).
	ID string `json:"id"`
	// Job is the job the dead event belongs to ("" when it names none).
	Job string `json:"job,omitempty"`
	// Stage is the stage whose deliveries ran out.
	Stage string `json:"stage,omitempty"`
	// Type is the dead event's type.
	Type string `json:"type"`
	// Code is the last HTTP status (knativeerrorcode) and Reason the
	// last answer (knativeerrordata): the failure's text.
	Code   int    `json:"code"`
	Reason string `json:"reason"`
	// ReceivedAt is when the dead letter was kept, AgeSeconds how long
	// ago that was.
	ReceivedAt time.Time `json:"received_at"`
	AgeSeconds float64   `json:"age_seconds"`
	// ReplayedAt and ReplayedAs are set once the dead letter has been
	// replayed: when, and as which job attempt.
	ReplayedAt *time.Time `json:"replayed_at,omitempty"`
	ReplayedAs string     `json:"replayed_as,omitempty"`
}

// Letter is one dead letter in full: its entry, where delivery failed
// (knativeerrordest) and the dead event itself.
type Letter struct {
	Entry
	Dest  string      `json:"dest"`
	Event event.Event `json:"event"`
}

// ErrNotFound means no dead letter has the id.
var ErrNotFound = errors.New("no such dead letter")

// List returns every kept dead letter, oldest first, with its age at now.
func List(ctx context.Context, s scratch.Store, now time.Time) ([]Entry, error) {
	letters, err := all(ctx, s, now)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(letters))
	for i, l := range letters {
		out[i] = l.Entry
	}
	return out, nil
}

// Get returns the dead letter id (an Entry's ID) with its age at now.
func Get(ctx context.Context, s scratch.Store, id string, now time.Time) (Letter, error) {
	key := scratch.DeadLetterKey(id)
	if !scratch.ValidKey(key) {
		return Letter{}, fmt.Errorf("dead letter %q: %w", id, ErrNotFound)
	}
	var rec scratch.DeadLetter
	if err := scratch.GetJSON(ctx, s, key, &rec); err != nil {
		if errors.Is(err, scratch.ErrNotFound) {
			return Letter{}, fmt.Errorf("dead letter %q: %w", id, ErrNotFound)
		}
		return Letter{}, fmt.Errorf("dead letter %q: %w", id, err)
	}
	return letter(idOf(key), rec, now), nil
}

// all reads every dead letter, oldest first (ties by id).
func all(ctx context.Context, s scratch.Store, now time.Time) ([]Letter, error) {
	keys, err := s.List(ctx, scratch.DeadLettersPrefix)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	var out []Letter
	for _, k := range keys {
		if !strings.HasSuffix(k, ".json") || strings.Contains(strings.TrimPrefix(k, scratch.DeadLettersPrefix), "/") {
			continue
		}
		var rec scratch.DeadLetter
		if err := scratch.GetJSON(ctx, s, k, &rec); err != nil {
			if errors.Is(err, scratch.ErrNotFound) {
				continue // removed since the listing
			}
			return nil, fmt.Errorf("dead letter %s: %w", idOf(k), err)
		}
		out = append(out, letter(idOf(k), rec, now))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].ReceivedAt.Equal(out[j].ReceivedAt) {
			return out[i].ReceivedAt.Before(out[j].ReceivedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func idOf(key string) string {
	return strings.TrimSuffix(strings.TrimPrefix(key, scratch.DeadLettersPrefix), ".json")
}

func letter(id string, rec scratch.DeadLetter, now time.Time) Letter {
	e := rec.Event
	return Letter{
		Entry: Entry{
			ID: id, Job: JobOf(e), Stage: StageOf(e, rec.Dest), Type: e.Type(), Code: rec.Code, Reason: rec.Reason,
			ReceivedAt: rec.ReceivedAt, AgeSeconds: max(0, now.Sub(rec.ReceivedAt).Seconds()),
			ReplayedAt: rec.ReplayedAt, ReplayedAs: rec.ReplayedAs,
		},
		Dest: rec.Dest, Event: e,
	}
}

// JobOf returns the job a dead event belongs to: its ocrjob extension,
// else the job id its data names; "" for an event of no job.
func JobOf(e event.Event) string {
	if id, ok := e.Extensions()[events.ExtJob].(string); ok && id != "" {
		return id
	}
	switch e.Type() {
	case events.TypeJob:
		j, _ := job.Parse(e) // the id is read even when the job is invalid
		return j.ID
	case events.TypeConvertContinue, events.TypePageRendered, events.TypePageRecognized:
		var d struct {
			JobID string `json:"job_id"`
		}
		if json.Unmarshal(e.Data(), &d) == nil {
			return d.JobID
		}
	}
	return ""
}

// StageOf returns the stage whose deliveries of e ran out: the one whose
// Service dest (knativeerrordest) names, else the one e's type routes to
// (the Trigger manifests, optional ones included); "" when neither says.
func StageOf(e event.Event, dest string) string {
	triggers, err := routing()
	if err != nil {
		return ""
	}
	if svc := serviceOf(dest); svc != "" {
		for _, t := range triggers {
			if t.Subscriber == svc {
				return eventing.StageOf(svc)
			}
		}
	}
	for _, t := range triggers {
		if t.Accepts(e) {
			return eventing.StageOf(t.Subscriber)
		}
	}
	return ""
}

// routing returns every Trigger of the embedded manifests, optional ones
// included (read once).
var routing = sync.OnceValues(func() ([]eventing.Trigger, error) {
	ts, err := eventing.Triggers()
	if err != nil {
		return nil, err
	}
	opt, err := eventing.OptionalTriggers()
	if err != nil {
		return nil, err
	}
	return append(ts, opt...), nil
})

// serviceOf returns the Service name a knativeerrordest URL points at:
// ocrflow://ocrflow-recognize (the standalone runtime) or
// http://ocrflow-recognize.ocrflow.svc.cluster.local (Knative).
func serviceOf(dest string) string {
	u, err := url.Parse(dest)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	name, _, _ := strings.Cut(u.Hostname(), ".")
	return name
}

// Sender publishes an event: the standalone runtime, or a broker ingress.
type Sender interface {
	Send(ctx context.Context, e event.Event) error
}

// Request says what Replay replays.
type Request struct {
	// IDs names dead letters to replay (Entry.ID); All replays every dead
	// letter not replayed yet instead.
	IDs []string
	All bool
	// DryRun reports what would be published and changes nothing.
	DryRun bool
	// By names the replayer in the attempts' submitted records (default
	// "ocrflow dlq replay").
	By string
}

// Report says what Replay did (or, with DryRun, would do).
type Report struct {
	DryRun bool `json:"dry_run,omitempty"`
	// Attempts are the new job attempts, one per replayed job.
	Attempts []Attempt `json:"attempts"`
	// Unreplayable lists the dead letters no attempt could be built for.
	Unreplayable []Skip `json:"unreplayable,omitempty"`
	// AlreadyReplayed lists the named dead letters replayed before.
	AlreadyReplayed []Skip `json:"already_replayed,omitempty"`
}

// Attempt is one job replayed as a new attempt.
type Attempt struct {
	// Job is the replayed job, As the attempt's job id (<job>.r<k>).
	Job string `json:"job"`
	As  string `json:"as"`
	// From says where the job event came from: "submitted" (the job's
	// submitted record) or "dead letter <id>".
	From string `json:"from"`
	// DeadLetters are the job's dead letters the attempt replays.
	DeadLetters []string `json:"dead_letters"`
	// Event is the job event published (or, with DryRun, to publish).
	Event event.Event `json:"event"`
	// Error says why publishing failed; its dead letters stay unreplayed.
	Error string `json:"error,omitempty"`
}

// Skip is a dead letter Replay did not replay, and why.
type Skip struct {
	DeadLetter string `json:"dead_letter"`
	Job        string `json:"job,omitempty"`
	Reason     string `json:"reason"`
}

// OK reports whether every selected dead letter was replayed (or, with
// DryRun, would be).
func (r Report) OK() bool {
	if len(r.Unreplayable) > 0 {
		return false
	}
	for _, a := range r.Attempts {
		if a.Error != "" {
			return false
		}
	}
	return true
}

// maxAttempts bounds the attempt numbers Replay tries for one job.
const maxAttempts = 1000

// Replay replays the dead letters req selects: it groups those not yet
// replayed by job and starts one new attempt per job (see the package
// doc), then marks every dead letter of the job replayed. A dead letter of
// no job, or of a job whose event can be found neither in its submitted
// record nor among its dead letters (a simpleprocess.job, or the job an
// ocr.convert.continue carries), is reported in Unreplayable. A publish
// that fails is reported in its Attempt and returned; the other jobs are
// still replayed. Store errors stop Replay.
func Replay(ctx context.Context, s scratch.Store, send Sender, req Request) (Report, error) {
	rep := Report{DryRun: req.DryRun, Attempts: []Attempt{}}
	if req.By == "" {
		req.By = "ocrflow dlq replay"
	}
	letters, err := all(ctx, s, time.Now())
	if err != nil {
		return rep, err
	}
	selected, err := selectLetters(letters, req, &rep)
	if err != nil {
		return rep, err
	}
	// Every un-replayed dead letter of a selected job is replayed with it.
	byJob := map[string][]Letter{}
	var jobs []string
	for _, l := range letters {
		if l.ReplayedAt != nil {
			continue
		}
		if l.Job == "" {
			if selected[l.ID] {
				rep.Unreplayable = append(rep.Unreplayable, Skip{DeadLetter: l.ID, Reason: "the dead " + l.Type + " event names no job"})
			}
			continue
		}
		if len(byJob[l.Job]) == 0 {
			jobs = append(jobs, l.Job)
		}
		byJob[l.Job] = append(byJob[l.Job], l)
	}
	var errs []error
	for _, j := range jobs {
		group := byJob[j]
		if !slices.ContainsFunc(group, func(l Letter) bool { return selected[l.ID] }) {
			continue
		}
		a, skip, err := replayJob(ctx, s, send, req, j, group)
		switch {
		case err != nil:
			return rep, err
		case skip != "":
			for _, l := range group {
				rep.Unreplayable = append(rep.Unreplayable, Skip{DeadLetter: l.ID, Job: j, Reason: skip})
			}
		default:
			rep.Attempts = append(rep.Attempts, a)
			if a.Error != "" {
				errs = append(errs, fmt.Errorf("replay %s as %s: %s", j, a.As, a.Error))
			}
		}
	}
	return rep, errors.Join(errs...)
}

// selectLetters returns the ids of the dead letters req names (or all
// un-replayed ones), reporting named ones replayed before.
func selectLetters(letters []Letter, req Request, rep *Report) (map[string]bool, error) {
	selected := map[string]bool{}
	if req.All {
		for _, l := range letters {
			selected[l.ID] = l.ReplayedAt == nil
		}
		return selected, nil
	}
	if len(req.IDs) == 0 {
		return nil, errors.New("replay: name dead letters or select all")
	}
	byID := map[string]Letter{}
	for _, l := range letters {
		byID[l.ID] = l
	}
	for _, id := range req.IDs {
		l, ok := byID[idOf(scratch.DeadLetterKey(id))]
		if !ok {
			return nil, fmt.Errorf("replay %q: %w", id, ErrNotFound)
		}
		if l.ReplayedAt != nil {
			rep.AlreadyReplayed = append(rep.AlreadyReplayed, Skip{DeadLetter: l.ID, Job: l.Job, Reason: "replayed as " + l.ReplayedAs})
			continue
		}
		selected[l.ID] = true
	}
	return selected, nil
}

// replayJob starts the new attempt of job j for its dead letters group.
// skip says why none can be started.
func replayJob(ctx context.Context, s scratch.Store, send Sender, req Request, j string, group []Letter) (a Attempt, skip string, err error) {
	base, from, err := jobEvent(ctx, s, j, group)
	if err != nil || base == nil {
		return a, "no submitted record and no job event among its dead letters", err
	}
	a = Attempt{Job: j, From: from}
	for _, l := range group {
		a.DeadLetters = append(a.DeadLetters, l.ID)
	}
	hints := map[string]string{job.HintReplayOf: j}
	root := rootOf(j, *base)
	for k := 1; a.As == "" && k <= maxAttempts; k++ {
		id := root + ".r" + strconv.Itoa(k)
		ev, err := job.Again(*base, id, hints)
		if err != nil {
			return a, err.Error(), nil
		}
		taken, err := claim(ctx, s, req, id, ev)
		if err != nil {
			return a, "", err
		}
		if !taken {
			a.As, a.Event = id, ev
		}
	}
	if a.As == "" {
		return a, fmt.Sprintf("attempts %s.r1 to .r%d all exist", root, maxAttempts), nil
	}
	if req.DryRun {
		return a, "", nil
	}
	now := time.Now().UTC()
	if err := scratch.PutJSON(ctx, s, scratch.ReplayedKey(j), scratch.Replayed{At: now, As: a.As}); err != nil {
		return a, "", fmt.Errorf("replay %s: %w", j, err)
	}
	if err := send.Send(ctx, a.Event); err != nil {
		a.Error = err.Error()
		return a, "", nil
	}
	for _, l := range group {
		if err := mark(ctx, s, l.ID, a.As, now); err != nil {
			return a, "", err
		}
	}
	return a, "", nil
}

// claim takes attempt id for ev: it creates the attempt's submitted record
// (first writer wins, so two replays never take the same id). taken is
// true when id was taken before. A dry run only looks.
func claim(ctx context.Context, s scratch.Store, req Request, id string, ev event.Event) (taken bool, err error) {
	key := scratch.SubmittedKey(id)
	if req.DryRun {
		taken, err = s.Exists(ctx, key)
		if err != nil {
			return false, fmt.Errorf("replay: %w", err)
		}
		return taken, nil
	}
	b, err := ev.MarshalJSON()
	if err != nil {
		return false, fmt.Errorf("replay: encode %s: %w", id, err)
	}
	err = scratch.CreateJSON(ctx, s, key, scratch.Submitted{SubmittedAt: time.Now().UTC(), By: req.By, Job: b})
	switch {
	case errors.Is(err, scratch.ErrExists):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("replay: claim %s: %w", id, err)
	}
	return false, nil
}

// mark records that dead letter id was replayed as attempt as.
func mark(ctx context.Context, s scratch.Store, id, as string, at time.Time) error {
	key := scratch.DeadLetterKey(id)
	var rec scratch.DeadLetter
	if err := scratch.GetJSON(ctx, s, key, &rec); err != nil {
		return fmt.Errorf("mark dead letter %s: %w", id, err)
	}
	rec.ReplayedAt, rec.ReplayedAs = &at, as
	if err := scratch.PutJSON(ctx, s, key, rec); err != nil {
		return fmt.Errorf("mark dead letter %s: %w", id, err)
	}
	return nil
}

// jobEvent returns job j's event as it was accepted: its submitted record,
// else a dead simpleprocess.job of the group, else the job an
// ocr.convert.continue of the group carries. nil when there is none.
func jobEvent(ctx context.Context, s scratch.Store, j string, group []Letter) (*event.Event, string, error) {
	var sub scratch.Submitted
	err := scratch.GetJSON(ctx, s, scratch.SubmittedKey(j), &sub)
	switch {
	case err == nil:
		var e event.Event
		if err := json.Unmarshal(sub.Job, &e); err != nil {
			return nil, "", fmt.Errorf("replay %s: submitted job: %w", j, err)
		}
		return &e, "submitted", nil
	case !errors.Is(err, scratch.ErrNotFound):
		return nil, "", fmt.Errorf("replay %s: %w", j, err)
	}
	for _, l := range group {
		switch l.Type {
		case events.TypeJob:
			e := l.Event.Clone()
			for _, ext := range []string{events.ExtErrorCode, events.ExtErrorDest, events.ExtErrorData} {
				e.SetExtension(ext, nil) // deletes it
			}
			return &e, "dead letter " + l.ID, nil
		case events.TypeConvertContinue:
			var c events.ConvertContinue
			var e event.Event
			if events.Decode(l.Event, &c) == nil && json.Unmarshal(c.Job, &e) == nil && e.Type() == events.TypeJob {
				return &e, "dead letter " + l.ID, nil
			}
		}
	}
	return nil, "", nil
}

// rootOf returns the job id attempts of j are numbered from: j itself,
// or, when j is an attempt (<job>.r<k> with hint replay_of), <job>, so
// that a replay of j.r1 is j.r2 rather than j.r1.r1.
func rootOf(j string, e event.Event) string {
	var d struct {
		Hints map[string]string `json:"hints"`
	}
	if json.Unmarshal(e.Data(), &d) != nil || d.Hints[job.HintReplayOf] == "" {
		return j
	}
	i := strings.LastIndex(j, ".r")
	if i <= 0 || i+2 == len(j) || strings.Trim(j[i+2:], "0123456789") != "" {
		return j
	}
	return j[:i]
}
