package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ocrflow/ocrflow/shared/blob"
	"github.com/ocrflow/ocrflow/shared/egress"
	"github.com/ocrflow/ocrflow/shared/engine/vllmtest"
	"github.com/ocrflow/ocrflow/shared/scratch"
	"github.com/ocrflow/ocrflow/shared/simplecontent"
	"github.com/ocrflow/ocrflow/shared/simplecontent/embedded"
	"github.com/ocrflow/ocrflow/shared/standalone"
)

// Build compiles ./cmd/ocrflow from the module root into dir and returns
// the binary's path.
func Build(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "ocrflow")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ocrflow")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ocrflow: %w\n%s", err, out)
	}
	return bin, nil
}

// Config configures an Env.
type Config struct {
	// Bin is the ocrflow binary.
	Bin string
	// Dir holds the processes' directories and the NATS store.
	Dir string
	// Workers is how many `ocrflow serve` processes run (default 2).
	Workers int
	// VLLM configures the fake model server.
	VLLM vllmtest.Config
	// Env is added to every serve process's environment.
	Env []string
	// Seed makes the injected faults reproducible.
	Seed uint64
}

// Env is one chaos environment: the services the test process hosts, and
// the ocrflow processes.
type Env struct {
	cfg Config

	// Content is simple-content (real v5 handlers); ContentFaults hit its
	// API, ContentS3Faults the S3 its bytes go through.
	Content         *embedded.Server
	ContentFaults   *Faults
	ContentS3Faults *Faults
	// Scratch is the scratch store's S3 (gofakes3); ScratchFaults hit it.
	scratchSrv    *httptest.Server
	ScratchFaults *Faults
	Scratch       scratch.Store
	// VLLM is the fake model server.
	VLLM *vllmtest.Server
	// NATS is the `ocrflow nats` process; Workers the `ocrflow serve`
	// processes.
	NATS    *Proc
	NATSURL string
	Workers []*Proc
	// API is a simple-content client for uploads and checks.
	API *simplecontent.Client
	// Client publishes jobs and reads the stream.
	nc *nats.Conn
	js jetstream.JetStream
}

// Tenant and owner the documents are uploaded as.
const (
	Tenant = "00000000-0000-4000-8000-0000000000c1"
	Owner  = "00000000-0000-4000-8000-0000000000c2"
)

