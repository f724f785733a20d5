//go:build chaos || soak

package chaos_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ocrflow/ocrflow/internal/chaos"
)

// warmTag numbers the warm-up documents; faults spare them.
const warmTag = 90

var (
	bin       string
	resultsMu sync.Mutex
	results   []chaos.Result
)

func TestMain(m *testing.M) {
	// simple-content's handlers log every request on the default logger.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	dir, err := os.MkdirTemp("", "ocrflow-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err = chaos.Build(context.Background(), "../..", dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if path := os.Getenv("CHAOS_RESULTS"); path != "" && len(results) > 0 {
		if err := chaos.WriteTable(path, chaos.Table(results, time.Now())); err != nil {
			fmt.Fprintln(os.Stderr, "write results:", err)
			code = 1
		}
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
