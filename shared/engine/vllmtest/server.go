// Package vllmtest is a fake vLLM server for tests and benchmarks: an
// in-process HTTP server speaking the OpenAI-compatible chat completions
// API the way `vllm serve` does, which checks every request against the
// model's contract (model name, message structure, prompt, image format
// and size, sampling settings, vllm_xargs) and answers in the model's own
// output format with text derived from the page image.
//
// Pages drawn by PageImage carry a marker the server reads, so answers
// name their page (PageText) and tests can check order and clean-up.
// Latency, capacity (queueing or 429 beyond it) and faults (503, hangs
// until the client gives up, dropped connections, repetition loops, empty
// answers, 429) are configurable per request.
package vllmtest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fault is what the server does to one request instead of answering it.
type Fault int

// Faults.
const (
	// FaultNone answers normally.
	FaultNone Fault = iota
	// FaultUnavailable answers 503 at once (a cold GPU behind KServe).
	FaultUnavailable
	// FaultTimeout holds the request, and a capacity slot, until the
	// client gives up or the server closes.
	FaultTimeout
	// FaultDrop closes the connection without an answer.
	FaultDrop
	// FaultLoop answers a repetition loop cut at max_tokens
	// (finish_reason "length").
	FaultLoop
	// FaultEmpty answers an empty page (finish_reason "stop").
	FaultEmpty
	// FaultOverloaded answers 429.
	FaultOverloaded
)

// String names the fault.
func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultUnavailable:
		return "unavailable"
	case FaultTimeout:
		return "timeout"
	case FaultDrop:
		return "drop"
	case FaultLoop:
		return "loop"
	case FaultEmpty:
		return "empty"
	case FaultOverloaded:
		return "overloaded"
	}
	return fmt.Sprintf("fault(%d)", int(f))
}

// Call describes a valid request, for fault decisions.
type Call struct {
	// Marked is true when the image carries a page marker; Tag and Page
	// are then the document tag and page number.
	Marked    bool
	Tag, Page int
	// Attempt counts the requests for this page image so far, this one
	// included (pages are told apart by marker, else by picture).
	Attempt int
	// Correction is the counter-clockwise turn the page needs (0 when
	// upright).
	Correction int
	// Request settings.
	Temperature       float64
	NGram, Window     int
	RepetitionPenalty float64
	Width, Height     int
	MaxTokens         int
}

// Config configures the server. The zero value serves DeepSeek-OCR.
type Config struct {
	// Profile is the contract requests must meet (ProfileDeepSeekOCR when
	// empty).
	Profile string
	// Model is the served model name (default per profile:
	// deepseek-ai/DeepSeek-OCR, deepseek-ai/DeepSeek-OCR-2,
	// allenai/olmOCR-2-7B-1025-FP8, or "model" for generic).
	Model string
	// Mode is the DeepSeek mode whose image size limit is enforced
	// (default gundam, the largest).
	Mode string
	// APIKey, when set, must arrive as "Authorization: Bearer <key>".
	APIKey string
	// PathPrefix is where the API lives (default "/v1"; KServe's Hugging
	// Face runtime serves "/openai/v1").
	PathPrefix string
	// Latency is how long a request holds its slot before the answer.
	Latency time.Duration
	// Capacity is how many requests are served at once (0 = unlimited);
	// more wait in a queue, as in vLLM's scheduler, unless
	// RejectOverCapacity answers them 429 instead.
	Capacity           int
	RejectOverCapacity bool
	// Fault picks a fault per valid request (nil = none). See Mix.
	Fault func(Call) Fault
	// Record keeps every request body (RequestBodies).
	Record bool
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	cfg      Config
	contract contract
	ts       *httptest.Server
	slots    chan struct{}
	closing  chan struct{}
	once     sync.Once

	mu         sync.Mutex
	seq        int
	requests   int
	statuses   map[int]int
	faults     map[Fault]int
	attempts   map[string]int
	answered   map[string]int
	violations []string
	bodies     [][]byte
	inflight   int
	waiting    int
	maxFlight  int
	timeline   []sample
}

type sample struct {
	at       time.Time
	inflight int
	waiting  int
}

