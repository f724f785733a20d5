package app

import (
	"os"
	"runtime/debug"
)

// ConvertGCPercent is the garbage collector's target (GOGC) of a process
// that serves convert, unless GOGC is set: 50 instead of Go's 100.
//
// Convert allocates a few megabytes per page (go-fitz hands the page over
// as a fresh RGBA image and a copy of it) and keeps little: the heap's
// peak is its live part plus the garbage of the pages rendered since the
// last collection. At 100 the peak is twice the live heap, and the live
// heap still moves with what the process holds at the moment — JetStream's
// write cache of its current message block (up to 8 MiB), a finishing
// job's page records — so the peak RSS of a 3,000-page document was 1.29
// times a 50-page one's; at 50 it is 1.14–1.25 (three runs), for about 10 ms
// more CPU a rendered page (docs/performance.md, "Memory").
const ConvertGCPercent = 50

// tuneGC sets ConvertGCPercent for the process, unless GOGC is set.
// Setting it again (another App in the same process) changes nothing.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(ConvertGCPercent)
	}
}
