package backfill

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CheckpointVersion is the version of the checkpoint format.
const CheckpointVersion = 1

// Checkpoint is a backfill's progress, written atomically (temporary file,
// fsync, rename) before and after each batch. Everything up to Cursor is
// done; Pending names the jobs of the batch in hand, claimed but perhaps
// not published when the process died, which a resumed run publishes
// again.
type Checkpoint struct {
	Version int `json:"version"`
	// Fingerprint is the SHA-256 of Selection: a resumed run must select
	// exactly the same contents.
	Fingerprint string          `json:"fingerprint"`
	Selection   json.RawMessage `json:"selection"`
	// Run identifies the backfill across resumes; its claims are made by
	// "ocrflow backfill <Run>".
	Run       string    `json:"run"`
	StartedAt time.Time `json:"started_at"`
	// Until is the creation bound of the whole backfill: content created
	// after the first run started is live traffic's, not the backfill's.
	Until   time.Time `json:"until"`
	Cursor  Cursor    `json:"cursor"`
	Pending []string  `json:"pending,omitempty"`
	// Outstanding are submitted jobs without an outcome yet (kept for
	// --max-pending).
	Outstanding []string  `json:"outstanding,omitempty"`
	Counts      Counts    `json:"counts"`
	FailedIDs   []string  `json:"failed_ids,omitempty"`
	Done        bool      `json:"done"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// selection is what a backfill selects, as its fingerprint covers it.
type selection struct {
	Source        string   `json:"source"`
	Tenants       []string `json:"tenants,omitempty"`
	Owners        []string `json:"owners,omitempty"`
	MIME          []string `json:"mime"`
	Statuses      []string `json:"statuses"`
	CreatedAfter  string   `json:"created_after,omitempty"`
	CreatedBefore string   `json:"created_before,omitempty"`
	MissingOCR    bool     `json:"missing_ocr"`
	Stale         bool     `json:"stale"`
	// Recipe is the idempotency key of a fixed content id: it changes with
	// the model, the mode and the pipeline version.
	Recipe string `json:"recipe"`
}

// fingerprint returns the selection of source, f (defaults applied) and
// key, and its SHA-256.
func fingerprint(source string, f Filter, key func(string) string) (json.RawMessage, string, error) {
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(selection{
		Source: source, Tenants: f.Tenants, Owners: f.Owners, MIME: f.MIME, Statuses: f.Statuses,
		CreatedAfter: stamp(f.CreatedAfter), CreatedBefore: stamp(f.CreatedBefore),
		MissingOCR: f.MissingOCR, Stale: f.Stale, Recipe: key("00000000-0000-0000-0000-000000000000"),
	})
	if err != nil {
		return nil, "", fmt.Errorf("fingerprint: %w", err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:]), nil
}

// ReadCheckpoint reads the checkpoint at path; ok is false when there is
// none.
func ReadCheckpoint(path string) (cp Checkpoint, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cp, false, nil
	}
	if err != nil {
		return cp, false, fmt.Errorf("checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, false, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if cp.Version != CheckpointVersion {
		return cp, false, fmt.Errorf("checkpoint %s: version %d, this ocrflow writes %d", path, cp.Version, CheckpointVersion)
	}
	return cp, true, nil
}

// writeCheckpoint replaces the checkpoint at path atomically.
func writeCheckpoint(path string, cp Checkpoint) error {
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable where the platform allows
		_ = d.Close()
	}
	return nil
}
