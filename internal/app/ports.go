package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/contentdir"
	"github.com/ocrflow/ocrflow/shared/egress"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// Interface guards: both content stores serve the pipeline.
var (
	_ ContentStore = (*contentdir.Store)(nil)
	_ ContentStore = (*simplecontent.Store)(nil)
)

// OpenScratch opens the scratch store BLOB_URL names (file:// or s3://).
func OpenScratch(ctx context.Context, cfg config.Config) (scratch.Store, error) {
	return blob.Open(ctx, cfg.BlobURL, S3Options(cfg))
}

// S3Options returns the S3 client settings of cfg.
func S3Options(cfg config.Config) blob.S3Options {
	return blob.S3Options{Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, PathStyle: cfg.S3PathStyle}
}

// OpenContent returns the content store cfg selects (CONTENT_STORE):
// simple-content, or the directory store reading CONTENT_DIR and writing
// OUTPUT_DIR.
func OpenContent(ctx context.Context, cfg config.Config, log *slog.Logger) (ContentStore, error) {
	if cfg.Content() == config.ContentSimpleContent {
		return OpenSimpleContent(ctx, cfg, log)
	}
	return OpenDir(cfg)
}

// OpenDir returns the directory content store cfg describes: sources read
// under roots (default CONTENT_DIR), results written to OUTPUT_DIR.
func OpenDir(cfg config.Config, roots ...string) (*contentdir.Store, error) {
	if len(roots) == 0 {
		roots = []string{cfg.ContentDir}
	}
	return contentdir.New(roots, cfg.OutputDir)
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

// OpenSimpleContent returns the simple-content store cfg describes. S3
// access for s3:// sources uses the default credential chain; extraHosts
// join the egress allow list (an embedded server's S3 endpoint).
func OpenSimpleContent(ctx context.Context, cfg config.Config, log *slog.Logger, extraHosts ...string) (*simplecontent.Store, error) {
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

// EngineConfig maps the configuration onto the engine's. The fallback
// engine takes over on the transport's last delivery attempt
// (stage.LastAttempt).
func EngineConfig(cfg config.Config) engine.Config {
	return engine.Config{
		Name: cfg.Engine, TesseractLangs: cfg.TesseractLangs,
		URL: cfg.EngineURL, Model: cfg.Model, APIKey: cfg.APIKey, Profile: cfg.Profile, Mode: cfg.Mode,
		MaxTokens: cfg.MaxTokens, MaxInflight: cfg.MaxInflight, Fallback: cfg.FallbackEngine,
		InflightPolicy: cfg.InflightPolicy, MetricsURL: cfg.MetricsURL,
		LastAttempt: stage.LastAttempt,
	}
}

// checker is an optional engine capability: report whether it can run.
type checker interface {
	Check(ctx context.Context) error
}

// OpenEngine builds the engine cfg names and checks it when it can.
func OpenEngine(ctx context.Context, cfg config.Config) (engine.Engine, error) {
	eng, err := engine.New(EngineConfig(cfg))
	if err != nil {
		return nil, err
	}
	if c, ok := eng.(checker); ok {
		if err := c.Check(ctx); err != nil {
			return nil, err
		}
	}
	return eng, nil
}