// New starts a fake server; Close stops it.
func New(cfg Config) (*Server, error) {
	c, err := contractFor(cfg.Profile)
	if err != nil {
		return nil, err
	}
	if cfg.Model == "" {
		cfg.Model = map[string]string{
			ProfileDeepSeekOCR: "deepseek-ai/DeepSeek-OCR", "": "deepseek-ai/DeepSeek-OCR",
			ProfileDeepSeekOCR2: "deepseek-ai/DeepSeek-OCR-2", ProfileOlmOCR2: "allenai/olmOCR-2-7B-1025-FP8",
			ProfileGeneric: "model",
		}[cfg.Profile]
	}
	if cfg.Mode == "" {
		cfg.Mode = "gundam"
	}
	if _, _, err := c.modeBox(cfg.Mode, 1, 1); c.tile > 0 && err != nil {
		return nil, err
	}
	if cfg.PathPrefix == "" {
		cfg.PathPrefix = "/v1"
	}
	cfg.PathPrefix = "/" + strings.Trim(cfg.PathPrefix, "/")
	s := &Server{
		cfg: cfg, contract: c, closing: make(chan struct{}),
		statuses: map[int]int{}, faults: map[Fault]int{}, attempts: map[string]int{}, answered: map[string]int{},
	}
	if cfg.Capacity > 0 {
		s.slots = make(chan struct{}, cfg.Capacity)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(cfg.PathPrefix+"/chat/completions", s.chat)
	mux.HandleFunc(cfg.PathPrefix+"/models", s.models)
	mux.HandleFunc("/metrics", s.metrics)
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	s.ts = httptest.NewServer(mux)
	return s, nil
}

// URL is the OpenAI base URL (OCR_ENGINE_URL), e.g. http://127.0.0.1:1234/v1.
func (s *Server) URL() string { return s.ts.URL + s.cfg.PathPrefix }

// Model is the served model name.
func (s *Server) Model() string { return s.cfg.Model }

// Close releases held requests and stops the server.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
}

// Violations returns the contract violations seen (requests answered with
// a 4xx because vLLM would refuse them or they break the model's recipe).
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// RequestBodies returns the raw bodies of every chat request (Config.Record).
func (s *Server) RequestBodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

// Stats summarises the traffic so far.
type Stats struct {
	// Requests is the number of chat completion requests received.
	Requests int
	// Statuses counts answers by HTTP status (0 = connection dropped).
	Statuses map[int]int
	// Faults counts injected faults.
	Faults map[Fault]int
	// Attempts counts requests per page (key Token(tag, page), or
	// "img:<hash>" for unmarked pages).
	Attempts map[string]int
	// Answered counts 200 answers with page text per page.
	Answered map[string]int
	// MaxInFlight is the most requests served at once.
	MaxInFlight int
}

// Stats returns a snapshot.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := func(m map[string]int) map[string]int {
		out := make(map[string]int, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	st := Stats{Requests: s.requests, Statuses: map[int]int{}, Faults: map[Fault]int{}, Attempts: cp(s.attempts), Answered: cp(s.answered), MaxInFlight: s.maxFlight}
	for k, v := range s.statuses {
		st.Statuses[k] = v
	}
	for k, v := range s.faults {
		st.Faults[k] = v
	}
	return st
}

// InFlightAverage is the time-weighted mean number of requests being
// served (holding a capacity slot — the GPU's batch) over [from, to].
func (s *Server) InFlightAverage(from, to time.Time) float64 {
	return s.average(from, to, func(p sample) int { return p.inflight })
}

// WaitingAverage is the time-weighted mean number of requests waiting in
// the server's queue for a capacity slot over [from, to].
func (s *Server) WaitingAverage(from, to time.Time) float64 {
	return s.average(from, to, func(p sample) int { return p.waiting })
}

// WaitingMax is the longest the server's queue was over [from, to].
func (s *Server) WaitingMax(from, to time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	most := 0
	for _, p := range s.timeline {
		if !p.at.Before(from) && !p.at.After(to) {
			most = max(most, p.waiting)
		}
	}
	return most
}

// average is the time-weighted mean of a sampled value over [from, to].
func (s *Server) average(from, to time.Time, value func(sample) int) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !to.After(from) {
		return 0
	}
	var area float64
	cur := 0
	prev := from
	for _, p := range s.timeline {
		if p.at.Before(from) {
			cur = value(p)
			continue
		}
		if p.at.After(to) {
			break
		}
		area += float64(cur) * p.at.Sub(prev).Seconds()
		prev, cur = p.at, value(p)
	}
	area += float64(cur) * to.Sub(prev).Seconds()
	return area / to.Sub(from).Seconds()
}

