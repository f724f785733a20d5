package api

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// CheckTimeout bounds one readiness probe.
const CheckTimeout = 3 * time.Second

// CheckResult is one dependency's line in the /readyz answer.
type CheckResult struct {
	Name   string `json:"name"`
	Target string `json:"target,omitempty"`
	// Status is "up" or "down".
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	MS     int64  `json:"ms"`
}

// Readiness is the /readyz answer when every dependency is up.
type Readiness struct {
	Status string        `json:"status"`
	Checks []CheckResult `json:"checks"`
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz probes every dependency at once: 200 when all are up, else a 503
// problem that lists them all.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	results := make([]CheckResult, len(s.cfg.Checks))
	var wg sync.WaitGroup
	for i, c := range s.cfg.Checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), CheckTimeout)
			defer cancel()
			start := time.Now()
			err := c.Probe(ctx)
			res := CheckResult{Name: c.Name, Target: c.Target, Status: "up", MS: time.Since(start).Milliseconds()}
			if err != nil {
				res.Status, res.Error = "down", failure.Text(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	var down []string
	for _, res := range results {
		if res.Status != "up" {
			down = append(down, res.Name)
		}
	}
	if len(down) > 0 {
		p := newProblem(r, http.StatusServiceUnavailable, ProblemNotReady, fmt.Sprintf("down: %s", strings.Join(down, ", ")))
		p.Checks = results
		s.sendProblem(w, r, p)
		return
	}
	writeJSON(w, http.StatusOK, Readiness{Status: "ready", Checks: results})
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the API.
func OpenAPI() []byte { return openAPI }

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI) // the client may be gone; nothing to do
}
