package backfill

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/ocrflow/ocrflow/shared/simplecontent"
)

// IDs is the content-id-list source, for operators without database
// access: one content id per line (blank lines and lines starting with #
// are skipped), each resolved through simple-content's v5 API — the
// content (GET /contents/{id}), whether it is an original and its derived
// contents (GET /contents/{id}/derived-tree), and the metadata of each
// derived content, which marks ocrflow's results. Its position is the
// line number.
type IDs struct {
	api  *simplecontent.Client
	path string
	// Workers is how many ids are resolved at once (default 8).
	Workers int

	open   func() (io.ReadCloser, error)
	digest string

	mu   sync.Mutex
	rc   io.ReadCloser
	sc   *bufio.Scanner
	line int // lines consumed from sc
}

// NewIDs returns the source reading ids from path ("-" is standard input,
// which can be read once) and resolving them with api.
func NewIDs(api *simplecontent.Client, path string) (*IDs, error) {
	s := &IDs{api: api, path: path, Workers: 8}
	if path == "-" {
		used := false
		s.open = func() (io.ReadCloser, error) {
			if used {
				return nil, errors.New("standard input can only be read once")
			}
			used = true
			return io.NopCloser(os.Stdin), nil
		}
		return s, nil
	}
	s.open = func() (io.ReadCloser, error) { return os.Open(path) }
	// The checkpoint counts lines: it must resume on the same list.
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ids file: %w", err)
	}
	defer func() { _ = f.Close() }() // read only
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("ids file: %w", err)
	}
	s.digest = hex.EncodeToString(h.Sum(nil))
	return s, nil
}

// Describe names the source for the checkpoint's fingerprint: the file
// and its SHA-256 (standard input has none).
func (s *IDs) Describe() string {
	if s.path == "-" {
		return "ids:-"
	}
	return "ids:" + s.path + "#sha256:" + s.digest
}

// Total counts the ids left after `after` (-1 for standard input).
func (s *IDs) Total(_ context.Context, _ Filter, after Cursor) (int64, error) {
	if s.path == "-" {
		return -1, nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return 0, fmt.Errorf("ids file: %w", err)
	}
	defer func() { _ = f.Close() }() // read only
	sc := bufio.NewScanner(f)
	var n int64
	line := 0
	for sc.Scan() {
		line++
		if t := strings.TrimSpace(sc.Text()); line > after.Line && t != "" && !strings.HasPrefix(t, "#") {
			n++
		}
	}
	return n, sc.Err()
}

// Close releases the list.
func (s *IDs) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rc != nil && s.path != "-" {
		return s.rc.Close()
	}
	return nil
}

// seek positions the reader just after line n.
func (s *IDs) seek(n int) error {
	if s.sc != nil && s.line == n {
		return nil
	}
	if s.sc == nil || s.line > n {
		if s.rc != nil && s.path != "-" {
			_ = s.rc.Close() // read only
		}
		rc, err := s.open()
		if err != nil {
			return fmt.Errorf("ids: %w", err)
		}
		s.rc, s.sc, s.line = rc, bufio.NewScanner(rc), 0
	}
	for s.line < n {
		if !s.sc.Scan() {
			if err := s.sc.Err(); err != nil {
				return fmt.Errorf("ids: %w", err)
			}
			return fmt.Errorf("ids: the list has %d lines, the checkpoint is at line %d", s.line, n)
		}
		s.line++
	}
	return nil
}

// Next returns the items of the next n ids after `after`, resolved; fewer
// than n means the list is exhausted. An id that cannot be resolved comes
// back with Err set.
func (s *IDs) Next(ctx context.Context, _ Filter, after Cursor, n int) ([]Item, error) {
	s.mu.Lock()
	if err := s.seek(after.Line); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	var items []Item
	for len(items) < n && s.sc.Scan() {
		s.line++
		t := strings.TrimSpace(s.sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		items = append(items, Item{ID: t, Pos: Cursor{Line: s.line}})
	}
	err := s.sc.Err()
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("ids: %w", err)
	}
	sem := make(chan struct{}, max(s.Workers, 1))
	var wg sync.WaitGroup
	for i := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			items[i] = s.resolve(ctx, items[i])
		})
	}
	wg.Wait()
	return items, ctx.Err()
}

// resolve fills it from the API.
func (s *IDs) resolve(ctx context.Context, it Item) Item {
	id, err := uuid.Parse(it.ID)
	if err != nil {
		it.Missing = ReasonInvalidID
		return it
	}
	it.ID = id.String()
	c, err := s.api.GetContent(ctx, it.ID)
	if simplecontent.IsStatus(err, http.StatusNotFound) {
		it.Missing = ReasonNotFound
		return it
	}
	if err != nil {
		it.Err = fmt.Errorf("content %s: %w", it.ID, err)
		return it
	}
	it.TenantID, it.OwnerID, it.Status = c.TenantID, c.OwnerID, c.Status
	it.Name, it.Size, it.CreatedAt = c.FileName, c.FileSize, c.CreatedAt
	it.MIME = MIMEOf(c.MimeType, c.FileName)
	tree, err := s.api.DerivedTree(ctx, it.ID)
	if simplecontent.IsStatus(err, http.StatusNotFound) {
		it.Missing = ReasonNotFound // deleted in between
		return it
	}
	if err != nil {
		it.Err = fmt.Errorf("derived contents of %s: %w", it.ID, err)
		return it
	}
	for i, d := range tree {
		if i == 0 {
			it.Derived = d.DerivationType == simplecontent.TreeDerived
			continue
		}
		if d.ParentID != it.ID {
			continue // a grandchild
		}
		m, err := s.api.GetMetadata(ctx, d.ID)
		if simplecontent.IsStatus(err, http.StatusNotFound) {
			continue // no metadata: not ocrflow's (it always writes some)
		}
		if err != nil {
			it.Err = fmt.Errorf("metadata of derived %s: %w", d.ID, err)
			return it
		}
		if isOurs(m.Custom) {
			it.Results = append(it.Results, resultOf(d.ID, d.Status, m.Custom))
		}
	}
	return it
}
