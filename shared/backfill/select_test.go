package backfill_test

import (
	"bytes"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tendant/simple-content/pkg/simplecontent/repo/memory"

	"github.com/ocrflow/ocrflow/shared/backfill"
	"github.com/ocrflow/ocrflow/shared/backfill/backfilltest"
	"github.com/ocrflow/ocrflow/shared/content"
	ocrsc "github.com/ocrflow/ocrflow/shared/simplecontent"
)

func httpClient() *http.Client {
	return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 30 * time.Second}
}

// What the fixture's contents are, independently of the code under test.
var (
	readableTypes = []string{"application/pdf", "image/png", "image/jpeg", backfill.MIMEDocx, backfill.MIMEPptx, backfill.MIMEXlsx}
	// typeOf is the type a content has: the recorded one, or its name's.
	typeOf   = func(c backfilltest.Seeded) string { return cmp(c.MIME, "application/pdf") }
	readable = func(c backfilltest.Seeded) bool { return slices.Contains(readableTypes, typeOf(c)) }
	uploaded = func(c backfilltest.Seeded) bool { return !c.Deleted && c.Status == ocrsc.StatusUploaded }
	// fresh: no live completed result with the current key.
	fresh = func(c backfilltest.Seeded) bool { return !c.Current }
)

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// filterCases are the selections every source must make exactly.
func filterCases() []struct {
	name   string
	filter backfill.Filter
	want   func(backfilltest.Seeded) bool
} {
	t1, t3 := backfilltest.Tenants[0], backfilltest.Tenants[2]
	o1, o3 := backfilltest.Owners[0], backfilltest.Owners[2]
	at := func(i int) time.Time { return backfilltest.Base.Add(time.Duration(i) * backfilltest.Step) }
	return []struct {
		name   string
		filter backfill.Filter
		want   func(backfilltest.Seeded) bool
	}{
		{"defaults_select_uploaded_readable_originals_without_a_current_result", backfill.Filter{MissingOCR: true},
			func(c backfilltest.Seeded) bool { return uploaded(c) && readable(c) && fresh(c) }},
		{"missing_ocr_off_selects_those_with_a_current_result_too", backfill.Filter{},
			func(c backfilltest.Seeded) bool { return uploaded(c) && readable(c) }},
		{"stale_selects_only_content_ocrd_by_another_model", backfill.Filter{MissingOCR: true, Stale: true},
			func(c backfilltest.Seeded) bool { return uploaded(c) && readable(c) && c.Old && !c.Current }},
		{"one_tenant", backfill.Filter{MissingOCR: true, Tenants: []string{t1}},
			func(c backfilltest.Seeded) bool { return uploaded(c) && readable(c) && fresh(c) && c.Tenant == t1 }},
		{"tenant_in_upper_case", backfill.Filter{MissingOCR: true, Tenants: []string{strings.ToUpper(t3)}},
			func(c backfilltest.Seeded) bool { return uploaded(c) && readable(c) && fresh(c) && c.Tenant == t3 }},
		{"two_owners", backfill.Filter{MissingOCR: true, Owners: []string{o1, o3}},
			func(c backfilltest.Seeded) bool {
				return uploaded(c) && readable(c) && fresh(c) && (c.Owner == o1 || c.Owner == o3)
			}},
		{"images_only", backfill.Filter{MissingOCR: true, MIME: []string{"image/*"}},
			func(c backfilltest.Seeded) bool {
				return uploaded(c) && fresh(c) && strings.HasPrefix(c.MIME, "image/")
			}},
		{"pdf_includes_the_type_named_by_the_file_name", backfill.Filter{MissingOCR: true, MIME: []string{"application/pdf"}},
			func(c backfilltest.Seeded) bool { return uploaded(c) && fresh(c) && typeOf(c) == "application/pdf" }},
		{"ooxml_types", backfill.Filter{MissingOCR: true, MIME: []string{backfill.MIMEDocx, backfill.MIMEXlsx}},
			func(c backfilltest.Seeded) bool {
				return uploaded(c) && fresh(c) && (c.MIME == backfill.MIMEDocx || c.MIME == backfill.MIMEXlsx)
			}},
		{"every_type", backfill.Filter{MissingOCR: true, MIME: []string{"*"}},
			func(c backfilltest.Seeded) bool { return uploaded(c) && fresh(c) }},
		{"created_window_is_half_open", backfill.Filter{MissingOCR: true, CreatedAfter: at(50), CreatedBefore: at(100)},
			func(c backfilltest.Seeded) bool {
				return uploaded(c) && readable(c) && fresh(c) && !c.Created.Before(at(50)) && c.Created.Before(at(100))
			}},
		{"window_starting_at_a_group_of_equal_times", backfill.Filter{MissingOCR: true, CreatedAfter: at(100), CreatedBefore: at(120)},
			func(c backfilltest.Seeded) bool {
				return uploaded(c) && readable(c) && fresh(c) && c.I >= 100 && c.I < 120
			}},
		{"status_created", backfill.Filter{MissingOCR: true, Statuses: []string{ocrsc.StatusCreated}},
			func(c backfilltest.Seeded) bool {
				return !c.Deleted && c.Status == ocrsc.StatusCreated && readable(c) && fresh(c)
			}},
		{"uploaded_or_archived", backfill.Filter{MissingOCR: true, Statuses: []string{"uploaded", "archived"}},
			func(c backfilltest.Seeded) bool {
				return !c.Deleted && (c.Status == "uploaded" || c.Status == "archived") && readable(c) && fresh(c)
			}},
		{"tenant_images_stale_in_a_window", backfill.Filter{
			MissingOCR: true, Stale: true, Tenants: []string{t3}, MIME: []string{"image/*", "application/pdf"},
			CreatedAfter: at(10), CreatedBefore: at(250),
		}, func(c backfilltest.Seeded) bool {
			return uploaded(c) && c.Tenant == t3 && (strings.HasPrefix(c.MIME, "image/") || typeOf(c) == "application/pdf") &&
				c.Old && !c.Current && !c.Created.Before(at(10)) && c.Created.Before(at(250))
		}},
	}
}

