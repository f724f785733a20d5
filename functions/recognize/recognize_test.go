package recognize_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ocrflow/ocrflow/functions/recognize"
	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/events"
	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// engineFunc is an engine made of a function.
type engineFunc func(ctx context.Context, p engine.Page) (engine.Result, error)

func (f engineFunc) Name() string { return "vllm" }

func (f engineFunc) Recognize(ctx context.Context, p engine.Page) (engine.Result, error) {
	return f(ctx, p)
}

func TestHandle_records_what_the_engine_reports(t *testing.T) {
	blocks := []engine.Block{{Label: "title", Boxes: [][4]int{{1, 2, 3, 4}}, Text: "# T", Start: 0, End: 3}}
	for _, tc := range []struct {
		name       string
		hint       string
		eng        engineFunc
		wantStatus events.PageStatus
		wantEngine string
		wantReason string // prefix
		wantRaw    string
		wantErr    error
		wantSide   bool
	}{
		{
			name: "blocks_go_to_the_sidecar",
			eng: func(context.Context, engine.Page) (engine.Result, error) {
				return engine.Result{Markdown: "# T", Raw: "<|ref|>title…", Blocks: blocks}, nil
			},
			wantStatus: events.PageOK, wantEngine: "vllm", wantRaw: "<|ref|>title…", wantSide: true,
		},
		{
			name: "mode_hint_reaches_the_engine", hint: "tiny",
			eng: func(_ context.Context, p engine.Page) (engine.Result, error) {
				if p.Mode != "tiny" {
					return engine.Result{}, failure.Permanent("mode %q", p.Mode)
				}
				return engine.Result{Markdown: "x"}, nil
			},
			wantStatus: events.PageOK, wantEngine: "vllm",
		},
		{
			name: "fallback_engine_is_recorded",
			eng: func(context.Context, engine.Page) (engine.Result, error) {
				return engine.Result{Markdown: "x", Engine: "tesseract", Meta: map[string]string{"fallback_from": "vllm"}}, nil
			},
			wantStatus: events.PageOK, wantEngine: "tesseract", wantSide: true,
		},
		{
			name: "give_up_is_a_failed_page_with_its_reason",
			eng: func(context.Context, engine.Page) (engine.Result, error) {
				return engine.Result{}, engine.GiveUp(engine.ReasonRepetition, "loop loop loop", "page 1: 3 attempts")
			},
			wantStatus: events.PageFailed, wantEngine: "vllm", wantReason: "repetition: page 1: 3 attempts", wantRaw: "loop loop loop",
		},
		{
			name: "other_permanent_failure_keeps_its_class",
			eng: func(context.Context, engine.Page) (engine.Result, error) {
				return engine.Result{}, failure.Permanent("bad page")
			},
			wantStatus: events.PageFailed, wantEngine: "vllm", wantReason: "permanent: ",
		},
		{
			name: "transient_failure_is_returned_for_a_retry",
			eng: func(context.Context, engine.Page) (engine.Result, error) {
				return engine.Result{}, failure.Transient("503")
			},
			wantErr: failure.ErrTransient,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			blobs, err := blob.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			const job = "j1"
			if err := scratch.PutJSON(ctx, blobs, scratch.ManifestKey(job), scratch.Manifest{JobID: job, Pages: []int{1}, Hints: map[string]string{"resolution": tc.hint}}); err != nil {
				t.Fatal(err)
			}
			imgKey := scratch.PageKey(job, 1, "jpg")
			if err := blobs.Put(ctx, imgKey, strings.NewReader("jpeg bytes")); err != nil {
				t.Fatal(err)
			}
			e, err := events.New(nil, events.PageRenderedID(job, 1), events.TypePageRendered, "/test", 1, job,
				events.PageRendered{JobID: job, Page: 1, Pages: 1, Route: events.RouteOCR, ImageKey: imgKey, Width: 10, Height: 20})
			if err != nil {
				t.Fatal(err)
			}
			st := recognize.New(recognize.Config{}, blobs, tc.eng, slog.New(slog.DiscardHandler))
			reply, err := st.Handle(ctx, e)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Handle err = %v, want %v", err, tc.wantErr)
				}
				if _, done, _ := scratch.GetRecord(ctx, blobs, job, 1); done {
					t.Fatal("a transient failure was recorded as the page's outcome")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var pr events.PageRecognized
			if err := events.Decode(*reply, &pr); err != nil {
				t.Fatal(err)
			}
			if pr.Status != tc.wantStatus || pr.Engine != tc.wantEngine || !strings.HasPrefix(pr.Reason, tc.wantReason) {
				t.Fatalf("recognized = %+v, want status %s engine %s reason %q…", pr, tc.wantStatus, tc.wantEngine, tc.wantReason)
			}
			if tc.wantRaw != "" {
				raw, err := scratch.GetBytes(ctx, blobs, scratch.PageKey(job, 1, "raw"))
				if err != nil || string(raw) != tc.wantRaw {
					t.Errorf("raw = %q, %v; want %q", raw, err, tc.wantRaw)
				}
			}
			var side recognize.Sidecar
			err = scratch.GetJSON(ctx, blobs, scratch.BlocksKey(job, 1), &side)
			if got := err == nil; got != tc.wantSide {
				t.Fatalf("sidecar stored = %v (%v), want %v", got, err, tc.wantSide)
			}
			if tc.wantSide && (side.Engine != tc.wantEngine || side.Width != 10 || len(side.Blocks)+len(side.Meta) == 0) {
				t.Errorf("sidecar = %+v", side)
			}
			// Records are listed from pages/; the sidecar must not be one.
			recs, err := scratch.Records(ctx, blobs, job)
			if err != nil || len(recs) != 1 {
				t.Errorf("Records = %v, %v; want the one page record", recs, err)
			}
		})
	}
}

