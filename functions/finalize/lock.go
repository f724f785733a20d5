package finalize

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/scratch"
)

// DefaultLockLease is Config.LockLease's default.
const DefaultLockLease = 45 * time.Second

// lockRecord is the finalize lock's content: which event won it, which
// delivery of that event holds it, since when.
type lockRecord struct {
	Event string    `json:"event"`
	Token string    `json:"token"`
	At    time.Time `json:"at"`
}

// lock decides whether this delivery of e assembles job. The first
// delivery to create the lock wins. A later event finds it taken and
// replies nothing: the job is another event's to finish. Another delivery
// of the winning event itself — a redelivery after its holder crashed, or
// a duplicate delivered at the same time — must not assemble beside a live
// holder: while the lock is younger than the lease it is told to retry
// (a transient error); once older, the holder is gone (its handling was
// cancelled at the delivery timeout) and this delivery takes the work over.
func (s *Finalizer) lock(ctx context.Context, e event.Event, job string) (bool, error) {
	mine := lockRecord{Event: e.ID(), Token: rand.Text(), At: s.now().UTC()}
	err := scratch.CreateJSON(ctx, s.blobs, scratch.LockKey(job), mine)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, scratch.ErrExists) {
		return false, err
	}
	held, err := s.readLock(ctx, job)
	if err != nil {
		return false, err
	}
	if held.Event != e.ID() {
		return false, nil
	}
	if age := s.now().Sub(held.At); age < s.cfg.LockLease {
		return false, failure.Transient("job %s is being assembled by another delivery of %s (for %s); trying again later", job, e.ID(), age.Round(time.Second))
	}
	// Take over: the last writer wins, and each taker checks it did.
	if err := scratch.PutJSON(ctx, s.blobs, scratch.LockKey(job), mine); err != nil {
		return false, err
	}
	now, err := s.readLock(ctx, job)
	if err != nil {
		return false, err
	}
	if now.Token != mine.Token {
		return false, failure.Transient("job %s was taken over by another delivery of %s; trying again later", job, e.ID())
	}
	s.log.InfoContext(ctx, "finalize lock taken over from a delivery that is gone", "job", job, "event", e.ID(), "held_since", held.At)
	return true, nil
}

// unlock releases the lock this delivery of e holds after a transient
// failure, so the redelivery takes the work over at once instead of after
// the lease. Best effort: an unreleased lock only delays the retry.
func (s *Finalizer) unlock(ctx context.Context, job string, e event.Event) {
	if err := scratch.PutJSON(context.WithoutCancel(ctx), s.blobs, scratch.LockKey(job), lockRecord{Event: e.ID()}); err != nil {
		s.log.WarnContext(ctx, "finalize lock not released; the retry waits for its lease", "job", job, "error", err)
	}
}

// readLock reads the job's finalize lock. A lock written before it held a
// record (only the winning event's id) reads as that event, taken at the
// zero time: stale at once.
func (s *Finalizer) readLock(ctx context.Context, job string) (lockRecord, error) {
	b, err := scratch.GetBytes(ctx, s.blobs, scratch.LockKey(job))
	if err != nil {
		return lockRecord{}, err
	}
	var r lockRecord
	if json.Unmarshal(b, &r) != nil || r.Event == "" {
		return lockRecord{Event: string(b)}, nil
	}
	return r, nil
}
