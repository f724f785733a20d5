// Package config reads ocrflow's configuration from the environment. Every
// variable is declared once in Vars, with its default and its documentation;
// .env.example and docs/configuration.md are checked against that table.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/ocrflow/ocrflow/shared/engine"
	"github.com/ocrflow/ocrflow/shared/job"
	"github.com/ocrflow/ocrflow/shared/office"
	"github.com/ocrflow/ocrflow/shared/stage"
	"github.com/ocrflow/ocrflow/shared/textlayer"
)

// Config is the whole configuration.
type Config struct {
	Stages           []string
	Engine           string
	TesseractLangs   string
	PageTimeout      time.Duration
	BlobURL          string
	ContentDir       string
	OutputDir        string
	Sink             string
	NATSURL          string
	NATSListen       string
	NATSStoreDir     string
	JobSubject       string
	MaxSourceBytes   int64
	MaxPages         int
	MaxImagePixels   int64
	TextLayer        string
	Outputs          []string
	OfficeMode       string
	LibreOffice      string
	LibreOfficeTime  time.Duration
	LibreOfficeJobs  int
	LibreOfficeMem   int64
	ConvertSlice     time.Duration
	AutoOCRType      string
	AutoOCRMIMETypes []string
	AutoOCRTenants   []string
	AutoOCRExclude   []string
	RenderIsolation  string
	RenderMemory     int64
	RenderTimeout    time.Duration
	ConvertWorkers   int
	RecognizeWorkers int
	LogLevel         string
	ShutdownTimeout  time.Duration
	// Reliability (docs/reliability.md).
	MinFreeDisk      int64
	MaxPageErrorRate float64
	ProgressInterval time.Duration
	ProgressPages    int

	// Observability (docs/observability.md).
	MetricsAddr  string
	OTLPEndpoint string

	// HTTP API (`ocrflow api`; docs/api.md).
	APIAddr            string
	BrokerURL          string
	APITokens          map[string]string
	CORSAllowedOrigins []string
	SyncMaxBytes       int64
	SyncMaxPages       int
	SyncTimeout        time.Duration

	// Backfill (`ocrflow backfill`; docs/backfill.md).
	DatabaseURL    string
	DatabaseSchema string

	// Model server engine (OCR_ENGINE=vllm; docs/engines.md).
	EngineURL      string
	Model          string
	APIKey         string
	Profile        string
	Mode           string
	MaxInflight    int
	InflightPolicy string
	MetricsURL     string
	MaxTokens      int
	FallbackEngine string

	// Content store (docs/content.md).
	ContentStore          string
	SimpleContentURL      string
	SimpleContentAPIKey   string
	SimpleContentTimeout  time.Duration
	SimpleContentAttempts int
	SourceAllowedHosts    []string
	SourceTimeout         time.Duration
	S3Endpoint            string
	S3Region              string
	S3PathStyle           bool
}

// Var is one environment variable.
type Var struct {
	Name    string
	Default string
	Doc     string
	set     func(c *Config, v string) error
}