// TestHandle_old_page_event_counts_as_the_last_delivery: without a
// delivery count from the transport (Knative), a page event older than the
// Trigger's retry window is on its last delivery, so a fallback may answer.
func TestHandle_old_page_event_counts_as_the_last_delivery(t *testing.T) {
	for _, tc := range []struct {
		name      string
		age       time.Duration
		transport func(context.Context) context.Context
		want      string
	}{
		{name: "fresh_event", age: time.Second, want: "false"},
		{name: "event_older_than_the_window", age: time.Hour, want: "true"},
		{name: "transport_count_wins", age: time.Hour, want: "false", transport: func(ctx context.Context) context.Context {
			return stage.WithMaxAttempts(stage.WithAttempt(ctx, 2), 7)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			blobs, err := blob.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			imgKey := scratch.PageKey("j", 1, "jpg")
			if err := blobs.Put(ctx, imgKey, strings.NewReader("jpeg")); err != nil {
				t.Fatal(err)
			}
			e, err := events.New(nil, events.PageRenderedID("j", 1), events.TypePageRendered, "/test", 1, "j",
				events.PageRendered{JobID: "j", Page: 1, Pages: 1, Route: events.RouteOCR, ImageKey: imgKey})
			if err != nil {
				t.Fatal(err)
			}
			e.SetTime(time.Now().Add(-tc.age))
			eng := engineFunc(func(ctx context.Context, _ engine.Page) (engine.Result, error) {
				return engine.Result{Markdown: fmt.Sprint(stage.LastAttempt(ctx))}, nil
			})
			if tc.transport != nil {
				ctx = tc.transport(ctx)
			}
			st := recognize.New(recognize.Config{RetryWindow: 10 * time.Minute}, blobs, eng, slog.New(slog.DiscardHandler))
			if _, err := st.Handle(ctx, e); err != nil {
				t.Fatal(err)
			}
			md, err := scratch.GetBytes(ctx, blobs, scratch.PageKey("j", 1, "md"))
			if err != nil || string(md) != tc.want {
				t.Fatalf("LastAttempt seen by the engine = %q (%v), want %s", md, err, tc.want)
			}
		})
	}
}
