// Package chaos runs ocrflow as real processes — two `ocrflow serve`
// workers and an `ocrflow nats` server with file storage — against
// simple-content's real handlers, S3 (gofakes3) and the fake vLLM, all
// hosted by the test process, which injects faults into every one of them
// and kills, stops and restarts the processes. Its scenarios
// (chaos_test.go, build tag chaos: `make chaos`) check ocrflow's
// guarantees (docs/reliability.md) after each run and write the results
// table into docs/reliability.md.
//
// It is test support: nothing in the product imports it.
package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is an ocrflow subprocess. Its output goes to a log file in its
// directory; it can be killed, stopped and started again with the same
// environment.
type Proc struct {
	Name string
	// Dir holds the process's log and its TMPDIR.
	Dir string
	bin string
	// args and env start it.
	args []string
	env  []string
	// MetricsAddr is where it serves /metrics ("" for none).
	MetricsAddr string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
	starts  int
}

// NewProc prepares (does not start) a process running bin with args and
// env (on top of a minimal environment), in dir.
func NewProc(name, dir, bin string, args, env []string) (*Proc, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("proc %s: %w", name, err)
	}
	p := &Proc{Name: name, Dir: dir, bin: bin, args: args}
	p.env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"TMPDIR=" + filepath.Join(dir, "tmp"), "OMP_THREAD_LIMIT=1",
	}, env...)
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "METRICS_ADDR="); ok {
			p.MetricsAddr = v
		}
	}
	return p, nil
}

// TempDir is the process's TMPDIR.
func (p *Proc) TempDir() string { return filepath.Join(p.Dir, "tmp") }

// LogPath is the file its stdout and stderr go to.
func (p *Proc) LogPath() string { return filepath.Join(p.Dir, "log") }

// Start starts the process (again, after it ended).
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("proc %s: already running", p.Name)
		}
	}
	log, err := os.OpenFile(p.LogPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("proc %s: %w", p.Name, err)
	}
	p.starts++
	fmt.Fprintf(log, "\n=== start %d at %s ===\n", p.starts, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("proc %s: %w", p.Name, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		err := cmd.Wait()
		_ = log.Close()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}(p.done)
	return nil
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL to the process group and waits for the exit.
func (p *Proc) Kill() error { return p.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM and waits up to within for a graceful exit, then kills.
func (p *Proc) Stop(within time.Duration) error {
	if err := p.signal(syscall.SIGTERM, within); err != nil {
		_ = p.Kill()
		return err
	}
	return nil
}

func (p *Proc) signal(sig syscall.Signal, within time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
		return nil
	case <-time.After(within):
		return fmt.Errorf("proc %s: still running %s after %s", p.Name, within, sig)
	}
}

// Exit returns how the last run ended (nil while running or after a clean
// exit).
func (p *Proc) Exit() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// Log returns the process's log so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath())
	return string(b)
}

// WaitLog waits until the log contains text (written since start n of the
// process counts too; callers look for text of the current run).
func (p *Proc) WaitLog(ctx context.Context, text string) error {
	for {
		if strings.Contains(p.Log(), text) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("proc %s: %q not logged: %w", p.Name, text, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Gauges scrapes the process's /metrics and returns the named gauges
// (e.g. go_goroutines, process_open_fds).
func (p *Proc) Gauges(ctx context.Context, names ...string) (map[string]float64, error) {
	if p.MetricsAddr == "" {
		return nil, errors.New("no metrics address")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.MetricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", p.Name, err)
	}
	defer resp.Body.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok || !want[name] {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err == nil {
			out[name] = f
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out, nil
}

// TempFiles lists what is left in the process's TMPDIR: everything but
// the (empty) working root of the running process itself.
func (p *Proc) TempFiles() ([]string, error) {
	var left []string
	own := fmt.Sprintf("ocrflow-%d-", p.pid())
	err := filepath.WalkDir(p.TempDir(), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(path, p.TempDir()+"/")
		if path == p.TempDir() || (d.IsDir() && !strings.Contains(rel, "/") && p.pid() > 0 && strings.HasPrefix(rel, own)) {
			return nil
		}
		left = append(left, rel)
		return nil
	})
	return left, err
}

// PID returns the running process's id (0 when it is not running).
func (p *Proc) PID() int { return p.pid() }

// RSS returns the running process's resident set size in bytes
// (/proc/<pid>/status VmRSS).
func (p *Proc) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// pid returns the running process's id (0 when it is not running).
func (p *Proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	select {
	case <-p.done:
		return 0
	default:
		return p.cmd.Process.Pid
	}
}

// FreeAddr returns a free loopback host:port.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}
