package backfilltest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/tendant/simple-content/pkg/simplecontent"

	ocrsc "github.com/ocrflow/ocrflow/shared/simplecontent"
)

// Fixture data: three tenants, four owners, and the MIME types a content
// database holds — what ocrflow reads and what it does not.
var (
	Tenants = []string{
		"aaaaaaaa-0000-4000-8000-000000000001",
		"bbbbbbbb-0000-4000-8000-000000000002",
		"cccccccc-0000-4000-8000-000000000003",
	}
	Owners = []string{
		"0a000000-0000-4000-8000-0000000000a1",
		"0b000000-0000-4000-8000-0000000000b2",
		"0c000000-0000-4000-8000-0000000000c3",
		"0d000000-0000-4000-8000-0000000000d4",
	}
	// MIMEs: the last one is empty — a content whose type is only in its
	// file name (.pdf).
	MIMEs = []string{
		"application/pdf", "image/png", "image/jpeg",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		"application/vnd.openxmlformats-officedocument.presentationml.presentation",
		"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		"text/plain", "video/mp4", "",
	}
)

// Base is the creation time of the first seeded content; content i is
// created Step later than content i-1, except the tie groups.
var (
	Base = time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)
	Step = 13 * time.Hour
)

// Seeded is one original content the fixture created.
type Seeded struct {
	I       int
	ID      string
	Tenant  string
	Owner   string
	MIME    string // as recorded ("" for the file-name-only one)
	Name    string
	Status  string
	Size    int64
	Created time.Time
	Deleted bool
	// Current and Old: it has a live completed ocrflow result with the
	// current key, with an older model's key.
	Current, Old bool
}

// Fixture is what Seed created.
type Fixture struct {
	Contents []Seeded
	// Derived are the ids of every derived content (ocrflow results and
	// thumbnails): never selected.
	Derived []string
	// Thumbnails are the live derived contents that are not ocrflow's.
	Thumbnails []string
	// DeletedResults are the ocrflow results deleted since.
	DeletedResults []string
}

// ByID returns the seeded content with id.
func (f Fixture) ByID(id string) (Seeded, bool) {
	for _, c := range f.Contents {
		if c.ID == id {
			return c, true
		}
	}
	return Seeded{}, false
}

// IDs returns the ids of the contents keep selects, in (created_at, id)
// order.
func (f Fixture) IDs(keep func(Seeded) bool) []string {
	var out []string
	for _, c := range f.Contents {
		if keep(c) {
			out = append(out, c.ID)
		}
	}
	return out
}

// ContentID is the deterministic id of fixture content i.
func ContentID(i int) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "ocrflow-backfill-content-%d", i)).String()
}