// TestSelection runs every filter over the fixture through each source —
// the database source on the memory and the Postgres repository, and the
// id-list source through the v5 API — and checks that exactly the
// expected contents are selected.
func TestSelection(t *testing.T) {
	const n = 300
	for _, rk := range repos(t) {
		t.Run(rk.name, func(t *testing.T) {
			repo := rk.open(t)
			fx := backfilltest.Seed(t, repo, n, currentKey, oldKey)
			db := rk.db(t, repo)
			db.Page = 9 // smaller than the groups of equal creation time
			srv := backfilltest.StartContent(t, repo)
			var all []string
			for _, c := range fx.Contents {
				all = append(all, c.ID)
			}
			all = append(all, fx.Derived...)
			list := idsFile(t, append(all, "11111111-2222-4333-8444-555555555555", "not-a-content-id"))
			for _, tc := range filterCases() {
				want := fx.IDs(tc.want)
				require.NotEmpty(t, want, "case %s selects nothing: the fixture does not exercise it", tc.name)
				t.Run(tc.name+"/database", func(t *testing.T) {
					got, sum := dryRun(t, db, tc.filter, currentKey, 7)
					assert.ElementsMatch(t, want, got)
					assert.Equal(t, int64(len(want)), sum.Selected)
				})
				t.Run(tc.name+"/ids", func(t *testing.T) {
					if rk.name != "memory" && tc.name != filterCases()[0].name {
						t.Skip("the id list goes through the same v5 handlers on either repository: one case on Postgres is enough")
					}
					ids, err := backfill.NewIDs(client(t, srv), list)
					require.NoError(t, err)
					defer func() { assert.NoError(t, ids.Close()) }()
					got, sum := dryRun(t, ids, tc.filter, currentKey, 25)
					assert.ElementsMatch(t, want, got)
					assert.Equal(t, int64(len(all)+2), sum.Scanned, "every listed id is scanned")
					assert.Equal(t, int64(len(fx.Derived)-len(fx.DeletedResults)), sum.Skipped[backfill.ReasonDerived], "derived contents are never selected")
					assert.Equal(t, int64(1), sum.Skipped[backfill.ReasonInvalidID])
					assert.Zero(t, sum.Failed)
				})
			}
		})
	}
}

