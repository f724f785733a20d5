package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/egress"
	"github.com/ocrflow/ocrflow/shared/render"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
	"github.com/ocrflow/ocrflow/shared/simplecontent/embedded"
)

// The tenant and owner `ocrflow run` uploads as.
const (
	localTenant = "00000000-0000-4000-8000-00000000000a"
	localOwner  = "00000000-0000-4000-8000-00000000000b"
)

// localContent is the content store of `ocrflow run --content
// simple-content`: simple-content's real v5 handlers in this process, which
// the run uses the way a platform would (upload, submit by content id,
// download the derived markdown).
type localContent struct {
	srv   *embedded.Server
	store *simplecontent.Store
}

func startLocalContent(ctx context.Context, cfg config.Config, log *slog.Logger) (*localContent, error) {
	srv, err := embedded.Start(embedded.Config{})
	if err != nil {
		return nil, err
	}
	cfg.SimpleContentURL, cfg.SimpleContentAPIKey = srv.URL(), srv.APIKey()
	cfg.S3Endpoint, cfg.S3PathStyle = srv.S3URL(), true
	store, err := app.OpenSimpleContent(ctx, cfg, log, egress.HostOf(srv.URL()), egress.HostOf(srv.S3URL()))
	if err != nil {
		return nil, errors.Join(err, srv.Close(ctx))
	}
	return &localContent{srv: srv, store: store}, nil
}

// upload stores the file as a new content and returns its id.
func (l *localContent) upload(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }() // read only: nothing is lost
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	_, mime, _ := render.Sniff(path)
	return l.store.Client().UploadFile(ctx, simplecontent.NewFile{
		OwnerID: localOwner, OwnerType: "user", TenantID: localTenant,
		FileName: filepath.Base(path), MimeType: mime, DocumentType: "document",
	}, f, st.Size())
}

// save downloads content id into path (atomically).
func (l *localContent) save(ctx context.Context, id, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = l.store.Download(ctx, id, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// where names the derived content for people: its API URL (valid while
// the run lasts).
func (l *localContent) where(id string) string {
	return fmt.Sprintf("%s%s/files/%s", l.srv.URL(), simplecontent.APIPrefix, id)
}

func (l *localContent) close(ctx context.Context) error {
	l.store.Client().CloseIdleConnections()
	return l.srv.Close(ctx)
}