// FirstReach returns when, since the given time, n requests were first
// in service at once (zero if never).
func (s *Server) FirstReach(n int, since time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.timeline {
		if p.inflight >= n && !p.at.Before(since) {
			return p.at
		}
	}
	return time.Time{}
}

// FirstLastStart returns when the first and the last request since the
// given time started being served (zero times when none has).
func (s *Server) FirstLastStart(since time.Time) (first, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := 0
	for _, p := range s.timeline {
		if p.inflight > prev && !p.at.Before(since) {
			if first.IsZero() {
				first = p.at
			}
			last = p.at
		}
		prev = p.inflight
	}
	return first, last
}

func (s *Server) count(status int) {
	s.mu.Lock()
	s.statuses[status]++
	s.mu.Unlock()
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.fail(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "use GET")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data": []map[string]any{{
			"id": s.cfg.Model, "object": "model", "created": time.Now().Unix(), "owned_by": "vllm",
			"root": s.cfg.Model, "max_model_len": s.contract.maxModelLen,
		}},
	})
}

// metrics serves the two gauges of vLLM's /metrics that tell load.
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	running, waiting := s.inflight, s.waiting
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=%q} %d\n", s.cfg.Model, running)
	fmt.Fprintf(w, "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=%q} %d\n", s.cfg.Model, waiting)
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		s.violation(w, &violation{status: http.StatusMethodNotAllowed, msg: "chat completions take POST, got " + r.Method})
		return
	}
	if s.cfg.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+s.cfg.APIKey {
		// vLLM's --api-key middleware answers exactly this.
		s.count(http.StatusUnauthorized)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Unauthorized"})
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.violation(w, bad("Content-Type must be application/json, got %q", ct))
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.violation(w, bad("read body: %v", err))
		return
	}
	if s.cfg.Record {
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		s.mu.Unlock()
	}
	req, v := s.contract.check(body, s.cfg.Model, s.cfg.Mode)
	if v != nil {
		s.violation(w, v)
		return
	}
	call := Call{
		Width: req.w, Height: req.h, MaxTokens: req.maxTokens, NGram: req.ngram, Window: req.win,
		Temperature: *req.req.Temperature,
	}
	if req.req.RepetitionPenalty != nil {
		call.RepetitionPenalty = *req.req.RepetitionPenalty
	}
	key := ""
	if tag, page, corr, ok := ReadMarker(req.img); ok {
		call.Marked, call.Tag, call.Page, call.Correction = true, tag, page, corr
		key = Token(tag, page)
	} else {
		key = fmt.Sprintf("img:%016x", aHash(req.img))
	}
	s.mu.Lock()
	s.attempts[key]++
	call.Attempt = s.attempts[key]
	s.mu.Unlock()

	fault := FaultNone
	if s.cfg.Fault != nil {
		fault = s.cfg.Fault(call)
	}
	if fault != FaultNone {
		s.mu.Lock()
		s.faults[fault]++
		s.mu.Unlock()
	}
	switch fault {
	case FaultDrop:
		s.count(0)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				// Dropping the connection is the fault: a close that
				// fails has nobody to report to.
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case FaultUnavailable:
		s.fail(w, http.StatusServiceUnavailable, "ServiceUnavailableError", "the model is loading")
		return
	case FaultOverloaded:
		s.fail(w, http.StatusTooManyRequests, "TooManyRequestsError", "too many requests")
		return
	}
	if !s.acquire(w, r) {
		return
	}
	defer s.release()
	if fault == FaultTimeout {
		select {
		case <-r.Context().Done():
			s.count(499)
		case <-s.closing:
			s.fail(w, http.StatusServiceUnavailable, "ServiceUnavailableError", "shutting down")
		}
		return
	}
	if s.cfg.Latency > 0 {
		t := time.NewTimer(s.cfg.Latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			s.count(499)
			return
		case <-s.closing:
			t.Stop()
			s.fail(w, http.StatusServiceUnavailable, "ServiceUnavailableError", "shutting down")
			return
		case <-t.C:
		}
	}
	content, finish := s.answer(call, req, fault)
	if fault == FaultNone && call.Marked {
		s.mu.Lock()
		s.answered[key]++
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.seq++
	id := s.seq
	s.mu.Unlock()
	completion := max(1, len(content)/4)
	if finish == "length" {
		completion = req.maxTokens
	}
	s.count(http.StatusOK)
	writeJSON(w, http.StatusOK, map[string]any{
		"id": fmt.Sprintf("chatcmpl-%d", id), "object": "chat.completion", "created": time.Now().Unix(), "model": s.cfg.Model,
		"choices": []map[string]any{{
			"index": 0, "message": map[string]any{"role": "assistant", "content": content, "tool_calls": []any{}},
			"logprobs": nil, "finish_reason": finish, "stop_reason": nil,
		}},
		"usage": map[string]int{"prompt_tokens": req.prompt, "completion_tokens": completion, "total_tokens": req.prompt + completion},
	})
}