// Vars declares every variable ocrflow reads.
var Vars = []Var{
	{"OCR_STAGES", strings.Join(stage.Pipeline(), ","), "Stages this process serves (comma list of convert, recognize, finalize, deadletter).", func(c *Config, v string) error {
		c.Stages = nil
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if !stage.Known(s) {
				return fmt.Errorf("unknown stage %q (known: %s, %s)", s, strings.Join(stage.Pipeline(), ", "), stage.AutoOCR)
			}
			c.Stages = append(c.Stages, s)
		}
		if len(c.Stages) == 0 {
			return errors.New("no stage selected")
		}
		return nil
	}},
	{"OCR_ENGINE", engine.NameTesseract, "Recognition engine: tesseract (CPU), vllm (an OpenAI-compatible model server, see docs/engines.md) or fake (tests only).", str(func(c *Config) *string { return &c.Engine })},
	{"OCR_ENGINE_URL", "", "OCR_ENGINE=vllm: base URL of the OpenAI-compatible API, e.g. http://vllm:8000/v1, or http://ISVC-predictor.NAMESPACE.svc.cluster.local/openai/v1 for KServe's Hugging Face runtime.", str(func(c *Config) *string { return &c.EngineURL })},
	{"OCR_MODEL", "", "Served model name sent with each request; empty = the profile's default (deepseek-ai/DeepSeek-OCR for deepseek-ocr).", str(func(c *Config) *string { return &c.Model })},
	{"OCR_API_KEY", "", "Bearer token for the model server (vllm serve --api-key); empty sends none.", str(func(c *Config) *string { return &c.APIKey })},
	{"OCR_PROFILE", "deepseek-ocr", "Model family adapter: deepseek-ocr, deepseek-ocr-2, olmocr-2 or generic (prompt, sampling, image size, clean-up).", str(func(c *Config) *string { return &c.Profile })},
	{"OCR_MODE", "", "Default resolution mode (tiny, small, base, large, gundam for DeepSeek); empty = the profile's default (gundam). A job's resolution hint overrides it.", str(func(c *Config) *string { return &c.Mode })},
	{"OCR_MAX_INFLIGHT", "512", "Most engine calls one process has in flight at once (OCR_ENGINE=vllm): the ceiling of the adaptive limit, or the limit itself with OCR_INFLIGHT_POLICY=fixed. The default RECOGNIZE_WORKERS for vllm is this plus an eighth.", intv(func(c *Config) *int { return &c.MaxInflight })},
	{"OCR_INFLIGHT_POLICY", engine.InflightAdaptive, "How many engine calls run at once (OCR_ENGINE=vllm): adaptive (follows the model server's queue — its /metrics gauges, else call latency — to keep it full with a short queue, up to OCR_MAX_INFLIGHT; no tuning) or fixed (OCR_MAX_INFLIGHT; about 1.25 × the server's concurrency, summed over processes, keeps it full). docs/engines.md.", func(c *Config, v string) error {
		switch v = strings.ToLower(strings.TrimSpace(v)); v {
		case engine.InflightAdaptive, engine.InflightFixed:
			c.InflightPolicy = v
			return nil
		}
		return fmt.Errorf("%q is not adaptive or fixed", v)
	}},
	{"OCR_ENGINE_METRICS_URL", "", "Where the adaptive in-flight limit reads the model server's queue (vLLM's vllm:num_requests_running/waiting, SGLang's too); empty = /metrics at OCR_ENGINE_URL's host, off = none (the limit then follows call latency).", str(func(c *Config) *string { return &c.MetricsURL })},
	{"OCR_MAX_TOKENS", "0", "Answer cap per page in tokens; 0 = the profile's default (4096 for DeepSeek, 8000 for olmOCR).", intv(func(c *Config) *int { return &c.MaxTokens })},
	{"OCR_FALLBACK_ENGINE", "", "Engine for a page whose model server stays unavailable through its last delivery attempt: tesseract or fake; empty = none (the page fails).", str(func(c *Config) *string { return &c.FallbackEngine })},
	{"OCR_TESSERACT_LANGS", "eng", "Languages passed to tesseract -l (e.g. eng+deu; install tesseract-ocr-<lang>).", str(func(c *Config) *string { return &c.TesseractLangs })},
	{"OCR_PAGE_TIMEOUT", "30s", "Deadline of one engine call, unless the job's timeout_seconds hint says otherwise.", dur(func(c *Config) *time.Duration { return &c.PageTimeout })},
	{"BLOB_URL", "file://./.ocrflow/blobs", "Scratch store for page images and results: file://DIR (one host) or s3://bucket/prefix (shared by every pod; see S3_*).", str(func(c *Config) *string { return &c.BlobURL })},
	{"CONTENT_DIR", ".", "Directory content store: jobs may read source files under this directory only.", str(func(c *Config) *string { return &c.ContentDir })},
	{"OUTPUT_DIR", "./out", "Directory content store: results are written here as <source name>.md.", str(func(c *Config) *string { return &c.OutputDir })},
	{"CONTENT_STORE", "auto", "Where sources come from and results go: simple-content, dir, or auto (simple-content when SIMPLE_CONTENT_URL is set, else dir).", func(c *Config, v string) error {
		switch v = strings.ToLower(strings.TrimSpace(v)); v {
		case ContentAuto, ContentSimpleContent, ContentDir:
			c.ContentStore = v
			return nil
		}
		return fmt.Errorf("%q is not auto, simple-content or dir", v)
	}},
	{"SIMPLE_CONTENT_URL", "", "Base URL of simple-content's v5 API, e.g. http://simple-content:4000 (the client appends /api/v5).", str(func(c *Config) *string { return &c.SimpleContentURL })},
	{"SIMPLE_CONTENT_API_KEY", "", "API key for simple-content, sent as the raw Authorization header.", str(func(c *Config) *string { return &c.SimpleContentAPIKey })},
	{"SIMPLE_CONTENT_TIMEOUT", "30s", "Deadline of one simple-content API call (one attempt).", dur(func(c *Config) *time.Duration { return &c.SimpleContentTimeout })},
	{"SIMPLE_CONTENT_ATTEMPTS", "3", "Attempts per simple-content call on 5xx, 429 and connection errors (creates are not repeated once sent).", intv(func(c *Config) *int { return &c.SimpleContentAttempts })},
	{"SOURCE_ALLOWED_HOSTS", "", "Hosts source and upload URLs may point at (comma list of host, host:port or *.domain); empty = the hosts of SIMPLE_CONTENT_URL and S3_ENDPOINT (*.amazonaws.com without S3_ENDPOINT).", func(c *Config, v string) error {
		c.SourceAllowedHosts = nil
		for h := range strings.SplitSeq(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				c.SourceAllowedHosts = append(c.SourceAllowedHosts, h)
			}
		}
		return nil
	}},
	{"SOURCE_TIMEOUT", "10m", "Deadline of one source download.", dur(func(c *Config) *time.Duration { return &c.SourceTimeout })},
	{"S3_ENDPOINT", "", "S3 API URL for MinIO or another S3-compatible server (e.g. http://minio:9000); empty = AWS. Credentials come from the default AWS chain.", str(func(c *Config) *string { return &c.S3Endpoint })},
	{"S3_REGION", "us-east-1", "S3 signing region.", str(func(c *Config) *string { return &c.S3Region })},
	{"S3_PATH_STYLE", "false", "Address buckets as /bucket/key (true for MinIO) instead of bucket.host.", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		c.S3PathStyle = b
		return nil
	}},
	{"K_SINK", "", "Knative function only: the broker ingress URL convert publishes page events to (required when convert is served).", str(func(c *Config) *string { return &c.Sink })},
	{"NATS_URL", "", "NATS server URL; empty starts an embedded nats-server with JetStream.", str(func(c *Config) *string { return &c.NATSURL })},
	{"NATS_LISTEN", "127.0.0.1:4222", "Client address of the embedded server started by `ocrflow serve` (other processes connect here).", str(func(c *Config) *string { return &c.NATSListen })},
	{"NATS_STORE_DIR", "./.ocrflow/nats", "JetStream storage directory of the embedded server.", str(func(c *Config) *string { return &c.NATSStoreDir })},
	{"NATS_JOB_SUBJECT", "ocr.jobs", "Subject jobs are published on (simpleprocess.job events).", str(func(c *Config) *string { return &c.JobSubject })},
	{"MAX_SOURCE_BYTES", "104857600", "Largest accepted source document in bytes (100 MiB).", i64(func(c *Config) *int64 { return &c.MaxSourceBytes })},
	{"MAX_PAGES", "2000", "Largest accepted page count.", intv(func(c *Config) *int { return &c.MaxPages })},
	{"MAX_IMAGE_PIXELS", "100000000", "Largest accepted raster image (width×height), checked before decoding.", i64(func(c *Config) *int64 { return &c.MaxImagePixels })},
	{"TEXT_LAYER", "auto", "Pages with a trustworthy text layer skip OCR: auto (score it), off (always OCR) or only (never OCR).", func(c *Config, v string) error {
		if _, ok := textlayer.ParseMode(v); !ok {
			return fmt.Errorf("%q is not auto, off or only", v)
		}
		c.TextLayer = strings.ToLower(strings.TrimSpace(v))
		return nil
	}},
	{"OCR_OUTPUTS", "markdown", "Results each job stores when its output_format hint names none (comma list of markdown, json, pdf): the markdown, the structured JSON document, the searchable PDF (docs/outputs.md).", func(c *Config, v string) error {
		outs, err := job.ParseOutputs(v)
		if err != nil {
			return fmt.Errorf("%q: %w", v, err)
		}
		c.Outputs = outs
		return nil
	}},
	{"OFFICE_MODE", "auto", "How office documents are read: native (DOCX/PPTX/XLSX text extracted, pictures OCRed; legacy and OpenDocument refused), render (everything converted to PDF with LibreOffice, then rendered and OCRed page by page) or auto (native, but picture-led documents and DOC/XLS/PPT/ODT/ODS/ODP go through LibreOffice when it is installed).", func(c *Config, v string) error {
		m, ok := office.ParseMode(v)
		if !ok {
			return fmt.Errorf("%q is not native, render or auto", v)
		}
		c.OfficeMode = string(m)
		return nil
	}},
	{"LIBREOFFICE_PATH", "soffice", "LibreOffice executable (a path, or a name looked up in PATH) for OFFICE_MODE render and auto.", str(func(c *Config) *string { return &c.LibreOffice })},
	{"LIBREOFFICE_TIMEOUT", "20s", "Time limit of one LibreOffice conversion; its process group is killed after it. Keep it under the convert Trigger's 30 s timeout.", dur(func(c *Config) *time.Duration { return &c.LibreOfficeTime })},
	{"LIBREOFFICE_MEMORY_LIMIT", "2147483648", "Address-space limit (RLIMIT_AS) of a LibreOffice conversion in bytes; a document that needs more fails instead of exhausting the machine.", i64(func(c *Config) *int64 { return &c.LibreOfficeMem })},
	{"LIBREOFFICE_PARALLEL", "2", "LibreOffice conversions one process runs at once (each takes about 200 MB and a core).", intv(func(c *Config) *int { return &c.LibreOfficeJobs })},
	{"AUTOOCR_EVENT_TYPE", "content.uploaded", "CloudEvent type the optional autoocr stage turns into OCR jobs (standalone routing; edit eventing/optional/autoocr.yaml for Knative).", str(func(c *Config) *string { return &c.AutoOCRType })},
	{"AUTOOCR_MIME_TYPES", "application/pdf,image/*", "MIME types autoocr accepts (comma list; image/* matches every image).", list(func(c *Config) *[]string { return &c.AutoOCRMIMETypes })},
	{"AUTOOCR_TENANTS", "*", "Tenants autoocr serves (comma list; * = all).", list(func(c *Config) *[]string { return &c.AutoOCRTenants })},
	{"AUTOOCR_EXCLUDE_TENANTS", "", "Tenants with automatic OCR off (comma list).", list(func(c *Config) *[]string { return &c.AutoOCRExclude })},
	{"RENDER_ISOLATION", "in-process", "in-process, or process: render each document in a child process (memory and time limits) so a file that crashes MuPDF fails alone.", func(c *Config, v string) error {
		if v != "in-process" && v != "process" {
			return fmt.Errorf("%q is not in-process or process", v)
		}
		c.RenderIsolation = v
		return nil
	}},
	{"RENDER_MEMORY_LIMIT", "2147483648", "Address-space limit of a render child in bytes (RENDER_ISOLATION=process).", i64(func(c *Config) *int64 { return &c.RenderMemory })},
	{"RENDER_TIMEOUT", "60s", "Time limit of one render call in a child; the child is killed after it (RENDER_ISOLATION=process).", dur(func(c *Config) *time.Duration { return &c.RenderTimeout })},
	{"CONVERT_SLICE", "20s", "How long one convert delivery renders before it hands the rest of a long document to an ocr.convert.continue event; keep it under the convert Trigger's 30 s timeout minus one page.", dur(func(c *Config) *time.Duration { return &c.ConvertSlice })},
	{"CONVERT_WORKERS", "1", "Jobs one process converts at once (standalone runtime).", intv(func(c *Config) *int { return &c.ConvertWorkers })},
	{"RECOGNIZE_WORKERS", "0", "Pages one process recognizes at once (standalone runtime); 0 = one per CPU core, or for vllm OCR_MAX_INFLIGHT plus an eighth, of which the runtime pulls only what the in-flight limit can use.", intv(func(c *Config) *int { return &c.RecognizeWorkers })},
	{"LOG_LEVEL", "info", "debug, info, warn or error.", str(func(c *Config) *string { return &c.LogLevel })},
	{"SHUTDOWN_TIMEOUT", "30s", "How long a stopping process waits for in-flight work.", dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{"MIN_FREE_DISK_BYTES", "536870912", "Free space the temp directory must keep (bytes, 512 MiB): below it convert refuses new jobs as transient, so they are redelivered later or elsewhere instead of failing for want of disk; 0 = no floor.", i64(func(c *Config) *int64 { return &c.MinFreeDisk })},
	{"MAX_PAGE_ERROR_RATE", "0.05", "Share of a job's pages (0–1) that may fail and the job still complete with placeholders; above it the job fails (error_type pages_failed). A job's max_page_error_rate hint overrides it.", fraction(func(c *Config) *float64 { return &c.MaxPageErrorRate })},
	{"PROGRESS_INTERVAL", "1s", "Least time between two ocr.job.progress events of a job from one process (PROGRESS_PAGES may send one sooner).", dur(func(c *Config) *time.Duration { return &c.ProgressInterval })},
	{"PROGRESS_PAGES", "10", "A job reports progress at least every this many finished pages, however quickly they finish; 0 = by PROGRESS_INTERVAL only.", intv(func(c *Config) *int { return &c.ProgressPages })},
	{"METRICS_ADDR", ":9464", "Address `ocrflow serve` and the Knative function serve Prometheus metrics on, at /metrics (host:port; empty = not served). Not 9090 or 9091: Knative's queue-proxy listens there in the same pod. `ocrflow api` serves /metrics on its own address.", str(func(c *Config) *string { return &c.MetricsAddr })},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "Base URL of the OpenTelemetry collector traces are exported to over OTLP/HTTP (e.g. http://otel-collector:4318; spans go to its /v1/traces); empty = no traces are exported (log lines still carry trace ids). The SDK reads the other OTEL_* variables (OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS …) itself.", str(func(c *Config) *string { return &c.OTLPEndpoint })},
	{"API_ADDR", ":8080", "Address `ocrflow api` listens on (host:port; --addr overrides it).", str(func(c *Config) *string { return &c.APIAddr })},
	{"BROKER_URL", "", "Knative broker ingress URL `ocrflow api` publishes jobs to (HTTP CloudEvents); empty = the standalone runtime at NATS_URL.", str(func(c *Config) *string { return &c.BrokerURL })},
	{"API_TOKENS", "", "Bearer tokens of the HTTP API, each bound to a tenant: token1:tenantA,token2:tenantB. Empty = no authentication; set, every /v1 route needs a token and sees only its tenant's jobs.", func(c *Config, v string) error {
		c.APITokens = nil
		for pair := range strings.SplitSeq(v, ",") {
			if pair = strings.TrimSpace(pair); pair == "" {
				continue
			}
			token, tenant, ok := strings.Cut(pair, ":")
			if token, tenant = strings.TrimSpace(token), strings.TrimSpace(tenant); !ok || token == "" || tenant == "" {
				return errors.New("each entry must be token:tenant")
			}
			if c.APITokens == nil {
				c.APITokens = map[string]string{}
			}
			if _, dup := c.APITokens[token]; dup {
				return errors.New("a token is listed twice")
			}
			c.APITokens[token] = tenant
		}
		return nil
	}},
	{"CORS_ALLOWED_ORIGINS", "", "Origins browsers may call the HTTP API from (comma list of scheme://host[:port], or *); empty = CORS off.", list(func(c *Config) *[]string { return &c.CORSAllowedOrigins })},
	{"SYNC_MAX_BYTES", "20971520", "Largest document POST /v1/ocr accepts, in bytes (20 MiB); a larger body is refused with 413.", i64(func(c *Config) *int64 { return &c.SyncMaxBytes })},
	{"SYNC_MAX_PAGES", "20", "Most pages POST /v1/ocr converts (office documents count each picture); a longer document is refused with 422.", intv(func(c *Config) *int { return &c.SyncMaxPages })},
	{"SYNC_TIMEOUT", "120s", "How long POST /v1/ocr waits for its document before answering 504.", dur(func(c *Config) *time.Duration { return &c.SyncTimeout })},
	{"DATABASE_URL", "", "simple-content's PostgreSQL database, which `ocrflow backfill` enumerates contents from (postgres://user:password@host:5432/db; --database-url overrides it). Read only.", str(func(c *Config) *string { return &c.DatabaseURL })},
	{"DATABASE_SCHEMA", "content", "Schema of simple-content's tables in DATABASE_URL (its migrations create them in `content`); a search_path set in the URL wins.", str(func(c *Config) *string { return &c.DatabaseSchema })},
}

