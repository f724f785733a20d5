package docscheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StopTimeout is how long a background block has to exit after SIGTERM
// before its process group is killed.
const StopTimeout = 30 * time.Second

// Sandbox is where blocks run: a directory mirroring the repository, with
// a symlink for each top-level entry except testdata (copied, since the
// directory content store resolves symlinks and keeps sources under its
// root), bin and out (build and run output) and hidden entries.
//
// Its path stays the same for a repository, so the Go build cache, which
// keys compiled packages by directory, serves a block's `go build` from
// the previous run. A lock file next to it keeps two checks apart.
type Sandbox struct {
	root, dir string
	// Unset lists environment variables removed before a block runs.
	Unset []string
	// Log receives progress lines (nil: none).
	Log func(format string, args ...any)

	lock   *os.File
	binDir string // built binaries, copied into bin/ on every Reset
}

// NewSandbox locks and returns the sandbox for the repository at root in
// dir. Close releases it.
func NewSandbox(root, dir string) (*Sandbox, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil, errors.Join(fmt.Errorf("sandbox %s is in use by another docs check: %w", dir, err), lock.Close())
	}
	s := &Sandbox{root: root, dir: dir, lock: lock, binDir: dir + ".bin"}
	if err := os.RemoveAll(s.binDir); err != nil {
		return nil, errors.Join(fmt.Errorf("sandbox: %w", err), s.Close())
	}
	if err := os.MkdirAll(s.binDir, 0o755); err != nil {
		return nil, errors.Join(fmt.Errorf("sandbox: %w", err), s.Close())
	}
	return s, nil
}

// Dir returns the sandbox directory.
func (s *Sandbox) Dir() string { return s.dir }

// Close removes the sandbox's contents and releases its lock.
func (s *Sandbox) Close() error {
	err := errors.Join(os.RemoveAll(s.dir), os.RemoveAll(s.binDir))
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close())
		s.lock = nil
	}
	return err
}

func (s *Sandbox) logf(format string, args ...any) {
	if s.Log != nil {
		s.Log(format, args...)
	}
}

// Reset empties the sandbox and mirrors the repository into it again,
// with the built binaries in bin/.
func (s *Sandbox) Reset() error {
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("sandbox reset: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "bin"), 0o755); err != nil {
		return fmt.Errorf("sandbox reset: %w", err)
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("sandbox reset: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "."), outputs[name]:
		case name == "testdata":
			if err := os.CopyFS(filepath.Join(s.dir, name), os.DirFS(filepath.Join(s.root, name))); err != nil {
				return fmt.Errorf("sandbox reset: copy testdata: %w", err)
			}
		default:
			if err := os.Symlink(filepath.Join(s.root, name), filepath.Join(s.dir, name)); err != nil {
				return fmt.Errorf("sandbox reset: %w", err)
			}
		}
	}
	bins, err := os.ReadDir(s.binDir)
	if err != nil {
		return fmt.Errorf("sandbox reset: %w", err)
	}
	for _, b := range bins {
		if err := copyFile(filepath.Join(s.binDir, b.Name()), filepath.Join(s.dir, "bin", b.Name())); err != nil {
			return fmt.Errorf("sandbox reset: %w", err)
		}
	}
	return nil
}

// Build runs `go build -o bin/NAME PKG` in the sandbox (so that blocks
// building the same package later find it in the build cache) and keeps
// the binary for every Reset.
func (s *Sandbox) Build(ctx context.Context, name, pkg string) error {
	if err := s.Reset(); err != nil {
		return err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join("bin", name), pkg)
	cmd.Dir = s.dir
	cmd.Env = s.env(nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -o bin/%s %s: %w\n%s", name, pkg, err, out)
	}
	s.logf("built bin/%s (%s) in %s", name, pkg, time.Since(start).Round(time.Millisecond))
	return copyFile(filepath.Join(s.dir, "bin", name), filepath.Join(s.binDir, name))
}

