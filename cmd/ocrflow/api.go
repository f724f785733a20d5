package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/ocrflow/ocrflow/internal/app"
	"github.com/ocrflow/ocrflow/shared/api"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/inproc"
	"github.com/ocrflow/ocrflow/shared/knative"
	"github.com/ocrflow/ocrflow/shared/obs"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

func apiCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "listen address host:port (default API_ADDR, else :8080)")
	natsURL := fs.String("nats", "", "NATS URL of the standalone runtime (default NATS_URL, else nats://NATS_LISTEN)")
	broker := fs.String("broker", "", "Knative broker ingress URL jobs are published to instead of NATS (default BROKER_URL)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ocrflow api [--addr HOST:PORT] [--nats URL | --broker URL]

Serves the HTTP API (docs/api.md): POST /v1/jobs submits a job, GET
/v1/jobs/{id} reads its status from the scratch store (BLOB_URL), GET
/v1/jobs/{id}/events follows it (Server-Sent Events), POST /v1/ocr OCRs a
document synchronously through the stages run in this process, GET /healthz,
GET /readyz, GET /openapi.json. Jobs go to the standalone runtime on NATS, or
to a Knative broker ingress (--broker, BROKER_URL). API_TOKENS,
CORS_ALLOWED_ORIGINS and SYNC_* configure it. Stops gracefully on
SIGINT/SIGTERM within SHUTDOWN_TIMEOUT.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.APIAddr = *addr
	}
	if *broker != "" {
		cfg.BrokerURL = *broker
	}
	if *natsURL != "" {
		cfg.NATSURL = *natsURL
	}
	log := newLogger(stderr, cfg.LogLevel)
	srv, err := openAPI(ctx, cfg, log, apiOptions{sync: app.SyncOptions{Log: log}})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return errors.Join(fmt.Errorf("listen %s: %w", cfg.APIAddr, err), srv.close())
	}
	log.Info("api listening", "addr", l.Addr().String(), "transport", srv.transport, "blobs", cfg.BlobURL,
		"tokens", len(cfg.APITokens) > 0, "cors", cfg.CORSAllowedOrigins)
	err = srv.api.Serve(ctx, l, cfg.ShutdownTimeout)
	return errors.Join(err, srv.close())
}

// apiServer is the API with what it opened.
type apiServer struct {
	api       *api.Server
	transport string // where jobs go, for the log
	closers   []func() error
}

// close releases what openAPI opened, last first.
func (s *apiServer) close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}

// apiOptions are what openAPI takes besides the configuration.
type apiOptions struct {
	// sync configures the synchronous pipeline.
	sync app.SyncOptions
	// now is the clock of status reads (nil: time.Now).
	now func() time.Time
}

