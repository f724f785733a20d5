//go:build linux && cgo

package render

/*
#include <malloc.h>

// oneArena makes glibc's malloc serve every thread from one arena. Left to
// itself it gives each thread that allocates under contention an arena of
// its own (up to eight per core) and keeps what was freed in each; cgo
// calls run on whichever OS thread the goroutine has, so MuPDF's page
// buffers end up spread over many arenas that each keep their high-water
// mark. All MuPDF work is serialised (fitzMu): one arena costs no
// contention. Elsewhere (musl) it does nothing.
static void oneArena(void) {
#ifdef M_ARENA_MAX
	mallopt(M_ARENA_MAX, 1);
#endif
#ifdef M_MMAP_THRESHOLD
	mallopt(M_MMAP_THRESHOLD, 1<<20);
#endif
}
*/
import "C"

// init limits C allocations to one malloc arena: the peak memory of a
// long document then stays where a short one's is (docs/performance.md,
// "Memory").
func init() { C.oneArena() }