// TestDB_order_is_created_at_then_id checks the database source's order
// and positions: every live original once, by (created_at, id), also
// through groups of equal creation time larger than a page and a batch,
// and from a position in the middle of such a group.
func TestDB_order_is_created_at_then_id(t *testing.T) {
	every := backfill.Filter{MIME: []string{"*"}, Statuses: []string{"uploaded", "created", "processing", "failed", "archived"}}
	for _, rk := range repos(t) {
		t.Run(rk.name, func(t *testing.T) {
			repo := rk.open(t)
			fx := backfilltest.Seed(t, repo, 240, currentKey, oldKey)
			live := slices.DeleteFunc(slices.Clone(fx.Contents), func(c backfilltest.Seeded) bool { return c.Deleted })
			slices.SortFunc(live, func(a, b backfilltest.Seeded) int {
				if c := a.Created.Compare(b.Created); c != 0 {
					return c
				}
				return strings.Compare(a.ID, b.ID)
			})
			var want []string
			for _, c := range live {
				want = append(want, c.ID)
			}
			db := rk.db(t, repo)
			for _, tc := range []struct {
				name        string
				page, batch int
				from        int // start after want[from-1]
			}{
				{"pages_smaller_than_a_group", 4, 3, 0},
				{"one_row_a_page", 2, 1, 0},
				{"large_pages", 500, 50, 0},
				{"from_inside_a_group", 4, 5, slices.Index(want, fx.Contents[105].ID) + 1},
			} {
				t.Run(tc.name, func(t *testing.T) {
					db.Page = tc.page
					var after backfill.Cursor
					if tc.from > 0 {
						c, _ := fx.ByID(want[tc.from-1])
						after = backfill.Cursor{CreatedAt: c.Created, ID: c.ID}
					}
					var got []string
					for range len(want) + 1 {
						items, err := db.Next(t.Context(), every, after, tc.batch)
						require.NoError(t, err)
						for _, it := range items {
							got = append(got, it.ID)
						}
						if len(items) < tc.batch {
							break
						}
						after = items[len(items)-1].Pos
					}
					assert.Equal(t, want[tc.from:], got)
				})
			}
		})
	}
}

