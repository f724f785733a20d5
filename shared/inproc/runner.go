package inproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// Document is one document to OCR synchronously: a local file the caller
// owns (and removes once Run has returned).
type Document struct {
	// Path is the file's location.
	Path string
	// Name is the document's file name (it names the result).
	Name string
	// MIME is the declared type, if any (convert sniffs the real one).
	MIME string
	// Hints are the job hints (job.Parse validates them).
	Hints map[string]string
}

// Result is a document's finished markdown.
type Result struct {
	JobID    string
	Markdown []byte
	// Completed is the job's ocr.job.completed payload (pages, routes,
	// failed pages, timing).
	Completed events.JobCompleted
}

// JobError is a job that ended with ocr.job.failed.
type JobError struct {
	JobID  string
	Failed events.JobFailed
}

func (e *JobError) Error() string {
	return fmt.Sprintf("job %s failed (%s): %s", e.JobID, e.Failed.ErrorType, e.Failed.Message)
}

// Ports are what a Runner hands the pipeline it opens: the transport, a
// memory scratch store and the content store that reads the documents
// being run and captures their results.
type Ports struct {
	Transport *Transport
	Scratch   scratch.Store
	Content   *Files
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Transport configures the in-process transport (its Observe and Drop
	// are the runner's own).
	Transport Config
	// Open assembles the stages on the ports (app.Open) and returns what
	// closes them.
	Open func(ctx context.Context, p Ports) (close func(context.Context) error, err error)
	// Log receives the runner's logs; nil discards them.
	Log *slog.Logger
}

// tombstoneAge is how long the events of a job that is over (answered, or
// abandoned by its caller) are dropped: longer than any Trigger's whole
// retry ladder, so no retry of the job's events outlives it.
const tombstoneAge = time.Hour

// syncID matches the job ids a Runner gives its jobs, at the start of an
// event id or a scratch key's job segment.
var syncID = regexp.MustCompile(`^sync-[0-9a-f]{16}`)

// Runner runs single documents through one long-lived in-process pipeline
// and waits for each one's terminal event. Every job's scratch objects,
// dead letters and captured result are removed once it has been
// answered; a job whose caller gave up (its context ended) is abandoned:
// its scratch objects go at once and its remaining events are dropped.
// It is safe for concurrent use.
type Runner struct {
	cfg RunnerConfig
	log *slog.Logger

	open     sync.Mutex // serialises Open and Close
	opened   bool
	closed   bool
	tr       *Transport
	closeApp func(context.Context) error
	scratch  *jobScratch
	files    *Files

	mu         sync.Mutex
	waiters    map[string]chan event.Event
	tombstones map[string]time.Time
}

// NewRunner returns a runner; it opens its pipeline on first use (or on
// Open).
func NewRunner(cfg RunnerConfig) *Runner {
	r := &Runner{cfg: cfg, log: cfg.Log, waiters: map[string]chan event.Event{}, tombstones: map[string]time.Time{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Open assembles the pipeline unless it is open already. After a failure
// (an engine that cannot be reached) the next call tries again.
func (r *Runner) Open(ctx context.Context) error {
	r.open.Lock()
	defer r.open.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.opened {
		return nil
	}
	tcfg := r.cfg.Transport
	tcfg.Observe, tcfg.Drop = r.observe, r.over
	tr := New(tcfg)
	mem := &jobScratch{Memory: blob.NewMemory(), over: r.overID}
	files := &Files{docs: map[string]Document{}, results: map[string][]byte{}}
	closeApp, err := r.cfg.Open(ctx, Ports{Transport: tr, Scratch: mem, Content: files})
	if err != nil {
		return errors.Join(fmt.Errorf("open in-process pipeline: %w", err), tr.Close(ctx))
	}
	r.tr, r.closeApp, r.scratch, r.files, r.opened = tr, closeApp, mem, files, true
	return nil
}

// Run OCRs doc and returns its markdown; a job that fails is a *JobError.
// When ctx ends first, Run abandons the job and returns ctx's error.
func (r *Runner) Run(ctx context.Context, doc Document) (Result, error) {
	if err := r.Open(ctx); err != nil {
		return Result{}, err
	}
	id := newID()
	e, err := job.NewEvent(job.Spec{ID: id, Location: doc.Path, Name: doc.Name, Hints: doc.Hints, Source: "ocrflow/api"})
	if err != nil {
		return Result{}, err
	}
	if _, err := job.Parse(e); err != nil {
		return Result{}, err
	}
	done := make(chan event.Event, 1)
	r.mu.Lock()
	r.waiters[id] = done
	r.mu.Unlock()
	r.files.add(id, doc)
	defer r.finish(id)
	if err := r.tr.Send(ctx, e); err != nil {
		return Result{}, err
	}
	var end event.Event
	select {
	case end = <-done:
	case <-ctx.Done():
		return Result{JobID: id}, fmt.Errorf("job %s: %w", id, ctx.Err())
	}
	if end.Type() == events.TypeJobFailed {
		var f events.JobFailed
		if err := events.Decode(end, &f); err != nil {
			return Result{JobID: id}, err
		}
		return Result{JobID: id}, &JobError{JobID: id, Failed: f}
	}
	res := Result{JobID: id}
	if err := events.Decode(end, &res.Completed); err != nil {
		return res, err
	}
	md, ok := r.files.result(id)
	if !ok {
		return res, fmt.Errorf("job %s completed but its result was not captured", id)
	}
	res.Markdown = md
	return res, nil
}

// finish forgets job id: its events are dropped from now on and its
// scratch objects, dead letters, document and result are removed.
func (r *Runner) finish(id string) {
	now := time.Now()
	r.mu.Lock()
	delete(r.waiters, id)
	for old, at := range r.tombstones {
		if now.Sub(at) > tombstoneAge {
			delete(r.tombstones, old)
		}
	}
	r.tombstones[id] = now
	r.mu.Unlock()
	r.files.remove(id)
	ctx := context.Background()
	err := r.scratch.DeletePrefix(ctx, scratch.JobPrefix(id))
	if keys, lerr := r.scratch.List(ctx, scratch.DeadLettersPrefix+id); lerr == nil {
		for _, k := range keys {
			err = errors.Join(err, r.scratch.DeletePrefix(ctx, k))
		}
	} else {
		err = errors.Join(err, lerr)
	}
	if err != nil {
		r.log.Warn("sync job clean-up failed", "job", id, "error", err)
	}
}

// observe hands a job's terminal event to the Run waiting for it.
func (r *Runner) observe(e event.Event) {
	if !events.Terminal(e.Type()) {
		return
	}
	id, _ := e.Extensions()[events.ExtJob].(string)
	r.mu.Lock()
	w := r.waiters[id]
	r.mu.Unlock()
	if w != nil {
		select {
		case w <- e:
		default: // a second terminal event: the first one counts
		}
	}
}

// over reports whether e belongs to a job that is over.
func (r *Runner) over(e event.Event) bool {
	id, _ := e.Extensions()[events.ExtJob].(string)
	if id == "" {
		id = e.ID()
	}
	return r.overID(id)
}

// overID reports whether the job whose id starts s (an event id, a job id)
// is over.
func (r *Runner) overID(s string) bool {
	id := syncID.FindString(s)
	if id == "" {
		return false
	}
	r.mu.Lock()
	_, over := r.tombstones[id]
	r.mu.Unlock()
	return over
}

// Scratch returns the pipeline's scratch store (nil before Open).
func (r *Runner) Scratch() *blob.Memory {
	r.open.Lock()
	defer r.open.Unlock()
	if r.scratch == nil {
		return nil
	}
	return r.scratch.Memory
}

// Close stops the pipeline: the transport first (handlers in flight get
// until ctx is done), then the ports the pipeline opened.
func (r *Runner) Close(ctx context.Context) error {
	r.open.Lock()
	defer r.open.Unlock()
	r.closed = true
	if !r.opened {
		return nil
	}
	r.opened = false
	return errors.Join(r.tr.Close(ctx), r.closeApp(ctx))
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "sync-" + hex.EncodeToString(b)
}

// jobScratch is the runner's memory scratch store: writes under a job
// that is over are dropped, so a handler still in flight when its job
// was answered leaves nothing behind.
type jobScratch struct {
	*blob.Memory
	over func(string) bool
}

// jobOf returns the job segment of key: the job id of jobs/<job>/…, the
// event id of deadletters/<id>.json.
func jobOf(key string) string {
	if rest, ok := strings.CutPrefix(key, "jobs/"); ok {
		return rest
	}
	rest, _ := strings.CutPrefix(key, scratch.DeadLettersPrefix)
	return rest
}

// Put stores r under key, unless key belongs to a job that is over.
func (s *jobScratch) Put(ctx context.Context, key string, r io.Reader) error {
	if s.over(jobOf(key)) {
		return nil
	}
	return s.Memory.Put(ctx, key, r)
}

// Create stores r under key if it is absent, unless key belongs to a job
// that is over.
func (s *jobScratch) Create(ctx context.Context, key string, r io.Reader) error {
	if s.over(jobOf(key)) {
		return nil
	}
	return s.Memory.Create(ctx, key, r)
}

// Files is the content store of synchronous runs: it reads each job's
// document from the file its caller handed in, and keeps each job's
// markdown for the Run waiting for it instead of storing it anywhere.
// It implements convert.Fetcher and finalize.Storer.
type Files struct {
	mu      sync.Mutex
	docs    map[string]Document
	results map[string][]byte
}

func (f *Files) add(id string, d Document) {
	f.mu.Lock()
	f.docs[id] = d
	f.mu.Unlock()
}

func (f *Files) remove(id string) {
	f.mu.Lock()
	delete(f.docs, id)
	delete(f.results, id)
	f.mu.Unlock()
}

func (f *Files) result(id string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	md, ok := f.results[id]
	return md, ok
}

// Fetch copies job j's document to dst, refusing more than maxBytes (0 =
// no limit).
func (f *Files) Fetch(ctx context.Context, j job.Job, dst string, maxBytes int64) (content.Source, error) {
	f.mu.Lock()
	d, ok := f.docs[j.ID]
	f.mu.Unlock()
	if !ok {
		return content.Source{}, failure.Validation("job %s has no document here: its request has ended", j.ID)
	}
	src, err := os.Open(d.Path)
	if err != nil {
		return content.Source{}, failure.Validation("open the document of job %s: %v", j.ID, err)
	}
	defer func() { _ = src.Close() }() // read-only: nothing is lost
	n, err := content.CopyLimited(ctx, dst, src, maxBytes)
	if err != nil {
		return content.Source{}, err
	}
	return content.Source{Name: d.Name, MIME: d.MIME, Size: n}, nil
}

// Store keeps the job's markdown for its Run and returns the job id (the
// result is not stored anywhere else).
func (f *Files) Store(_ context.Context, r content.Result) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.docs[r.JobID]; !ok {
		return "", failure.Permanent("job %s has no waiting request: its result is dropped", r.JobID)
	}
	f.results[r.JobID] = append([]byte(nil), r.Markdown...)
	return r.JobID, nil
}
