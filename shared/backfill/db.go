package backfill

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tendant/simple-content/pkg/simplecontent"
	"github.com/tendant/simple-content/pkg/simplecontent/admin"
	repopg "github.com/tendant/simple-content/pkg/simplecontent/repo/postgres"
)

// DefaultSchema is the Postgres schema simple-content's tables live in
// unless configured otherwise.
const DefaultSchema = "content"

// DB is the content-database source: simple-content's own repository (its
// Postgres repository in production, the memory one in tests), listed
// through its admin service. Tenant, owner, status, originals-only and the
// creation window are filtered by the database; MIME type and results per
// content from the batch's metadata and derived contents, read in a few
// queries per batch.
//
// The order is (created_at, id) ascending. The admin listing orders by
// created_at alone and pages by offset, so DB reads whole groups of equal
// created_at and sorts them by id itself: a position is (created_at, id),
// stable under inserts and deletes elsewhere, and a checkpoint can name
// it. (simple-content's scan package pages by offset from the start, so it
// cannot resume, and skips or repeats rows when the table changes.)
type DB struct {
	repo  simplecontent.Repository
	admin admin.AdminService
	// Page is how many rows one listing query reads (default 500).
	Page int
}

// NewDB returns the source over repo.
func NewDB(repo simplecontent.Repository) *DB {
	return &DB{repo: repo, admin: admin.New(repo), Page: 500}
}

// OpenPostgres connects to simple-content's database at url, with its
// tables in schema (DefaultSchema when empty) unless the URL sets a
// search_path itself. close releases the connections.
func OpenPostgres(ctx context.Context, url, schema string) (src *DB, closeFn func(), err error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, nil, fmt.Errorf("database url: %w", err)
	}
	if schema == "" {
		schema = DefaultSchema
	}
	if _, set := cfg.ConnConfig.RuntimeParams["search_path"]; !set {
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the content database: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("connect to the content database: %w", err)
	}
	var n int
	if err := pool.QueryRow(pctx, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'content' AND table_schema = ANY(current_schemas(false))").Scan(&n); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("content database: %w", err)
	}
	if n == 0 {
		pool.Close()
		return nil, nil, fmt.Errorf("content database: no table content in the search_path %q: set DATABASE_SCHEMA (or search_path in the URL) to simple-content's schema", cfg.ConnConfig.RuntimeParams["search_path"])
	}
	return NewDB(repopg.NewWithPool(pool)), pool.Close, nil
}

// Describe names the source for the checkpoint's fingerprint.
func (d *DB) Describe() string { return "database" }

// filters are the parts of f the database applies: the upper creation
// bound inclusive (the exact bound is applied afterwards).
func (d *DB) filters(f Filter) (admin.ContentFilters, error) {
	var af admin.ContentFilters
	parse := func(flag string, in []string) ([]uuid.UUID, error) {
		var out []uuid.UUID
		for _, s := range in {
			u, err := uuid.Parse(s)
			if err != nil {
				return nil, fmt.Errorf("%s %q is not a UUID", flag, s)
			}
			out = append(out, u)
		}
		return out, nil
	}
	var err error
	if af.TenantIDs, err = parse("--tenant", f.Tenants); err != nil {
		return af, err
	}
	if af.OwnerIDs, err = parse("--owner", f.Owners); err != nil {
		return af, err
	}
	af.Statuses = f.Statuses
	original := ""
	af.DerivationType = &original
	if !f.CreatedBefore.IsZero() {
		b := f.CreatedBefore
		af.CreatedBefore = &b
	}
	by, order := "created_at", "ASC"
	af.SortBy, af.SortOrder = &by, &order
	return af, nil
}

// Total counts the contents after `after` the database selects (MIME
// type and results are not counted in: an upper bound).
func (d *DB) Total(ctx context.Context, f Filter, after Cursor) (int64, error) {
	f = f.withDefaults()
	af, err := d.filters(f)
	if err != nil {
		return 0, err
	}
	from := f.CreatedAfter
	if after.CreatedAt.After(from) {
		from = after.CreatedAt
	}
	if !from.IsZero() {
		af.CreatedAfter = &from
	}
	resp, err := d.admin.CountContents(ctx, admin.CountRequest{Filters: af})
	if err != nil {
		return 0, fmt.Errorf("count contents: %w", err)
	}
	return resp.Count, nil
}

// Next returns up to n items after `after`, in (created_at, id) order.
// Fewer than n (none at the end) means the source is exhausted.
func (d *DB) Next(ctx context.Context, f Filter, after Cursor, n int) ([]Item, error) {
	f = f.withDefaults()
	af, err := d.filters(f)
	if err != nil {
		return nil, err
	}
	var rows []*simplecontent.Content
	c := after
	for len(rows) < n {
		more, err := d.after(ctx, af, f, c)
		if err != nil {
			return nil, err
		}
		if len(more) == 0 {
			break
		}
		rows = append(rows, more...)
		last := more[len(more)-1]
		c = Cursor{CreatedAt: last.CreatedAt, ID: last.ID.String()}
	}
	if len(rows) > n {
		rows = rows[:n]
	}
	return d.items(ctx, rows)
}