// TestResults_written_by_the_pipeline_are_recognised stores a result the
// way the pipeline does (shared/simplecontent's Store over the v5 API) and
// checks that both sources read it back: skipped while the model is the
// same, selected by --stale once the model changed.
func TestResults_written_by_the_pipeline_are_recognised(t *testing.T) {
	repo := memory.New()
	srv := backfilltest.StartContent(t, repo)
	api := client(t, srv)
	doc := []byte("%PDF-1.4 not really")
	id, err := api.UploadFile(t.Context(), ocrsc.NewFile{
		OwnerID: backfilltest.Owners[0], OwnerType: "user", TenantID: backfilltest.Tenants[0],
		FileName: "scan.pdf", MimeType: "application/pdf", DocumentType: "document",
	}, bytes.NewReader(doc), int64(len(doc)))
	require.NoError(t, err)
	never, err := api.UploadFile(t.Context(), ocrsc.NewFile{
		OwnerID: backfilltest.Owners[0], OwnerType: "user", TenantID: backfilltest.Tenants[0],
		FileName: "never.png", MimeType: "image/png", DocumentType: "document",
	}, bytes.NewReader(doc), int64(len(doc)))
	require.NoError(t, err)
	store, err := ocrsc.NewStore(ocrsc.StoreConfig{Client: api})
	require.NoError(t, err)
	_, err = store.Store(t.Context(), content.Result{
		JobID: "job-1", ContentID: id, SourceName: "scan.pdf", Markdown: []byte("# Scan\n"), IdempotencyKey: currentKey(id),
	})
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		key    func(string) string
		filter backfill.Filter
		want   []string
		reason string // why the OCR'd content is skipped
	}{
		{"same_model_skips_it", currentKey, backfill.Filter{MissingOCR: true}, []string{never}, backfill.ReasonHasOCR},
		{"new_model_selects_it_with_the_never_ocrd", newerKey, backfill.Filter{MissingOCR: true}, []string{id, never}, ""},
		{"stale_selects_only_it_after_a_model_change", newerKey, backfill.Filter{MissingOCR: true, Stale: true}, []string{id}, ""},
		{"stale_selects_nothing_before_a_model_change", currentKey, backfill.Filter{MissingOCR: true, Stale: true}, nil, backfill.ReasonHasOCR},
	} {
		t.Run(tc.name+"/database", func(t *testing.T) {
			got, sum := dryRun(t, backfill.NewDB(repo), tc.filter, tc.key, 10)
			assert.ElementsMatch(t, tc.want, got)
			if tc.reason != "" {
				assert.Equal(t, int64(1), sum.Skipped[tc.reason], "skipped: %v", sum.Skipped)
			}
		})
		t.Run(tc.name+"/ids", func(t *testing.T) {
			ids, err := backfill.NewIDs(api, idsFile(t, []string{id, never}))
			require.NoError(t, err)
			defer func() { assert.NoError(t, ids.Close()) }()
			got, sum := dryRun(t, ids, tc.filter, tc.key, 10)
			assert.ElementsMatch(t, tc.want, got)
			if tc.reason != "" {
				assert.Equal(t, int64(1), sum.Skipped[tc.reason], "skipped: %v", sum.Skipped)
			}
		})
	}
}

// TestIDs_source_reasons checks what the id list reports for ids it
// cannot submit, and that it resumes at a line.
func TestIDs_source_reasons(t *testing.T) {
	repo := memory.New()
	fx := backfilltest.Seed(t, repo, 40, currentKey, oldKey)
	srv := backfilltest.StartContent(t, repo)
	api := client(t, srv)
	var pickable []backfilltest.Seeded
	for _, c := range fx.Contents {
		if uploaded(c) && fresh(c) && readable(c) {
			pickable = append(pickable, c)
		}
	}
	require.GreaterOrEqual(t, len(pickable), 2)
	ok, upper := pickable[0], pickable[1]
	deleted := fx.Contents[5]
	require.True(t, deleted.Deleted)
	list := idsFile(t, []string{ok.ID, fx.Thumbnails[0], "99999999-0000-4000-8000-000000000000", "nope", deleted.ID, strings.ToUpper(upper.ID)})
	ids, err := backfill.NewIDs(api, list)
	require.NoError(t, err)
	defer func() { assert.NoError(t, ids.Close()) }()
	got, sum := dryRun(t, ids, backfill.Filter{MissingOCR: true}, currentKey, 2)
	assert.Equal(t, []string{ok.ID, upper.ID}, got, "selected, in list order, upper-case ids normalised")
	assert.Equal(t, int64(1), sum.Skipped[backfill.ReasonDerived], "a thumbnail's id")
	assert.Equal(t, int64(2), sum.Skipped[backfill.ReasonNotFound], "an unknown and a deleted id")
	assert.Equal(t, int64(1), sum.Skipped[backfill.ReasonInvalidID])

	items, err := ids.Next(t.Context(), backfill.Filter{}, backfill.Cursor{}, 2)
	require.NoError(t, err)
	require.Len(t, items, 2)
	rest, err := ids.Next(t.Context(), backfill.Filter{}, items[1].Pos, 10)
	require.NoError(t, err)
	var restIDs []string
	for _, it := range rest {
		restIDs = append(restIDs, it.ID)
	}
	assert.Equal(t, []string{"99999999-0000-4000-8000-000000000000", "nope", deleted.ID, upper.ID}, restIDs, "resumed after the second id")
}

