// Package tmpspace is a process's temporary working space on local disk:
// a root directory of its own (<base>/ocrflow-<pid>-<random>), per-job
// directories under it that are removed whatever happens to the job, a
// sweep at start-up of what dead processes left behind and of ocrflow's
// own temporaries older than an hour, and a floor of free space below which new work is
// refused as transient — so it is redelivered later, or to another
// process, instead of failing for want of disk.
package tmpspace

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// prefix starts the name of every process root.
const prefix = "ocrflow-"

// leftovers start the names of the short-lived temporaries ocrflow's
// packages make directly in the base directory when they are given no
// root: render's named links ("ocrflow-open-"), the API's synchronous
// uploads ("ocrflow-api-"), simple-content's uploads ("ocrflow-upload-")
// and finalize's copies of a source ("ocrflow-source-"). Nothing else
// named ocrflow-* is the sweep's to remove: `ocrflow run` keeps its NATS
// store and scratch space in an ocrflow-run-* directory for as long as
// the run lasts, hours on a long backfill, and other tools keep caches
// there (the benchmark's generated documents).
var leftovers = []string{"ocrflow-open-", "ocrflow-api-", "ocrflow-upload-", "ocrflow-source-"}

// MaxAge is how old a leftover must be for the sweep to remove it even
// though its process may still be alive: no job keeps a directory that
// long (a convert delivery lasts at most its slice).
const MaxAge = time.Hour

// Space is a process's root under the base temp directory.
type Space struct {
	root    string
	minFree uint64
	log     *slog.Logger
}

// Open sweeps base and creates this process's root in it. minFree is the
// free space (bytes) below which Dir refuses new work (0 = no floor).
func Open(base string, minFree uint64, log *slog.Logger) (*Space, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if base == "" {
		base = os.TempDir()
	}
	if removed, err := Sweep(base, MaxAge, time.Now()); err != nil {
		log.Warn("temp sweep incomplete", "dir", base, "error", err)
	} else if len(removed) > 0 {
		log.Info("temp sweep removed leftovers", "dir", base, "removed", removed)
	}
	root, err := os.MkdirTemp(base, prefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("temp space: %w", err)
	}
	return &Space{root: root, minFree: minFree, log: log}, nil
}

// Root returns the process's root directory.
func (s *Space) Root() string { return s.root }

// Dir makes a new directory for one piece of work (pattern as for
// os.MkdirTemp) and returns it with the function that removes it; call
// that in a defer, so the directory goes on success, failure, cancellation
// and panic alike. When free space is below the floor it refuses with a
// transient error.
func (s *Space) Dir(pattern string) (string, func(), error) {
	if err := s.check(); err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp(s.root, pattern)
	if err != nil {
		return "", nil, failure.Transient("temp dir: %v", err)
	}
	return dir, func() {
		if err := os.RemoveAll(dir); err != nil {
			s.log.Warn("temp dir not removed; the next start-up sweep will", "dir", dir, "error", err)
		}
	}, nil
}

// check refuses when the root's filesystem has less than the floor free.
func (s *Space) check() error {
	if s.minFree == 0 {
		return nil
	}
	free, err := Free(s.root)
	if err != nil {
		return nil // cannot tell: do not refuse work on a guess
	}
	if free < s.minFree {
		return failure.Transient("temp space low: %d bytes free in %s, below MIN_FREE_DISK_BYTES=%d; refusing new work here", free, s.root, s.minFree)
	}
	return nil
}

// Close removes the root and everything in it.
func (s *Space) Close() error {
	if err := os.RemoveAll(s.root); err != nil {
		return fmt.Errorf("temp space: %w", err)
	}
	return nil
}

// Free returns the bytes available to this user on dir's filesystem.
func Free(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Sweep removes, from base, the roots of ocrflow processes that are no
// longer running, and any other ocrflow leftover (a live root's entries,
// or one of the temporaries named in leftovers outside any root) last
// modified more than maxAge before now. It returns what it removed.
func Sweep(base string, maxAge time.Duration, now time.Time) ([]string, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("sweep %s: %w", base, err)
	}
	var removed []string
	var errs []error
	remove := func(p string) {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
			return
		}
		removed = append(removed, p)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		p := filepath.Join(base, name)
		if pid, ok := rootPID(name); ok && e.IsDir() {
			if pid == os.Getpid() {
				continue
			}
			if !alive(pid) {
				remove(p)
				continue
			}
			// A live process's root: only what it forgot long ago.
			inner, err := os.ReadDir(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, in := range inner {
				if old(in, maxAge, now) {
					remove(filepath.Join(p, in.Name()))
				}
			}
			continue
		}
		if isLeftover(name) && old(e, maxAge, now) {
			remove(p)
		}
	}
	return removed, errors.Join(errs...)
}

// isLeftover reports whether name is one of the temporaries in leftovers.
func isLeftover(name string) bool {
	for _, l := range leftovers {
		if strings.HasPrefix(name, l) {
			return true
		}
	}
	return false
}

// old reports whether e was last modified more than maxAge before now.
func old(e os.DirEntry, maxAge time.Duration, now time.Time) bool {
	info, err := e.Info()
	return err == nil && now.Sub(info.ModTime()) > maxAge
}

// alive reports whether a process with this pid exists.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// rootPID returns the pid in a process root's name (ocrflow-<pid>-<rand>).
func rootPID(name string) (int, bool) {
	pid, _, ok := strings.Cut(strings.TrimPrefix(name, prefix), "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(pid)
	return n, err == nil
}