// after returns a run of rows strictly after c: the rest of c's group of
// equal created_at, or else the next page of whole groups.
func (d *DB) after(ctx context.Context, af admin.ContentFilters, f Filter, c Cursor) ([]*simplecontent.Content, error) {
	from, offset := f.CreatedAfter, 0
	if !c.CreatedAt.IsZero() {
		group, err := d.group(ctx, af, c.CreatedAt)
		if err != nil {
			return nil, err
		}
		var rest []*simplecontent.Content
		for _, r := range group {
			if r.ID.String() > c.ID {
				rest = append(rest, r)
			}
		}
		if len(rest) > 0 {
			return d.bounded(f, rest), nil
		}
		// Rows at c's time come first in the listing: skip the group.
		from, offset = c.CreatedAt, len(group)
	}
	limit := max(d.Page, 2)
	page, err := d.list(ctx, af, from, time.Time{}, offset, limit)
	if err != nil {
		return nil, err
	}
	if len(page) == limit {
		// The last group may be cut off: read it whole, or leave it for
		// the next call when there is something before it.
		last := page[len(page)-1].CreatedAt
		if page[0].CreatedAt.Equal(last) {
			if page, err = d.group(ctx, af, last); err != nil {
				return nil, err
			}
		} else {
			for len(page) > 0 && page[len(page)-1].CreatedAt.Equal(last) {
				page = page[:len(page)-1]
			}
		}
	}
	return d.bounded(f, page), nil
}

// bounded drops rows at or after f.CreatedBefore (the database bound is
// inclusive).
func (d *DB) bounded(f Filter, rows []*simplecontent.Content) []*simplecontent.Content {
	if f.CreatedBefore.IsZero() {
		return rows
	}
	out := rows[:0:0]
	for _, r := range rows {
		if r.CreatedAt.Before(f.CreatedBefore) {
			out = append(out, r)
		}
	}
	return out
}

// group returns every row created exactly at t, sorted by id.
func (d *DB) group(ctx context.Context, af admin.ContentFilters, t time.Time) ([]*simplecontent.Content, error) {
	for limit := max(d.Page, 2); ; limit *= 2 {
		rows, err := d.list(ctx, af, t, t, 0, limit)
		if err != nil || len(rows) < limit {
			return rows, err
		}
	}
}

// list runs one listing query: from <= created_at (<= to when set), by
// created_at, then sorted by id within equal times.
func (d *DB) list(ctx context.Context, af admin.ContentFilters, from, to time.Time, offset, limit int) ([]*simplecontent.Content, error) {
	if !from.IsZero() {
		af.CreatedAfter = &from
	}
	if !to.IsZero() && (af.CreatedBefore == nil || to.Before(*af.CreatedBefore)) {
		af.CreatedBefore = &to
	}
	af.Offset, af.Limit = &offset, &limit
	resp, err := d.admin.ListAllContents(ctx, admin.ListContentsRequest{Filters: af})
	if err != nil {
		return nil, fmt.Errorf("list contents: %w", err)
	}
	rows := resp.Contents
	slices.SortStableFunc(rows, func(a, b *simplecontent.Content) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	return rows, nil
}

// items completes rows with their metadata and ocrflow's live results.
func (d *DB) items(ctx context.Context, rows []*simplecontent.Content) ([]Item, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	metas, err := d.repo.GetContentMetadataByContentIDs(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("content metadata: %w", err)
	}
	derived, err := d.repo.ListDerivedContent(ctx, simplecontent.ListDerivedContentParams{ParentIDs: ids})
	if err != nil {
		return nil, fmt.Errorf("derived contents: %w", err)
	}
	results := map[uuid.UUID][]Result{}
	if len(derived) > 0 {
		childIDs := make([]uuid.UUID, len(derived))
		for i, dc := range derived {
			childIDs[i] = dc.ContentID
		}
		// Only live derived contents count: a deleted result is gone.
		live, err := d.repo.GetContentsByIDs(ctx, childIDs)
		if err != nil {
			return nil, fmt.Errorf("derived contents: %w", err)
		}
		status := make(map[uuid.UUID]string, len(live))
		for _, c := range live {
			status[c.ID] = c.Status
		}
		childMeta, err := d.repo.GetContentMetadataByContentIDs(ctx, childIDs)
		if err != nil {
			return nil, fmt.Errorf("derived content metadata: %w", err)
		}
		for _, dc := range derived {
			st, ok := status[dc.ContentID]
			m := childMeta[dc.ContentID]
			if !ok || m == nil || !isOurs(m.Metadata) {
				continue
			}
			results[dc.ParentID] = append(results[dc.ParentID], resultOf(dc.ContentID.String(), st, m.Metadata))
		}
	}
	items := make([]Item, len(rows))
	for i, r := range rows {
		it := Item{
			ID: r.ID.String(), TenantID: r.TenantID.String(), OwnerID: r.OwnerID.String(), Status: r.Status,
			Name: r.Name, CreatedAt: r.CreatedAt, Derived: r.DerivationType != "", Results: results[r.ID],
			Pos: Cursor{CreatedAt: r.CreatedAt, ID: r.ID.String()},
		}
		if m := metas[r.ID]; m != nil {
			it.Size = m.FileSize
			if m.FileName != "" {
				it.Name = m.FileName
			}
			it.MIME = MIMEOf(m.MimeType, it.Name)
		} else {
			it.MIME = MIMEOf("", it.Name)
		}
		items[i] = it
	}
	return items, nil
}