// TestEstimator_is_calibrated_on_testdata checks the page estimate on the
// samples it was calibrated with: the scanned PDFs and the picture-led
// DOCX (their real page counts), and images.
func TestEstimator_is_calibrated_on_testdata(t *testing.T) {
	var e backfill.Estimator
	for _, tc := range []struct {
		file  string
		mime  string
		pages int64
	}{
		{"scanned.pdf", "application/pdf", 2},
		{"scanned_ocrlayer.pdf", "application/pdf", 1},
		{"office/scan.docx", backfill.MIMEDocx, 2},
		{"page.png", "image/png", 1},
		{"page.jpg", "image/jpeg", 1},
	} {
		t.Run(strings.ReplaceAll(tc.file, "/", "_"), func(t *testing.T) {
			size := fileSize(t, "../../testdata/"+tc.file)
			assert.Equal(t, tc.pages, e.Pages(tc.mime, size))
		})
	}
	assert.Equal(t, int64(1), e.Pages("application/pdf", 10), "at least one page")
	assert.Equal(t, int64(1), e.Pages("text/plain", 1<<30), "other types count one page")
	assert.Equal(t, int64(1), e.Pages(backfill.MIMEXlsx, 1<<30), "a spreadsheet is read as text")
}

// TestDryRun_numbers_match_the_data checks a dry run's counts, bytes,
// pages and GPU hours against the fixture, and that it claims and sends
// nothing; a job claimed before is left out.
func TestDryRun_numbers_match_the_data(t *testing.T) {
	repo := memory.New()
	fx := backfilltest.Seed(t, repo, 300, currentKey, oldKey)
	sel := fx.IDs(func(c backfilltest.Seeded) bool { return uploaded(c) && readable(c) && fresh(c) })
	require.Greater(t, len(sel), 50)
	scr := newScratch()
	claimed := sel[7]
	require.NoError(t, claim(t, scr, backfill.JobID(claimed, currentKey(claimed))))
	before := scr.Len()

	sum, err := backfill.Run(t.Context(), backfill.Config{
		Source: backfill.NewDB(repo), Filter: backfill.Filter{MissingOCR: true}, Key: currentKey, DryRun: true, Scratch: scr,
		Estimator: backfill.Estimator{PagesPerSecond: 2},
	})
	require.NoError(t, err)
	require.NotNil(t, sum.Estimate)
	est := *sum.Estimate

	pagesOf := func(c backfilltest.Seeded) int64 {
		switch typ := typeOf(c); {
		case strings.HasPrefix(typ, "image/"):
			return 1
		case typ == "application/pdf":
			return max(1, int64(math.Round(float64(c.Size)/(150*1024))))
		case typ == backfill.MIMEXlsx: // data, read as text
			return 1
		default: // DOCX, PPTX
			return max(1, int64(math.Round(float64(c.Size)/(40*1024))))
		}
	}
	var docs, bytes, pages int64
	byMIME, byTenant := map[string]int64{}, map[string]int64{}
	for _, id := range sel {
		if id == claimed {
			continue
		}
		c, _ := fx.ByID(id)
		docs++
		bytes += c.Size
		pages += pagesOf(c)
		byMIME[typeOf(c)]++
		byTenant[c.Tenant]++
	}
	assert.Equal(t, docs, est.Documents)
	assert.Equal(t, bytes, est.Bytes)
	assert.Equal(t, pages, est.Pages)
	assert.InDelta(t, float64(pages)/2/3600, est.GPUHours, 1e-9)
	for m, n := range byMIME {
		assert.Equal(t, n, est.ByMIME[m].Documents, "documents of %s", m)
	}
	assert.Len(t, est.ByMIME, len(byMIME))
	for tn, n := range byTenant {
		assert.Equal(t, n, est.ByTenant[tn].Documents, "documents of tenant %s", tn)
	}
	assert.Equal(t, int64(len(sel)), sum.Selected)
	assert.Equal(t, int64(1), sum.Skipped[backfill.ReasonSubmitted], "the job claimed before")
	assert.Zero(t, sum.Submitted)
	assert.Equal(t, before, scr.Len(), "a dry run claims nothing")
}