// Start starts the hosted services and the processes, and waits until the
// workers serve.
func Start(ctx context.Context, cfg Config) (*Env, error) {
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	e := &Env{cfg: cfg,
		ContentFaults: NewFaults("content api", cfg.Seed), ContentS3Faults: NewFaults("content s3", cfg.Seed),
		ScratchFaults: NewFaults("scratch s3", cfg.Seed)}
	var err error
	if e.Content, err = embedded.Start(embedded.Config{
		APIMiddleware: e.ContentFaults.Middleware, S3Middleware: e.ContentS3Faults.Middleware,
	}); err != nil {
		return nil, err
	}
	transfers, err := egress.NewPolicy(egress.HostOf(e.Content.S3URL()))
	if err != nil {
		return nil, errors.Join(err, e.Close(ctx))
	}
	if e.API, err = simplecontent.New(simplecontent.Config{BaseURL: e.Content.URL(), APIKey: e.Content.APIKey(), Transfers: transfers.Client()}); err != nil {
		return nil, errors.Join(err, e.Close(ctx))
	}
	mem := s3mem.New()
	if err := mem.CreateBucket("scratch"); err != nil {
		return nil, errors.Join(err, e.Close(ctx))
	}
	e.scratchSrv = httptest.NewServer(e.ScratchFaults.Middleware(gofakes3.New(mem, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()))
	s3c := s3.New(s3.Options{
		BaseEndpoint: aws.String(e.scratchSrv.URL), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("chaos", "chaos", ""),
	})
	if e.Scratch, err = blob.NewS3(s3c, "scratch", "chaos/"); err != nil {
		return nil, errors.Join(err, e.Close(ctx))
	}
	if e.VLLM, err = vllmtest.New(cfg.VLLM); err != nil {
		return nil, errors.Join(err, e.Close(ctx))
	}

	natsAddr, err := FreeAddr()
	if err != nil {
		return nil, errors.Join(err, e.Close(ctx))
	}
	e.NATSURL = "nats://" + natsAddr
	e.NATS, err = NewProc("nats", filepath.Join(cfg.Dir, "nats"), cfg.Bin, []string{"nats"},
		[]string{"NATS_LISTEN=" + natsAddr, "NATS_STORE_DIR=" + filepath.Join(cfg.Dir, "nats", "store"), "LOG_LEVEL=info"})
	if err != nil {
		return nil, errors.Join(err, e.Close(ctx))
	}
	if err := e.StartNATS(ctx); err != nil {
		return nil, errors.Join(err, e.Close(ctx))
	}
	if err := e.connect(ctx); err != nil {
		return nil, errors.Join(err, e.Close(ctx))
	}
	for i := 1; i <= cfg.Workers; i++ {
		metrics, err := FreeAddr()
		if err != nil {
			return nil, errors.Join(err, e.Close(ctx))
		}
		p, err := NewProc("serve-"+strconv.Itoa(i), filepath.Join(cfg.Dir, "serve-"+strconv.Itoa(i)), cfg.Bin, []string{"serve"},
			append(e.serveEnv(metrics), cfg.Env...))
		if err != nil {
			return nil, errors.Join(err, e.Close(ctx))
		}
		e.Workers = append(e.Workers, p)
		if err := e.StartWorker(ctx, p); err != nil {
			return nil, errors.Join(err, e.Close(ctx))
		}
	}
	return e, nil
}

// serveEnv is the environment of a serve process.
func (e *Env) serveEnv(metricsAddr string) []string {
	return []string{
		"NATS_URL=" + e.NATSURL,
		"OCR_ENGINE=vllm", "OCR_ENGINE_URL=" + e.VLLM.URL(), "OCR_MODEL=" + e.VLLM.Model(), "OCR_MAX_INFLIGHT=8",
		"BLOB_URL=s3://scratch/chaos", "S3_ENDPOINT=" + e.scratchSrv.URL, "S3_PATH_STYLE=true", "S3_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=chaos", "AWS_SECRET_ACCESS_KEY=chaos", "AWS_EC2_METADATA_DISABLED=true",
		"SIMPLE_CONTENT_URL=" + e.Content.URL(), "SIMPLE_CONTENT_API_KEY=" + e.Content.APIKey(),
		"SOURCE_ALLOWED_HOSTS=" + egress.HostOf(e.Content.URL()) + "," + egress.HostOf(e.Content.S3URL()),
		"METRICS_ADDR=" + metricsAddr, "OFFICE_MODE=native", "LOG_LEVEL=info", "SHUTDOWN_TIMEOUT=10s",
	}
}

// StartNATS starts (or restarts) the NATS process and waits until it
// accepts connections.
func (e *Env) StartNATS(ctx context.Context) error {
	if err := e.NATS.Start(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return e.NATS.WaitLog(wctx, "nats-server ready")
}

// StartWorker starts (or restarts) a serve process and waits until it
// serves.
func (e *Env) StartWorker(ctx context.Context, p *Proc) error {
	before := strings.Count(p.Log(), `msg=serving`)
	if err := p.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.Log(), `msg=serving`) <= before {
		if !p.Running() {
			return fmt.Errorf("%s exited at start: %v\n%s", p.Name, p.Exit(), tail(p.Log(), 2000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not serve within 30s\n%s", p.Name, tail(p.Log(), 2000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// connect connects the test's own client to NATS (reconnecting forever,
// so it rides out a NATS restart) and makes sure the stream exists.
func (e *Env) connect(ctx context.Context) error {
	nc, err := nats.Connect(e.NATSURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Name("chaos"))
	if err != nil {
		return fmt.Errorf("connect nats: %w", err)
	}
	e.nc = nc
	if e.js, err = jetstream.New(nc); err != nil {
		return err
	}
	rt, err := standalone.New(ctx, standalone.Config{URL: e.NATSURL})
	if err != nil {
		return err
	}
	return rt.Close(ctx) // it created the stream
}

// Publish publishes e as the standalone runtime does (its codec, its
// subject), retrying while NATS is away.
func (e *Env) Publish(ctx context.Context, ev event.Event) error {
	m, err := standalone.Encode(ctx, standalone.SubjectOf(standalone.DefaultJobSubject, ev), ev)
	if err != nil {
		return err
	}
	for {
		_, err := e.js.PublishMsg(ctx, m)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish %s: %w", ev.ID(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stream reads every message on subjects (e.g. ocr.job.>) from the start
// of the stream and returns them decoded.
func (e *Env) Stream(ctx context.Context, subjects ...string) ([]event.Event, error) {
	s, err := e.js.Stream(ctx, standalone.DefaultStream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, err
	}
	var out []event.Event
	for {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			return nil, err
		}
		n := 0
		var last uint64
		for msg := range batch.Messages() {
			n++
			md, _ := msg.Metadata()
			if md != nil {
				last = md.Sequence.Stream
			}
			ev, err := standalone.Decode(msg.Headers(), msg.Data())
			if err == nil {
				out = append(out, ev)
			}
		}
		if n == 0 || last >= info.State.LastSeq {
			return out, nil
		}
	}
}

// Pending sums the messages waiting at every consumer of the stream,
// delivered-and-unacknowledged ones included: the pipeline's backlog.
func (e *Env) Pending(ctx context.Context) (int, error) {
	s, err := e.js.Stream(ctx, standalone.DefaultStream)
	if err != nil {
		return 0, err
	}
	n := 0
	for info := range s.ListConsumers(ctx).Info() {
		n += int(info.NumPending) + info.NumAckPending
	}
	return n, nil
}

// Conn returns the test's NATS connection.
func (e *Env) Conn() *nats.Conn { return e.nc }

// Upload stores a document in simple-content and returns its content id.
func (e *Env) Upload(ctx context.Context, name string, body []byte) (string, error) {
	return e.API.UploadFile(ctx, simplecontent.NewFile{
		OwnerID: Owner, OwnerType: "user", TenantID: Tenant, FileName: name,
		MimeType: "application/pdf", DocumentType: "document",
	}, strings.NewReader(string(body)), int64(len(body)))
}

// Close stops everything.
func (e *Env) Close(ctx context.Context) error {
	var errs []error
	for _, p := range e.Workers {
		errs = append(errs, p.Stop(15*time.Second))
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.NATS != nil {
		errs = append(errs, e.NATS.Stop(15*time.Second))
	}
	if e.VLLM != nil {
		e.VLLM.Close()
	}
	if e.scratchSrv != nil {
		e.scratchSrv.Close()
	}
	if e.API != nil {
		e.API.CloseIdleConnections()
	}
	if e.Content != nil {
		errs = append(errs, e.Content.Close(ctx))
	}
	return errors.Join(errs...)
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
