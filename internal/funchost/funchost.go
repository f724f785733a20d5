// Package funchost reproduces what `func run --builder=host` does with a
// Go CloudEvents function, so a test can prove the function still builds
// and serves under func's scaffolding without the func CLI (which cannot be
// built here). It follows knative/func's pkg/scaffolding and
// pkg/functions/runner.go:
//
//  1. Scaffold: a build directory holding a symlink f to the function's
//     root, the instanced-cloudevents main.go (import the root package as f,
//     call ce.Start(f.New())), and a go.mod for module s that requires the
//     root module replaced by ./f plus every require of the root's go.mod,
//     with the root's go.sum; the root's replace directives are not carried
//     over;
//  2. Build: go mod tidy, then go build -o f.bin;
//  3. Start: run f.bin in the function's root with LISTEN_ADDRESS set and
//     wait for /health/readiness to answer 200.
//
// It is test support: nothing in the product imports it.
package funchost

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FuncGo is the func-go module the scaffolding's main imports.
const FuncGo = "knative.dev/func-go"

// zeroVersion is the version func requires the replaced root module at.
const zeroVersion = "v0.0.0-00010101000000-000000000000"

// mainGo is func's templates/go/scaffolding/instanced-cloudevents/main.go
// with the module path substituted for "function".
const mainGo = `package main

import (
	"fmt"
	"os"

	ce "knative.dev/func-go/cloudevents"

	f %q
)

func main() {
	if err := ce.Start(f.New()); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
`

// goMod is what Scaffold needs from the root's go.mod.
type goMod struct {
	module   string
	goLine   string   // e.g. "go 1.26.0"
	requires []string // "path version" of every require
	funcGo   bool     // the root requires knative.dev/func-go
}

// parseGoMod reads the directives Scaffold uses. It refuses replace
// directives: func does not carry them into the scaffolding, so a root that
// needs one would build here and fail under func.
func parseGoMod(b []byte) (goMod, error) {
	var m goMod
	inRequire := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if inRequire {
			if line == ")" {
				inRequire = false
				continue
			}
			m.addRequire(line)
			continue
		}
		fields := strings.Fields(line)
		switch fields[0] {
		case "module":
			if len(fields) != 2 {
				return m, fmt.Errorf("go.mod: bad module line %q", line)
			}
			m.module = strings.Trim(fields[1], `"`)
		case "go":
			m.goLine = line
		case "require":
			if len(fields) == 2 && fields[1] == "(" {
				inRequire = true
				continue
			}
			m.addRequire(strings.TrimSpace(strings.TrimPrefix(line, "require")))
		case "replace":
			return m, fmt.Errorf("go.mod: replace directives are not carried into func's scaffolding: %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("go.mod: %w", err)
	}
	if m.module == "" {
		return m, errors.New("go.mod: no module line")
	}
	return m, nil
}

func (m *goMod) addRequire(line string) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return
	}
	m.requires = append(m.requires, f[0]+" "+f[1])
	if f[0] == FuncGo {
		m.funcGo = true
	}
}

// Scaffold writes func's host-build scaffolding for the function whose
// module root is root into dir, and returns the root's module path. The
// root must require knative.dev/func-go, as func's own scaffolding does.
func Scaffold(dir, root string) (string, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("scaffold: %w", err)
	}
	modBytes, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("scaffold: %w", err)
	}
	m, err := parseGoMod(modBytes)
	if err != nil {
		return "", fmt.Errorf("scaffold: %w", err)
	}
	if !m.funcGo {
		return "", fmt.Errorf("scaffold: %s/go.mod does not require %s", root, FuncGo)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("scaffold: %w", err)
	}

	var mod strings.Builder
	fmt.Fprintf(&mod, "module s\n\n")
	if m.goLine != "" {
		fmt.Fprintf(&mod, "%s\n\n", m.goLine)
	}
	fmt.Fprintf(&mod, "replace %s => ./f\n\nrequire (\n\t%s %s\n", m.module, m.module, zeroVersion)
	for _, r := range m.requires {
		fmt.Fprintf(&mod, "\t%s\n", r)
	}
	fmt.Fprintf(&mod, ")\n")

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("scaffold: %w", err)
	}
	for name, body := range map[string][]byte{
		"go.mod":  []byte(mod.String()),
		"go.sum":  sum,
		"main.go": fmt.Appendf(nil, mainGo, m.module),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return "", fmt.Errorf("scaffold: %w", err)
		}
	}
	if err := os.Symlink(root, filepath.Join(dir, "f")); err != nil {
		return "", fmt.Errorf("scaffold: %w", err)
	}
	return m.module, nil
}

// Build runs go mod tidy and go build -o f.bin in the scaffolding dir, as
// the host runner does (with GOWORK=off: a go.work above the function would
// otherwise capture the build), and returns the binary's path. The go
// tool's output is returned in the error when a step fails.
func Build(ctx context.Context, dir string) (string, error) {
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", "f.bin", "."}} {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return filepath.Join(dir, "f.bin"), nil
}

// Process is a running function binary.
type Process struct {
	// URL is the function's base URL, e.g. http://127.0.0.1:40123.
	URL  string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // Wait's result, set before done is closed
}

// Start runs bin in dir (func runs it in the function's root) with env
// plus LISTEN_ADDRESS on a free loopback port, and waits until
// /health/readiness answers 200 READY. It fails when the process exits or
// ctx ends first; the process is then stopped.
func Start(ctx context.Context, bin, dir string, env []string) (*Process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p := &Process{URL: "http://" + addr, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Dir = dir
	p.cmd.Env = append(append([]string{}, env...), "LISTEN_ADDRESS="+addr)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	if err := p.waitReady(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = p.Stop(stopCtx)
		return nil, fmt.Errorf("%w\noutput:\n%s", err, p.Output())
	}
	return p, nil
}

// waitReady polls /health/readiness every millisecond until it answers
// 200 READY, so that Start returns within a millisecond of readiness (the
// bench times cold starts with it).
func (p *Process) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var last string // the last readiness answer, for the error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/health/readiness", nil)
		if err != nil {
			return fmt.Errorf("readiness: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) == "READY" {
				return nil
			}
			last = fmt.Sprintf("%d %q", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("function exited before it was ready: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("function not ready (last readiness answer: %s): %w", last, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop sends SIGTERM, as func does on Ctrl-C, and waits for the process
// to exit; it kills the process if ctx ends first. It returns the exit
// error, if any.
func (p *Process) Stop(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal function: %w", err)
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("function did not stop after SIGTERM: %w", ctx.Err())
	}
}

// Output returns what the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// freeAddr returns a loopback address with a port that was free a moment
// ago (func's runner picks its port the same way).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	return addr, nil
}

// syncBuffer is a bytes.Buffer safe for the process's concurrent writes
// and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
