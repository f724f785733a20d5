// Package leaktest is the TestMain of every test package that starts
// goroutines: it fails the package when a goroutine outlives its tests.
package leaktest

import (
	"flag"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Main runs the package's tests and then checks, with goleak, that no
// goroutine outside opts' exceptions is left running.
//
// Under -fuzz the check is skipped: the fuzzing engine's own coordinator
// and worker goroutines may still be winding down when the tests return,
// which goleak would report as a leak of ours. Plain go test runs the fuzz
// seeds with the check on.
func Main(m *testing.M, opts ...goleak.Option) {
	if !flag.Parsed() {
		flag.Parse()
	}
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m, opts...)
}