// openAPI opens what the API needs: the scratch store, the publisher (the
// standalone runtime, or the broker ingress), the synchronous pipeline and
// the readiness checks.
func openAPI(ctx context.Context, cfg config.Config, log *slog.Logger, o apiOptions) (s *apiServer, err error) {
	s = &apiServer{}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.close())
		}
	}()
	blobs, err := app.OpenScratch(ctx, cfg)
	if err != nil {
		return s, err
	}
	if c, ok := blobs.(io.Closer); ok {
		s.closers = append(s.closers, c.Close)
	}
	// One registry for the API's /metrics: the synchronous pipeline's
	// stages record on it too.
	if o.sync.Metrics == nil {
		o.sync.Metrics = obs.NewMetrics()
	}
	acfg := api.Config{
		Scratch: blobs, Tokens: cfg.APITokens, CORSOrigins: cfg.CORSAllowedOrigins,
		SyncMaxBytes: cfg.SyncMaxBytes, SyncTimeout: cfg.SyncTimeout, Log: log, Now: o.now,
		Metrics: o.sync.Metrics.Handler(),
	}
	var transport api.Check
	if cfg.BrokerURL != "" {
		sink, err := knative.NewSink(cfg.BrokerURL)
		if err != nil {
			return s, fmt.Errorf("BROKER_URL: %w", err)
		}
		s.closers = append(s.closers, sink.Close)
		acfg.Publisher, s.transport = sink, sink.Target()
		transport = api.Check{Name: "transport", Target: redact(sink.Target()), Probe: httpProbe(sink.Target(), "", false)}
	} else {
		rt, url, err := connectRuntime(ctx, cfg, "", log)
		if err != nil {
			return s, err
		}
		cfg.NATSURL = url
		s.closers = append(s.closers, func() error { return closeRuntime(rt, cfg) })
		acfg.Publisher, s.transport = rt, redact(cfg.NATSURL)
		acfg.Follow = func(ctx context.Context) (<-chan event.Event, error) {
			return rt.Follow(ctx, standalone.LifecycleSubjects)
		}
		transport = api.Check{Name: "transport", Target: redact(cfg.NATSURL), Probe: natsProbe(rt)}
	}
	runner, err := app.NewSync(cfg, o.sync)
	if err != nil {
		return s, err
	}
	s.closers = append(s.closers, func() error { return closeRunner(runner, cfg) })
	if err := runner.Open(ctx); err != nil {
		// The API serves jobs and status without it; POST /v1/ocr opens
		// it again on its next request.
		log.Warn("synchronous OCR unavailable for now", "error", err)
	}
	acfg.Sync = runner
	acfg.Checks = append([]api.Check{transport, scratchCheck(cfg, blobs)}, contentCheck(cfg))
	if cfg.Engine == engine.NameVLLM {
		acfg.Checks = append(acfg.Checks, api.Check{
			Name: "engine", Target: redact(strings.TrimSuffix(cfg.EngineURL, "/") + "/models"),
			Probe: httpProbe(strings.TrimSuffix(cfg.EngineURL, "/")+"/models", cfg.APIKey, true),
		})
	}
	if s.api, err = api.New(acfg); err != nil {
		return s, err
	}
	return s, nil
}

// closeRunner stops the synchronous pipeline within SHUTDOWN_TIMEOUT.
func closeRunner(r *inproc.Runner, cfg config.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return r.Close(ctx)
}

// redact drops credentials from a URL shown in logs and /readyz.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = url.User("redacted")
	return u.String()
}

// natsProbe checks the runtime's NATS connection and its JetStream.
func natsProbe(rt *standalone.Runtime) func(context.Context) error {
	return func(ctx context.Context) error {
		if st := rt.Conn().Status(); st != nats.CONNECTED {
			return fmt.Errorf("nats connection is %s", st)
		}
		return rt.Conn().FlushWithContext(ctx)
	}
}

// scratchCheck probes the scratch store with an existence check.
func scratchCheck(cfg config.Config, s scratch.Store) api.Check {
	return api.Check{Name: "scratch", Target: redact(cfg.BlobURL), Probe: func(ctx context.Context) error {
		_, err := s.Exists(ctx, "readyz/probe")
		return err
	}}
}

// contentCheck probes the content store: simple-content answers HTTP; the
// directory store's directories exist.
func contentCheck(cfg config.Config) api.Check {
	if cfg.Content() == config.ContentSimpleContent {
		return api.Check{Name: "content", Target: redact(cfg.SimpleContentURL), Probe: httpProbe(cfg.SimpleContentURL, "", false)}
	}
	return api.Check{Name: "content", Target: cfg.ContentDir + " → " + cfg.OutputDir, Probe: func(context.Context) error {
		for _, d := range []string{cfg.ContentDir, cfg.OutputDir} {
			st, err := os.Stat(d)
			if errors.Is(err, os.ErrNotExist) && d == cfg.OutputDir {
				continue // created with the first result
			}
			if err != nil {
				return err
			}
			if !st.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
		}
		return nil
	}}
}

// httpProbe returns a probe that GETs target with an optional bearer
// token: any answer below 500 is up (a broker ingress answers GET with
// 405), or with strict only 200 (a model server's /v1/models).
func httpProbe(target, bearer string, strict bool) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return err
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close() // a read-only probe: nothing is lost
		if resp.StatusCode >= 500 || (strict && resp.StatusCode != http.StatusOK) {
			return fmt.Errorf("%s answered %s", redact(target), resp.Status)
		}
		return nil
	}
}
