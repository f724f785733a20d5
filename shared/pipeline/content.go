package pipeline

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/content"
	"github.com/ocrflow/ocrflow/shared/egress"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
)

// Interface guards: both content stores serve the pipeline.
var (
	_ ContentStore = (*content.Dir)(nil)
	_ ContentStore = (*simplecontent.Store)(nil)
)

// RecipeFor returns what keys and describes results under cfg. It comes
// from configuration, not from an engine instance, because convert and
// finalize may run where no engine is built and must still agree with each
// other on every pod. engineName overrides cfg.Engine when an engine
// instance is at hand (tests inject engines by value). The model is what
// changes the output: tesseract with its languages, a model server's
// profile with its served model (OCR_PROFILE, OCR_MODEL); the mode is
// OCR_MODE, else the profile's default.
func RecipeFor(cfg config.Config, engineName string) content.Recipe {
	if engineName == "" {
		engineName = cfg.Engine
	}
	model, mode := engineName, cfg.Mode
	switch engineName {
	case "tesseract":
		if cfg.TesseractLangs != "" {
			model += ":" + cfg.TesseractLangs
		}
	case "vllm":
		served := cfg.Model
		if p, err := engine.LookupProfile(cfg.Profile); err == nil {
			if served == "" {
				served = p.DefaultModel
			}
			if mode == "" {
				mode = p.DefaultMode
			}
		}
		model = cfg.Profile + ":" + served
	}
	if mode == "" {
		mode = content.DefaultMode
	}
	return content.Recipe{PipelineVersion: content.PipelineVersion, Engine: engineName, Model: model, Mode: mode}
}

// OpenBlobs opens the scratch store BLOB_URL names (file:// or s3://).
func OpenBlobs(ctx context.Context, cfg config.Config) (scratch.Store, error) {
	return blob.Open(ctx, cfg.BlobURL, S3Options(cfg))
}

// S3Options returns the S3 client settings of cfg.
func S3Options(cfg config.Config) blob.S3Options {
	return blob.S3Options{Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, PathStyle: cfg.S3PathStyle}
}

// SourcePolicy returns the egress policy for source downloads and result
// uploads: SOURCE_ALLOWED_HOSTS, or by default the hosts of
// SIMPLE_CONTENT_URL and S3_ENDPOINT (*.amazonaws.com without an
// endpoint), plus extra.
func SourcePolicy(cfg config.Config, extra ...string) (*egress.Policy, error) {
	hosts := cfg.SourceAllowedHosts
	if len(hosts) == 0 {
		hosts = []string{egress.HostOf(cfg.SimpleContentURL)}
		if cfg.S3Endpoint != "" {
			hosts = append(hosts, egress.HostOf(cfg.S3Endpoint))
		} else {
			hosts = append(hosts, "*.amazonaws.com")
		}
	}
	p, err := egress.NewPolicy(append(append([]string{}, hosts...), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("SOURCE_ALLOWED_HOSTS: %w", err)
	}
	return p, nil
}

// NewSimpleContent returns the simple-content store cfg describes. S3
// access for s3:// sources uses the default credential chain; extraHosts
// join the egress allow list (the embedded server's S3 endpoint).
func NewSimpleContent(ctx context.Context, cfg config.Config, log *slog.Logger, extraHosts ...string) (*simplecontent.Store, error) {
	policy, err := SourcePolicy(cfg, extraHosts...)
	if err != nil {
		return nil, err
	}
	client, err := simplecontent.New(simplecontent.Config{
		BaseURL: cfg.SimpleContentURL, APIKey: cfg.SimpleContentAPIKey,
		Timeout: cfg.SimpleContentTimeout, Attempts: cfg.SimpleContentAttempts, Transfers: policy.Client(),
	})
	if err != nil {
		return nil, err
	}
	s3c, err := blob.NewS3Client(ctx, S3Options(cfg))
	if err != nil {
		return nil, err
	}
	return simplecontent.NewStore(simplecontent.StoreConfig{
		Client: client, S3: s3.NewPresignClient(s3c), DownloadTimeout: cfg.SourceTimeout, Log: log,
	})
}

// NewContent returns the content store cfg selects (CONTENT_STORE):
// simple-content, or the directory store reading CONTENT_DIR and writing
// OUTPUT_DIR.
func NewContent(ctx context.Context, cfg config.Config, log *slog.Logger) (ContentStore, error) {
	if cfg.Content() == config.ContentSimpleContent {
		return NewSimpleContent(ctx, cfg, log)
	}
	return NewDirContent(cfg)
}
