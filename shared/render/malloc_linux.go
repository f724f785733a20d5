//go:build linux && cgo

package render

/*
#cgo LDFLAGS: -l:libjemalloc_pic.a -lm

// malloc_conf configures jemalloc, which serves every C allocation of the
// process (MuPDF's above all) instead of glibc's malloc. MALLOC_CONF in
// the environment still overrides it.
//
// Rendering a page makes a few buffers of megabytes — the decoded scan,
// the scaled copy, the page pixmap — and frees them again. glibc either
// maps each afresh (faulting in, zeroing and unmapping some 1,700 pages
// per page image: 40 % of the CPU of a scanned page) or, told to keep
// them, fragments its heap until a 3,000-page scan needs 200 MiB. jemalloc
// reuses a freed extent of the same size class, and gives memory back
// that stayed unused for a second: one arena (MuPDF is serialised),
// no thread caches, and no "muzzy" middle state (docs/performance.md,
// "Memory" and "CPU per page").
const char *malloc_conf = "narenas:1,tcache:false,dirty_decay_ms:1000,muzzy_decay_ms:0";
*/
import "C"
