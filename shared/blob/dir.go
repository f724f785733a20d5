package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/ocrflow/ocrflow/shared/scratch"
)

// Dir is a Store on a local directory. Several processes on one host may
// share it: puts are write-then-rename, and Create uses O_EXCL, which is
// atomic on local filesystems.
type Dir struct {
	root string
}

// NewDir returns a store rooted at dir, creating it if needed.
func NewDir(dir string) (*Dir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("blob dir: %w", err)
	}
	return &Dir{root: abs}, nil
}

// Root returns the directory the store writes to.
func (d *Dir) Root() string { return d.root }

func (d *Dir) path(key string) (string, error) {
	if !scratch.ValidKey(key) {
		return "", fmt.Errorf("blob key %q is not a clean relative key", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put stores r under key, replacing any previous object atomically.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	tmp, err := d.writeTemp(ctx, p, r)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Create stores r under key only if key does not exist yet; otherwise it
// returns scratch.ErrExists. The object appears atomically and complete.
func (d *Dir) Create(ctx context.Context, key string, r io.Reader) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	tmp, err := d.writeTemp(ctx, p, r)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// os.Link fails with EEXIST if p exists: an atomic create-if-absent that
	// never exposes a partly written object.
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", key, scratch.ErrExists)
		}
		return fmt.Errorf("create %s: %w", key, err)
	}
	return nil
}

func (d *Dir) writeTemp(ctx context.Context, p string, r io.Reader) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	// The directory usually exists: make it only when the create says it
	// does not (a stat per put is a syscall per object saved).
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", fmt.Errorf("put: %w", err)
		}
		f, err = os.CreateTemp(filepath.Dir(p), ".tmp-*")
	}
	if err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("put %s: %w", filepath.Base(p), err)
	}
	return f.Name(), nil
}

// Get opens the object under key; the caller must Close it.
func (d *Dir) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rc, err := open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get %s: %w", key, scratch.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return rc, nil
}

// smallObject is the most Get reads into memory at once; larger objects
// are read from their open file.
const smallObject = 64 << 10

// open opens the file at p for reading. Most objects are small (records,
// page markdown, sidecars): those are read whole with plain system calls
// — open, fstat, read, close — and returned from memory, which spares
// the runtime poller's bookkeeping for a file read once (a quarter of the
// system calls of os.Open and a read to EOF). Larger ones are returned
// as their *os.File.
func open(p string) (io.ReadCloser, error) {
	fd, err := ignoringEINTR(func() (int, error) { return syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0) })
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		_ = syscall.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Size > smallObject {
		return os.NewFile(uintptr(fd), p), nil
	}
	buf := make([]byte, st.Size)
	n := 0
	for n < len(buf) {
		m, err := ignoringEINTR(func() (int, error) { return syscall.Read(fd, buf[n:]) })
		if err != nil {
			_ = syscall.Close(fd)
			return nil, &fs.PathError{Op: "read", Path: p, Err: err}
		}
		if m == 0 {
			break // shorter than fstat said
		}
		n += m
	}
	_ = syscall.Close(fd) // read-only: nothing is lost
	return memObject{bytes.NewReader(buf[:n])}, nil
}

// memObject is an object read into memory; like a file it can be read
// at any offset (io.ReaderAt) and seeked.
type memObject struct{ *bytes.Reader }

// Close does nothing: the object is in memory.
func (memObject) Close() error { return nil }

func ignoringEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}

// Exists reports whether key exists.
func (d *Dir) Exists(ctx context.Context, key string) (bool, error) {
	p, err := d.path(key)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("stat %s: %w", key, err)
	}
}

// List returns the keys that start with prefix, sorted.
func (d *Dir) List(ctx context.Context, prefix string) ([]string, error) {
	dir := "" // the directory holding the keys: prefix up to its last slash
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dir = prefix[:i]
	}
	start := d.root
	if dir != "" {
		if !scratch.ValidKey(dir) {
			return nil, fmt.Errorf("list %q: not a clean prefix", prefix)
		}
		start = filepath.Join(d.root, filepath.FromSlash(dir))
	}
	var keys []string
	err := filepath.WalkDir(start, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if de.IsDir() || strings.HasPrefix(de.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		k := filepath.ToSlash(rel)
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	sort.Strings(keys)
	return keys, ctx.Err()
}

// DeletePrefix removes every object under prefix (used to clean up a job's
// scratch space).
func (d *Dir) DeletePrefix(ctx context.Context, prefix string) error {
	prefix = strings.TrimSuffix(prefix, "/")
	if !scratch.ValidKey(prefix) {
		return fmt.Errorf("delete %q: not a clean prefix", prefix)
	}
	if err := os.RemoveAll(filepath.Join(d.root, filepath.FromSlash(prefix))); err != nil {
		return fmt.Errorf("delete %s: %w", prefix, err)
	}
	return ctx.Err()
}