// acquire takes a capacity slot, queueing or refusing beyond capacity.
func (s *Server) acquire(w http.ResponseWriter, r *http.Request) bool {
	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
		default:
			if s.cfg.RejectOverCapacity {
				s.fail(w, http.StatusTooManyRequests, "TooManyRequestsError", "server at capacity")
				return false
			}
			s.mu.Lock()
			s.waiting++
			s.timeline = append(s.timeline, sample{time.Now(), s.inflight, s.waiting})
			s.mu.Unlock()
			select {
			case s.slots <- struct{}{}:
			case <-r.Context().Done():
				s.unwait()
				s.count(499)
				return false
			case <-s.closing:
				s.unwait()
				s.fail(w, http.StatusServiceUnavailable, "ServiceUnavailableError", "shutting down")
				return false
			}
			s.unwait()
		}
	}
	s.mu.Lock()
	s.inflight++
	s.maxFlight = max(s.maxFlight, s.inflight)
	s.timeline = append(s.timeline, sample{time.Now(), s.inflight, s.waiting})
	s.mu.Unlock()
	return true
}

func (s *Server) unwait() {
	s.mu.Lock()
	s.waiting--
	s.timeline = append(s.timeline, sample{time.Now(), s.inflight, s.waiting})
	s.mu.Unlock()
}

func (s *Server) release() {
	s.mu.Lock()
	s.inflight--
	s.timeline = append(s.timeline, sample{time.Now(), s.inflight, s.waiting})
	s.mu.Unlock()
	if s.slots != nil {
		<-s.slots
	}
}

// violation answers a refused request and records it.
func (s *Server) violation(w http.ResponseWriter, v *violation) {
	s.mu.Lock()
	s.violations = append(s.violations, fmt.Sprintf("%d: %s", v.status, v.msg))
	s.mu.Unlock()
	typ := "BadRequestError"
	if v.status == http.StatusNotFound {
		typ = "NotFoundError"
	}
	s.fail(w, v.status, typ, v.msg)
}

// fail writes vLLM's error body.
func (s *Server) fail(w http.ResponseWriter, status int, typ, msg string) {
	s.count(status)
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": status}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// maxRequestBytes bounds a request body: a 1920 px page is well under it.
const maxRequestBytes = 32 << 20

func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRequestBytes))
}

// Mix injects faults at fixed rates, e.g. Mix{FaultUnavailable: 0.3,
// FaultTimeout: 0.1}. The choice for a request depends only on the seed,
// the page and the attempt number, not on arrival order, so a run is
// reproducible however requests interleave.
type Mix map[Fault]float64

// Faults returns the Config.Fault function of the mix.
func (m Mix) Faults(seed uint64) func(Call) Fault {
	keys := make([]Fault, 0, len(m))
	for f := range m {
		keys = append(keys, f)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return func(c Call) Fault {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d/%d/%d/%d", seed, c.Tag, c.Page, c.Attempt)
		// FNV alone mixes the last bytes poorly; splitmix64's finaliser
		// spreads them over every bit.
		x := h.Sum64()
		x ^= x >> 30
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 27
		x *= 0x94d049bb133111eb
		x ^= x >> 31
		u := float64(x>>11) / (1 << 53)
		acc := 0.0
		for _, f := range keys {
			acc += m[f]
			if u < acc {
				return f
			}
		}
		return FaultNone
	}
}
