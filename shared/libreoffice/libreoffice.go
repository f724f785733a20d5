// Package libreoffice converts office documents to PDF by running
// LibreOffice headless, so they can go through the PDF path page by page.
//
// Each conversion is its own soffice process with its own throw-away user
// profile (two conversions never share state or a lock file), in its own
// process group so that a timeout kills soffice and everything it started.
// The shared/reference measurements put one conversion at 1.0–1.3 s for a
// 20-page document on this machine kind, most of it start-up.
package libreoffice

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// ErrNotInstalled means the soffice binary was not found.
var ErrNotInstalled = errors.New("libreoffice is not installed")

// Config configures a Converter. Zero fields take the defaults.
type Config struct {
	// Binary is the soffice executable, a path or a name looked up in PATH
	// (default "soffice").
	Binary string
	// Timeout bounds one conversion (default 60 s). When it passes, the
	// process group is killed and the conversion fails permanently.
	Timeout time.Duration
	// Parallel caps the conversions running at once in this process
	// (default 2): each soffice needs about 200 MB and a core.
	Parallel int
	// MemoryBytes caps the address space of soffice and everything it
	// starts (RLIMIT_AS; default 2 GiB). A document that needs more fails
	// to convert instead of exhausting the machine. LibreOffice needs
	// about 1 GiB of address space for an ordinary document.
	MemoryBytes uint64
}

// Converter runs conversions. It is safe for concurrent use.
type Converter struct {
	bin     string
	timeout time.Duration
	memory  uint64
	// prlimit is util-linux's prlimit, when installed: it sets the memory
	// limit on itself and then becomes soffice, so no process of the
	// conversion ever runs without it.
	prlimit string
	slots   chan struct{}
}

// New finds the soffice binary and returns a Converter. It returns an error
// wrapping ErrNotInstalled when the binary cannot be found.
func New(cfg Config) (*Converter, error) {
	if cfg.Binary == "" {
		cfg.Binary = "soffice"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	if cfg.MemoryBytes == 0 {
		cfg.MemoryBytes = 2 << 30
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("%w: %q not found (install libreoffice-writer-nogui, -calc-nogui and -impress-nogui, or set LIBREOFFICE_PATH)", ErrNotInstalled, cfg.Binary)
	}
	prlimit, _ := exec.LookPath("prlimit")
	return &Converter{bin: bin, timeout: cfg.Timeout, memory: cfg.MemoryBytes, prlimit: prlimit, slots: make(chan struct{}, cfg.Parallel)}, nil
}

// ToPDF converts the document at src into a PDF inside dir and returns the
// PDF's path. LibreOffice detects the type from the content, so src needs
// no extension. Scratch files (the profile) are made in dir and removed.
//
// A document LibreOffice cannot load, or cannot convert within the memory
// limit ("Unspecified Application Error"), gives an error wrapping
// failure.ErrValidation; a conversion that outlives the timeout gives one
// wrapping failure.ErrPermanent (a retry would take as long); a cancelled
// ctx gives ctx's error.
func (c *Converter) ToPDF(ctx context.Context, src, dir string) (string, error) {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return "", ctx.Err()
	}
	work, err := os.MkdirTemp(dir, "libreoffice-")
	if err != nil {
		return "", fmt.Errorf("libreoffice: %w", err)
	}
	defer os.RemoveAll(work)
	profile := filepath.Join(work, "profile")
	out := filepath.Join(work, "out")

	runCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	args := []string{c.bin, "--headless", "--invisible", "--norestore", "--nologo",
		"--nodefault", "--nolockcheck", "-env:UserInstallation=file://" + profile,
		"--convert-to", "pdf", "--outdir", out, src}
	if c.prlimit != "" {
		args = append([]string{c.prlimit, "--as=" + strconv.FormatUint(c.memory, 10), "--"}, args...)
	}
	cmd := exec.CommandContext(runCtx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "HOME="+profile, "SAL_USE_VCLPLUGIN=svp")
	var log tail
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Start()
	if runErr == nil && c.prlimit == "" {
		// Without prlimit the limit is set on the process just started,
		// before soffice (a shell script at first) forks soffice.bin,
		// which inherits it.
		lim := unix.Rlimit{Cur: c.memory, Max: c.memory}
		if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_AS, &lim, nil); err != nil {
			_ = cmd.Cancel()
			_ = cmd.Wait()
			return "", fmt.Errorf("libreoffice: memory limit: %w", err)
		}
	}
	if runErr == nil {
		runErr = cmd.Wait()
	}
	if cmd.Process != nil {
		// soffice hands the work to soffice.bin: make sure no part of the
		// group outlives the conversion, whatever the exit status.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if errors.Is(runCtx.Err(), context.DeadlineExceeded) {
		return "", failure.Permanent("libreoffice took longer than %s to convert the document and was stopped", c.timeout)
	}

	base := filepath.Base(src)
	name := strings.TrimSuffix(base, filepath.Ext(base)) + ".pdf"
	pdf := filepath.Join(out, name)
	if err := checkPDF(pdf); err != nil {
		reason := log.reason()
		if runErr != nil {
			reason = strings.TrimSpace(runErr.Error() + "; " + reason)
		}
		return "", failure.Validation("libreoffice could not convert the document (%s)", reason)
	}
	// Move the PDF out of the work dir, which is removed on return.
	dst := filepath.Join(dir, strings.TrimSuffix(base, filepath.Ext(base))+"-libreoffice.pdf")
	if err := os.Rename(pdf, dst); err != nil {
		return "", fmt.Errorf("libreoffice: %w", err)
	}
	return dst, nil
}

// checkPDF reports whether path holds something that starts like a PDF.
func checkPDF(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read-only: nothing is lost
	head := make([]byte, 5)
	if n, _ := f.Read(head); n < 5 || string(head) != "%PDF-" {
		return errors.New("not a PDF")
	}
	return nil
}

// tail keeps the last few KiB a process writes.
type tail struct{ buf []byte }

const tailMax = 4 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailMax {
		t.buf = t.buf[len(t.buf)-tailMax:]
	}
	return len(p), nil
}

// reason picks the line that explains a failure ("Error: source file could
// not be loaded"), skipping start-up noise such as the javaldx warning.
func (t *tail) reason() string {
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "Error") {
			return l
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.Contains(l, "javaldx") {
			return l
		}
	}
	return "no output"
}