// env returns the environment blocks run with: this process's, without
// Unset, with the sandbox's bin first on PATH, plus extra.
func (s *Sandbox) env(extra []string) []string {
	drop := map[string]bool{}
	for _, k := range s.Unset {
		drop[k] = true
	}
	var out []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case drop[k]:
		case k == "PATH":
			out = append(out, "PATH="+filepath.Join(s.dir, "bin")+string(os.PathListSeparator)+v)
		default:
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// Result counts what RunFile did.
type Result struct {
	Ran, Background int
}

// RunFile resets the sandbox and runs the Run and Background blocks of
// one file in order (Covered and Skip blocks are left to Check), with
// NATS_LISTEN and METRICS_ADDR on free loopback ports. Background blocks are stopped
// after the last block. It returns the first failure.
func (s *Sandbox) RunFile(ctx context.Context, blocks []Block) (res Result, err error) {
	if err := s.Reset(); err != nil {
		return res, err
	}
	port, err := freePort()
	if err != nil {
		return res, err
	}
	metricsPort, err := freePort()
	if err != nil {
		return res, err
	}
	env := s.env([]string{"NATS_LISTEN=127.0.0.1:" + port, "METRICS_ADDR=127.0.0.1:" + metricsPort})
	var bg []*process
	defer func() {
		for i := len(bg) - 1; i >= 0; i-- {
			if serr := bg[i].stop(); serr != nil && err == nil {
				err = serr
			}
		}
	}()
	for i, b := range blocks {
		script := filepath.Join(s.dir, fmt.Sprintf(".docs-check-%d.sh", i))
		if err := os.WriteFile(script, []byte(b.Text), 0o644); err != nil {
			return res, err
		}
		timeout := b.Annotation.Timeout
		if timeout == 0 {
			timeout = DefaultTimeout
		}
		switch b.Annotation.Mode {
		case Run:
			start := time.Now()
			out, err := s.run(ctx, script, env, b, timeout)
			if err != nil {
				return res, fmt.Errorf("%s: %w\n--- block ---\n%s--- output ---\n%s", b.Where(), err, b.Text, out)
			}
			res.Ran++
			s.logf("%s: ok in %s", b.Where(), time.Since(start).Round(time.Millisecond))
		case Background:
			p, err := s.start(script, env, b, timeout)
			if err != nil {
				return res, err
			}
			bg = append(bg, p)
			res.Background++
		}
	}
	return res, nil
}

// command returns bash running script in the sandbox, in its own process
// group so that everything it starts can be signalled together.
func (s *Sandbox) command(script string, env []string) *exec.Cmd {
	cmd := exec.Command("bash", "-e", "-o", "pipefail", script)
	cmd.Dir = s.dir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// process is a started block: its command, output, and exit.
type process struct {
	block  Block
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{} // closed when the command has been waited for
	err    error         // Wait's result, once exited is closed
}

// startProcess starts a script in the sandbox. Its exit is awaited until
// its output is closed by every process that holds it — for a Background
// block, until all it started is gone — or, with a non-zero waitDelay, for
// at most that long after the script itself ends.
func (s *Sandbox) startProcess(script string, env []string, b Block, out *syncBuffer, waitDelay time.Duration) (*process, error) {
	cmd := s.command(script, env)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", b.Where(), err)
	}
	p := &process{block: b, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// kill ends the process group at once and waits for the process.
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// run runs a script to completion within timeout; on timeout or ctx's
// end its whole process group is killed.
func (s *Sandbox) run(ctx context.Context, script string, env []string, b Block, timeout time.Duration) (string, error) {
	// A block that leaves a process holding its output fails (WaitDelay).
	p, err := s.startProcess(script, env, b, &syncBuffer{}, 5*time.Second)
	if err != nil {
		return "", err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		p.kill() // nothing a block started may outlive it
		if p.err != nil {
			return p.out.tail(), fmt.Errorf("exit: %w", p.err)
		}
		return p.out.tail(), nil
	case <-timer.C:
		p.kill()
		return p.out.tail(), fmt.Errorf("timed out after %s (annotate the block with timeout=… if it needs longer)", timeout)
	case <-ctx.Done():
		p.kill()
		return p.out.tail(), ctx.Err()
	}
}

// start starts a Background block and waits until its output contains
// the block's Ready text.
func (s *Sandbox) start(script string, env []string, b Block, timeout time.Duration) (*process, error) {
	out := &syncBuffer{watch: b.Annotation.Ready, seen: make(chan struct{})}
	p, err := s.startProcess(script, env, b, out, 0)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-out.seen:
		s.logf("%s: started in the background (ready: %q)", b.Where(), b.Annotation.Ready)
		return p, nil
	case <-p.exited:
		select {
		case <-out.seen: // ready, then gone: stop reports it
			return p, nil
		default:
		}
		return nil, fmt.Errorf("%s: background block exited before it was ready (%v)\n--- output ---\n%s", b.Where(), p.err, out.tail())
	case <-timer.C:
		p.kill()
		return nil, fmt.Errorf("%s: background block did not print %q within %s\n--- output ---\n%s", b.Where(), b.Annotation.Ready, timeout, out.tail())
	}
}

// stop ends a Background block: SIGTERM to its process group, SIGKILL
// after StopTimeout. A block that had already exited is a failure: it was
// meant to run until the file's end. (Its exit status after SIGTERM says
// only that it was stopped.)
func (p *process) stop() error {
	select {
	case <-p.exited:
	default:
		if !exited(p.cmd.Process.Pid) { // not even a zombie waiting to be reaped
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
			timer := time.NewTimer(StopTimeout)
			defer timer.Stop()
			select {
			case <-p.exited:
				return nil
			case <-timer.C:
				p.kill()
				return fmt.Errorf("%s: background block did not stop within %s of SIGTERM\n--- output ---\n%s", p.block.Where(), StopTimeout, p.out.tail())
			}
		}
		p.kill() // the script ended; what it started may not outlive it
	}
	return fmt.Errorf("%s: background block exited before the end of the file (%v)\n--- output ---\n%s", p.block.Where(), p.err, p.out.tail())
}

// exited reports whether process pid has ended: it is a zombie waiting to
// be reaped, or gone (Linux /proc).
func exited(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// syncBuffer collects a process's output; when watch is set, seen is
// closed once the output contains it.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	watch string
	seen  chan struct{}
	fired bool
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.watch != "" && !b.fired && bytes.Contains(b.buf.Bytes(), []byte(b.watch)) {
		b.fired = true
		close(b.seen)
	}
	return n, err
}

func (b *syncBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return tail(b.buf.Bytes(), 8<<10)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, errors.Join(err, l.Close())
}

// copyFile copies src to dst with src's permissions.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read-only: nothing is lost
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode()&fs.ModePerm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}