// Seed creates n original contents in repo through the repository, as
// simple-content stores them: content rows with chosen creation times and
// statuses (some soft-deleted), their metadata, and derived contents —
// ocrflow results marked with ocrflow's metadata (generator, variant,
// idempotency_key, state) in every state, made with the current key
// (current(id)) or an older model's (old(id)), some deleted, and
// thumbnails. What content i gets follows from i:
//
//   - tenant i%3, owner (i/3)%4, MIME type i%9 (of MIMEs), size 1000+(i*7919)%900000;
//   - status created (i%10==7), processing (i%10==8), failed (i%23==0),
//     archived (i%31==0), else uploaded; soft-deleted when i%37==5;
//   - created Base+i*Step, except i in [100,115) and [200,204): two
//     groups with one creation time each;
//   - results by i%6: 1 current; 2 old; 3 old and current; 4 a failed and
//     a processing current one; 5 a superseded current and an old one;
//     0 a deleted current one when i%12==0, else none;
//   - a thumbnail (derived, image/png, uploaded) when i%5==0.
func Seed(t testing.TB, repo simplecontent.Repository, n int, current, old func(string) string) Fixture {
	t.Helper()
	ctx := context.Background()
	var fx Fixture
	for i := range n {
		s := Seeded{
			I: i, ID: ContentID(i), Tenant: Tenants[i%3], Owner: Owners[(i/3)%4], MIME: MIMEs[i%9],
			Size: int64(1000 + (i*7919)%900000), Status: ocrsc.StatusUploaded, Created: Base.Add(time.Duration(i) * Step),
			Deleted: i%37 == 5,
		}
		s.Name = fmt.Sprintf("doc-%03d%s", i, ext(s.MIME))
		switch {
		case i%10 == 7:
			s.Status = ocrsc.StatusCreated
		case i%10 == 8:
			s.Status = ocrsc.StatusProcessing
		case i%23 == 0:
			s.Status = ocrsc.StatusFailed
		case i%31 == 0:
			s.Status = "archived"
		}
		switch {
		case i >= 100 && i < 115:
			s.Created = Base.Add(100 * Step)
		case i >= 200 && i < 204:
			s.Created = Base.Add(200 * Step)
		}
		put(t, repo, s.ID, "", s.Tenant, s.Owner, s.Status, s.Created, s.Name, s.MIME, s.Size, nil)
		type result struct {
			key, state, status string
			deleted            bool
		}
		var rs []result
		cur, prev := current(s.ID), old(s.ID)
		done := func(k string) result {
			return result{k, ocrsc.StateCompleted, ocrsc.StatusUploaded, false}
		}
		switch i % 6 {
		case 1:
			rs = []result{done(cur)}
			s.Current = true
		case 2:
			rs = []result{done(prev)}
			s.Old = true
		case 3:
			rs = []result{done(prev), done(cur)}
			s.Current, s.Old = true, true
		case 4:
			rs = []result{{cur, ocrsc.StateFailed, ocrsc.StatusUploaded, false}, {cur, ocrsc.StateProcessing, ocrsc.StatusProcessing, false}}
		case 5:
			rs = []result{{cur, ocrsc.StateSuperseded, ocrsc.StatusUploaded, false}, done(prev)}
			s.Old = true
		case 0:
			if i%12 == 0 {
				rs = []result{{cur, ocrsc.StateCompleted, ocrsc.StatusUploaded, true}}
			}
		}
		for j, r := range rs {
			id := uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "%s/result-%d", s.ID, j)).String()
			meta := map[string]any{
				ocrsc.MetaGenerator: ocrsc.Generator, ocrsc.MetaVariant: ocrsc.DerivationType,
				ocrsc.MetaIdempotencyKey: r.key, ocrsc.MetaState: r.state, ocrsc.MetaJobID: "job-" + id[:8],
			}
			put(t, repo, id, ocrsc.DerivationType, s.Tenant, s.Owner, r.status, s.Created.Add(time.Hour), "result.md", ocrsc.MarkdownType, 100, meta)
			derive(t, repo, s.ID, id, ocrsc.DerivationType, ocrsc.DerivationType, meta)
			if r.deleted {
				require.NoError(t, repo.DeleteContent(ctx, uuid.MustParse(id)))
				fx.DeletedResults = append(fx.DeletedResults, id)
			}
			fx.Derived = append(fx.Derived, id)
		}
		if i%5 == 0 {
			id := uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "%s/thumbnail", s.ID)).String()
			put(t, repo, id, "thumbnail", s.Tenant, s.Owner, ocrsc.StatusUploaded, s.Created.Add(time.Minute), "thumb.png", "image/png", 2000, map[string]any{})
			derive(t, repo, s.ID, id, "thumbnail", "thumbnail_256", map[string]any{})
			fx.Derived = append(fx.Derived, id)
			fx.Thumbnails = append(fx.Thumbnails, id)
		}
		if s.Deleted {
			require.NoError(t, repo.DeleteContent(ctx, uuid.MustParse(s.ID)))
		}
		fx.Contents = append(fx.Contents, s)
	}
	return fx
}

func ext(mime string) string {
	switch mime {
	case "application/pdf", "":
		return ".pdf"
	case "image/png":
		return ".png"
	case "image/jpeg":
		return ".jpg"
	case "text/plain":
		return ".txt"
	case "video/mp4":
		return ".mp4"
	}
	return ".bin"
}

// put creates a content and its metadata.
func put(t testing.TB, repo simplecontent.Repository, id, derivation, tenant, owner, status string, created time.Time, name, mime string, size int64, meta map[string]any) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, repo.CreateContent(ctx, &simplecontent.Content{
		ID: uuid.MustParse(id), TenantID: uuid.MustParse(tenant), OwnerID: uuid.MustParse(owner), OwnerType: "user",
		Name: name, DocumentType: "document", Status: status, DerivationType: derivation, CreatedAt: created, UpdatedAt: created,
	}))
	require.NoError(t, repo.SetContentMetadata(ctx, &simplecontent.ContentMetadata{
		ContentID: uuid.MustParse(id), FileName: name, MimeType: mime, FileSize: size, Metadata: meta,
	}))
}

// derive links a derived content to its parent.
func derive(t testing.TB, repo simplecontent.Repository, parent, child, typ, variant string, params map[string]any) {
	t.Helper()
	_, err := repo.CreateDerivedContentRelationship(context.Background(), simplecontent.CreateDerivedContentParams{
		ParentID: uuid.MustParse(parent), DerivedContentID: uuid.MustParse(child), DerivationType: typ, Variant: variant, DerivationParams: params,
	})
	require.NoError(t, err)
}
