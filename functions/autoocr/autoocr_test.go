package autoocr_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/functions/autoocr"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/job"
)

func upload(t *testing.T, u autoocr.Upload) event.Event {
	t.Helper()
	e := event.New()
	e.SetID("up-1")
	e.SetType("content.uploaded")
	e.SetSource("/platform")
	require.NoError(t, e.SetData(event.ApplicationJSON, u))
	return e
}

func TestHandle(t *testing.T) {
	policy := autoocr.Policy{Tenants: []string{"t1", "t2"}, ExcludeTenants: []string{"t2"}}
	s := autoocr.New(policy, slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		name    string
		u       autoocr.Upload
		wantJob bool
	}{
		{"pdf_of_an_enabled_tenant", autoocr.Upload{ContentID: "c1", TenantID: "t1", MIMEType: "application/pdf"}, true},
		{"image_with_parameters", autoocr.Upload{ID: "c2", TenantID: "t1", MIMEType: "image/png; charset=binary"}, true},
		{"excluded_tenant", autoocr.Upload{ContentID: "c3", TenantID: "t2", MIMEType: "application/pdf"}, false},
		{"tenant_not_enabled", autoocr.Upload{ContentID: "c4", TenantID: "t9", MIMEType: "application/pdf"}, false},
		{"unsupported_type", autoocr.Upload{ContentID: "c5", TenantID: "t1", MIMEType: "video/mp4"}, false},
		{"derived_content_is_never_ocred", autoocr.Upload{ContentID: "c6", TenantID: "t1", MIMEType: "text/markdown", DerivationType: "derived"}, false},
		{"no_content_id", autoocr.Upload{TenantID: "t1", MIMEType: "application/pdf"}, false},
		{"content_id_that_cannot_name_a_job", autoocr.Upload{ContentID: "a/b c", TenantID: "t1", MIMEType: "application/pdf"}, false},
		{"original_content_is_ocred", autoocr.Upload{ContentID: "c7", TenantID: "t1", MIMEType: "application/pdf", DerivationType: "original"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := s.Handle(context.Background(), upload(t, tc.u))
			require.NoError(t, err)
			require.Equal(t, tc.wantJob, reply != nil, "reply = %v, want a job: %v", reply, tc.wantJob)
			if reply == nil {
				return
			}
			j, err := job.Parse(*reply)
			require.NoError(t, err, "the reply is not a valid job")
			cid := tc.u.ContentID
			if cid == "" {
				cid = tc.u.ID
			}
			assert.Equal(t, cid, j.ContentID, "job = %+v", j)
			assert.Equal(t, tc.u.TenantID, j.TenantID, "job = %+v", j)
			assert.Equal(t, "auto-"+cid, j.ID, "job = %+v", j)
			assert.Equal(t, events.UoW, reply.Extensions()[events.ExtUoW], "the job has no uow extension for the convert Trigger")
		})
	}
}

func TestPolicy_defaults_accept_pdfs_and_images_for_every_tenant(t *testing.T) {
	var p autoocr.Policy
	for mt, want := range map[string]bool{"application/pdf": true, "image/jpeg": true, "image/webp": true, "text/plain": false, "": false} {
		got, _ := p.Accepts(autoocr.Upload{MIMEType: mt, TenantID: "any"})
		assert.Equal(t, want, got, "Accepts(%q)", mt)
	}
}

// TestHandle_same_upload_makes_the_same_job: the job id derives from the
// content id, so a redelivered upload event makes the same job.
func TestHandle_same_upload_makes_the_same_job(t *testing.T) {
	s := autoocr.New(autoocr.Policy{}, slog.New(slog.DiscardHandler))
	u := autoocr.Upload{ContentID: "c1", TenantID: "t1", OwnerID: "o1", MIMEType: "image/png", FileName: "scan.png"}
	first, err := s.Handle(context.Background(), upload(t, u))
	require.NoError(t, err)
	require.NotNil(t, first)
	second, err := s.Handle(context.Background(), upload(t, u))
	require.NoError(t, err)
	require.NotNil(t, second)
	assert.Equal(t, first.ID(), second.ID())
	j, err := job.Parse(*first)
	require.NoError(t, err)
	assert.Equal(t, "o1", j.OwnerID)
	assert.Equal(t, "scan.png", j.Name)
	assert.Equal(t, autoocr.Source, first.Source())
}

// TestHandle_undecodable_upload_is_a_permanent_error: an upload event
// whose data is not JSON is not retried.
func TestHandle_undecodable_upload_is_a_permanent_error(t *testing.T) {
	s := autoocr.New(autoocr.Policy{}, slog.New(slog.DiscardHandler))
	e := upload(t, autoocr.Upload{ContentID: "c1"})
	e.DataEncoded = []byte("{not json")
	reply, err := s.Handle(context.Background(), e)
	assert.Nil(t, reply)
	require.ErrorIs(t, err, failure.ErrPermanent)
}

func TestPolicy_wildcard_tenant_enables_every_tenant_but_the_excluded(t *testing.T) {
	p := autoocr.Policy{Tenants: []string{"*"}, ExcludeTenants: []string{"off"}}
	for tenant, want := range map[string]bool{"any": true, "other": true, "off": false} {
		got, why := p.Accepts(autoocr.Upload{MIMEType: "application/pdf", TenantID: tenant})
		assert.Equal(t, want, got, "tenant %q (%s)", tenant, why)
	}
}
