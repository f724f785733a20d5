package autoocr_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ocrflow/ocrflow/functions/autoocr"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/job"
)

func upload(t *testing.T, u autoocr.Upload) event.Event {
	t.Helper()
	e := event.New()
	e.SetID("up-1")
	e.SetType("content.uploaded")
	e.SetSource("/platform")
	if err := e.SetData(event.ApplicationJSON, u); err != nil {
		t.Fatal(err)
	}
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := s.Handle(context.Background(), upload(t, tc.u))
			if err != nil {
				t.Fatal(err)
			}
			if (reply != nil) != tc.wantJob {
				t.Fatalf("reply = %v, want a job: %v", reply, tc.wantJob)
			}
			if reply == nil {
				return
			}
			j, err := job.Parse(*reply)
			if err != nil {
				t.Fatalf("the reply is not a valid job: %v", err)
			}
			cid := tc.u.ContentID
			if cid == "" {
				cid = tc.u.ID
			}
			if j.ContentID != cid || j.TenantID != tc.u.TenantID || j.ID != "auto-"+cid {
				t.Fatalf("job = %+v", j)
			}
			if reply.Extensions()[events.ExtUoW] != events.UoW {
				t.Fatal("the job has no uow extension for the convert Trigger")
			}
		})
	}
}

func TestPolicy_defaults_accept_pdfs_and_images_for_every_tenant(t *testing.T) {
	var p autoocr.Policy
	for mt, want := range map[string]bool{"application/pdf": true, "image/jpeg": true, "image/webp": true, "text/plain": false, "": false} {
		if got, _ := p.Accepts(autoocr.Upload{MIMEType: mt, TenantID: "any"}); got != want {
			t.Errorf("Accepts(%q) = %v, want %v", mt, got, want)
		}
	}
}
