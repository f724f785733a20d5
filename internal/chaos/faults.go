package chaos

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Rule injects one kind of fault into the requests it matches.
type Rule struct {
	// Name labels the rule in the results ("content 5xx on fetch").
	Name string
	// Match selects requests (nil: all).
	Match func(r *http.Request) bool
	// Rate is the share of matching requests hit (0–1).
	Rate float64
	// Status answers with this status instead of serving (0: serve).
	Status int
	// Delay holds the request this long before serving (or failing) it.
	Delay time.Duration
	// Hang holds the request until the client gives up (a timeout as
	// the client sees it), at most this long, then answers 504.
	Hang time.Duration
	// Drop closes the connection without an answer.
	Drop bool
}

// Faults is an HTTP middleware that applies rules; safe for concurrent
// use, and rules can be swapped while it serves.
type Faults struct {
	name  string
	rules atomic.Pointer[[]Rule]
	rng   *rand.Rand
	rngMu sync.Mutex

	mu    sync.Mutex
	fired map[string]int
	hold  *hold
}

// hold parks the first request a scenario wants to catch in flight.
type hold struct {
	match   func(r *http.Request) bool
	caught  chan *http.Request
	release chan struct{}
	taken   bool
}

// NewFaults returns a middleware with no rules; seed makes its choices
// reproducible.
func NewFaults(name string, seed uint64) *Faults {
	f := &Faults{name: name, fired: map[string]int{}}
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	f.rng = rand.New(rand.NewPCG(seed, h.Sum64()))
	f.rules.Store(&[]Rule{})
	return f
}

// Set replaces the rules.
func (f *Faults) Set(rules ...Rule) { f.rules.Store(&rules) }

// Clear removes every rule (and releases a held request).
func (f *Faults) Clear() {
	f.Set()
	f.mu.Lock()
	h := f.hold
	f.hold = nil
	f.mu.Unlock()
	if h != nil {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	}
}

// Hold parks the first request match selects from now on; the request
// arrives on the returned channel, and stays parked until release is
// closed (then it is served) or its client goes away.
func (f *Faults) Hold(match func(r *http.Request) bool) (caught <-chan *http.Request, release chan struct{}) {
	h := &hold{match: match, caught: make(chan *http.Request, 1), release: make(chan struct{})}
	f.mu.Lock()
	f.hold = h
	f.mu.Unlock()
	return h.caught, h.release
}

// Fired returns how many faults each rule injected.
func (f *Faults) Fired() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.fired))
	for k, v := range f.fired {
		out[k] = v
	}
	return out
}

// Summary describes the injected faults ("content 5xx on fetch ×12, …").
func (f *Faults) Summary() string {
	var parts []string
	for k, v := range f.Fired() {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, v))
	}
	return strings.Join(sortedStrings(parts), ", ")
}

func (f *Faults) roll() float64 {
	f.rngMu.Lock()
	defer f.rngMu.Unlock()
	return f.rng.Float64()
}

// Middleware wraps next with the faults.
func (f *Faults) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		h := f.hold
		if h != nil && !h.taken && h.match(r) {
			h.taken = true
		} else {
			h = nil
		}
		f.mu.Unlock()
		if h != nil {
			// Read the body first: only then does the server watch the
			// connection, and cancel the request when its client dies.
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			h.caught <- r
			select {
			case <-h.release:
			case <-r.Context().Done():
				return
			}
		}
		for _, rule := range *f.rules.Load() {
			if rule.Match != nil && !rule.Match(r) {
				continue
			}
			if f.roll() >= rule.Rate {
				continue
			}
			f.mu.Lock()
			f.fired[rule.Name]++
			f.mu.Unlock()
			if rule.Delay > 0 {
				select {
				case <-time.After(rule.Delay):
				case <-r.Context().Done():
					return
				}
			}
			switch {
			case rule.Drop:
				if hj, ok := w.(http.Hijacker); ok {
					if conn, _, err := hj.Hijack(); err == nil {
						_ = conn.Close() // the fault is the dropped connection
						return
					}
				}
				http.Error(w, "dropped", http.StatusBadGateway)
				return
			case rule.Hang > 0:
				select {
				case <-time.After(rule.Hang):
					http.Error(w, "chaos: hung", http.StatusGatewayTimeout)
				case <-r.Context().Done():
				}
				return
			case rule.Status != 0:
				http.Error(w, "chaos: injected "+rule.Name, rule.Status)
				return
			}
			break // a pure delay: serve it
		}
		next.ServeHTTP(w, r)
	})
}