func str(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

func list(f func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
		*f(c) = out
		return nil
	}
}

func fraction(f func(*Config) *float64) func(*Config, string) error {
	return func(c *Config, v string) error {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x < 0 || x > 1 {
			return fmt.Errorf("%q is not a number from 0 to 1", v)
		}
		*f(c) = x
		return nil
	}
}

func dur(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a positive duration like 30s", v)
		}
		*f(c) = d
		return nil
	}
}

func i64(f func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a non-negative integer", v)
		}
		*f(c) = n
		return nil
	}
}

func intv(f func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a non-negative integer", v)
		}
		*f(c) = n
		return nil
	}
}

// Load reads the configuration: defaults, then a .env file in the working
// directory if present, then the environment (which wins).
func Load() (Config, error) {
	dotenv, err := godotenv.Read(".env")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Config{}, fmt.Errorf("read .env: %w", err)
	}
	return FromLookup(func(k string) (string, bool) {
		if v, ok := os.LookupEnv(k); ok {
			return v, true
		}
		v, ok := dotenv[k]
		return v, ok
	})
}

// FromLookup builds a Config from defaults overlaid with lookup's values,
// and validates it.
func FromLookup(lookup func(string) (string, bool)) (Config, error) {
	var c Config
	var errs []error
	for _, v := range Vars {
		val := v.Default
		if got, ok := lookup(v.Name); ok && got != "" {
			val = got
		}
		if err := v.set(&c, val); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, c.Validate()
}

// Validate checks values that depend on each other.
func (c Config) Validate() error {
	var errs []error
	switch c.Engine {
	case engine.NameTesseract, engine.NameFake:
	case engine.NameVLLM:
		errs = append(errs, c.validateModelServer()...)
	default:
		errs = append(errs, fmt.Errorf("OCR_ENGINE: %q is unknown (known: tesseract, vllm, fake)", c.Engine))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %q is not debug, info, warn or error", c.LogLevel))
	}
	if c.ConvertWorkers < 1 {
		errs = append(errs, errors.New("CONVERT_WORKERS: must be at least 1"))
	}
	if c.ContentStore == ContentSimpleContent && c.SimpleContentURL == "" {
		errs = append(errs, errors.New("CONTENT_STORE: simple-content needs SIMPLE_CONTENT_URL"))
	}
	if c.LibreOfficeJobs < 1 {
		errs = append(errs, errors.New("LIBREOFFICE_PARALLEL: must be at least 1"))
	}
	if c.ConvertSlice <= 0 {
		errs = append(errs, errors.New("CONVERT_SLICE: must be positive"))
	}
	if c.LibreOfficeMem < 256<<20 {
		errs = append(errs, errors.New("LIBREOFFICE_MEMORY_LIMIT: must be at least 268435456 (LibreOffice needs about 1 GiB)"))
	}
	if c.LibreOfficeTime <= 0 {
		errs = append(errs, errors.New("LIBREOFFICE_TIMEOUT: must be positive"))
	}
	if c.SimpleContentAttempts < 1 {
		errs = append(errs, errors.New("SIMPLE_CONTENT_ATTEMPTS: must be at least 1"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// validateModelServer checks the OCR_ENGINE=vllm settings.
func (c Config) validateModelServer() []error {
	var errs []error
	if c.EngineURL == "" {
		errs = append(errs, errors.New("OCR_ENGINE_URL: OCR_ENGINE=vllm needs the model server's base URL (e.g. http://vllm:8000/v1)"))
	} else if u, err := url.Parse(c.EngineURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("OCR_ENGINE_URL: %q is not an http(s) URL", c.EngineURL))
	}
	if prof, err := engine.LookupProfile(c.Profile); err != nil {
		errs = append(errs, fmt.Errorf("OCR_PROFILE: %w", err))
	} else if err := prof.CheckMode(c.Mode); err != nil {
		errs = append(errs, fmt.Errorf("OCR_MODE: %w", err))
	} else if prof.DefaultModel == "" && c.Model == "" {
		errs = append(errs, fmt.Errorf("OCR_MODEL: profile %s needs the served model name", prof.Name))
	}
	if c.MaxInflight < 1 {
		errs = append(errs, errors.New("OCR_MAX_INFLIGHT: must be at least 1"))
	}
	switch c.FallbackEngine {
	case "", engine.NameTesseract, engine.NameFake:
	default:
		errs = append(errs, fmt.Errorf("OCR_FALLBACK_ENGINE: %q is not tesseract, fake or empty", c.FallbackEngine))
	}
	return errs
}

// Content store choices (CONTENT_STORE).
const (
	ContentAuto          = "auto"
	ContentSimpleContent = "simple-content"
	ContentDir           = "dir"
)

// Content returns the content store the configuration selects:
// ContentSimpleContent or ContentDir.
func (c Config) Content() string {
	if c.ContentStore == ContentAuto || c.ContentStore == "" {
		if c.SimpleContentURL != "" {
			return ContentSimpleContent
		}
		return ContentDir
	}
	return c.ContentStore
}

// Serves reports whether the configuration selects stage s.
func (c Config) Serves(s string) bool { return slices.Contains(c.Stages, s) }

// Recognizers returns the number of recognize workers: RECOGNIZE_WORKERS,
// else for a model server OCR_MAX_INFLIGHT plus an eighth (engine.Workers:
// its workers only wait on the network, and fewer would leave the GPU
// idle; the in-flight limit's Demand decides how many are used), else one
// per CPU core.
func (c Config) Recognizers() int {
	if c.RecognizeWorkers > 0 {
		return c.RecognizeWorkers
	}
	if c.Engine == engine.NameVLLM && c.MaxInflight > 0 {
		return engine.Workers(c.MaxInflight)
	}
	return runtime.NumCPU()
}
