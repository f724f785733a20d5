package render

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/ocrflow/ocrflow/shared/failure"
)

// Isolation configures rendering in a child process (RENDER_ISOLATION=process).
// The child is this same binary started with ChildArgs and the environment
// variable ChildEnv=1; its main must call ServeChild. A hostile document can
// crash MuPDF itself (a SIGSEGV no recover catches); in a child that fails
// the one document with a permanent error and the instance lives on.
type Isolation struct {
	Enabled bool
	// MemoryBytes caps the child's address space (RLIMIT_AS; 0 = 2 GiB).
	MemoryBytes int64
	// CallTimeout bounds each open or page call (0 = 60 s); the child is
	// killed when it runs over.
	CallTimeout time.Duration
	// Command is the executable (default os.Executable()) and ChildArgs its
	// arguments (default ["__render"]).
	Command   string
	ChildArgs []string
}

// ChildEnv marks a process started as a render child.
const ChildEnv = "OCRFLOW_RENDER_CHILD"

const childMemEnv = "OCRFLOW_RENDER_CHILD_MEM"

type childReq struct {
	Op     string // open | pages | render | html
	Path   string
	Format Format
	Page   int
	Target Target
}

type childResp struct {
	Err        string
	Validation bool
	Pages      int
	W, H       int
	Pix        []byte
	Size       Size
	HTML       string
	Bounds     image.Rectangle
}

type childDoc struct {
	iso   Isolation
	cmd   *exec.Cmd
	enc   *gob.Encoder
	dec   *gob.Decoder
	stdin io.Closer
	pages int
	path  string
}

func openChild(ctx context.Context, path string, format Format, iso Isolation) (*childDoc, error) {
	if iso.MemoryBytes <= 0 {
		iso.MemoryBytes = 2 << 30
	}
	if iso.CallTimeout <= 0 {
		iso.CallTimeout = 60 * time.Second
	}
	exe := iso.Command
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("render child: %w", err)
		}
	}
	args := iso.ChildArgs
	if args == nil {
		args = []string{"__render"}
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), ChildEnv+"=1", fmt.Sprintf("%s=%d", childMemEnv, iso.MemoryBytes))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("render child: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("render child: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("render child: %w", err)
	}
	c := &childDoc{iso: iso, cmd: cmd, enc: gob.NewEncoder(stdin), dec: gob.NewDecoder(stdout), stdin: stdin, path: path}
	resp, err := c.call(ctx, childReq{Op: "open", Path: path, Format: format})
	if err != nil {
		c.close()
		return nil, err
	}
	c.pages = resp.Pages
	return c, nil
}

// call sends one request and waits for its answer, killing the child when
// it crashes or runs past the call timeout.
func (c *childDoc) call(ctx context.Context, req childReq) (childResp, error) {
	ctx, cancel := context.WithTimeout(ctx, c.iso.CallTimeout)
	defer cancel()
	done := make(chan struct{})
	var resp childResp
	var err error
	go func() {
		defer close(done)
		if err = c.enc.Encode(req); err == nil {
			err = c.dec.Decode(&resp)
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
		_ = c.cmd.Process.Kill()
		<-done
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return resp, failure.Permanent("rendering %s took longer than %s; the document was abandoned", req.Op, c.iso.CallTimeout)
		}
		return resp, ctx.Err()
	}
	if err != nil {
		// The child died: wait for its status to say how.
		_ = c.cmd.Process.Kill()
		werr := c.cmd.Wait()
		c.cmd = nil
		return resp, failure.Permanent("the document crashed the renderer (%v) during %s", exitReason(werr), req.Op)
	}
	if resp.Err != "" {
		if resp.Validation {
			return resp, failure.Validation("%s", strings.TrimPrefix(resp.Err, failure.ErrValidation.Error()+": "))
		}
		return resp, failure.Permanent("%s", resp.Err)
	}
	return resp, nil
}

func exitReason(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal " + ws.Signal().String()
		}
		return exit.String()
	}
	if err == nil {
		return "exited"
	}
	return err.Error()
}

func (c *childDoc) numPages() int { return c.pages }

func (c *childDoc) render(i int, t Target) (*image.RGBA, Size, error) {
	if c.cmd == nil {
		return nil, Size{}, failure.Permanent("the renderer for this document has already crashed")
	}
	resp, err := c.call(context.Background(), childReq{Op: "render", Page: i, Target: t})
	if err != nil {
		return nil, Size{}, err
	}
	img := image.NewRGBA(image.Rect(0, 0, resp.W, resp.H))
	if len(resp.Pix) != len(img.Pix) {
		return nil, Size{}, failure.Permanent("the renderer returned %d bytes for a %dx%d page", len(resp.Pix), resp.W, resp.H)
	}
	img.Pix = resp.Pix
	return img, resp.Size, nil
}

func (c *childDoc) html(i int) (string, image.Rectangle, error) {
	if c.cmd == nil {
		return "", image.Rectangle{}, failure.Permanent("the renderer for this document has already crashed")
	}
	resp, err := c.call(context.Background(), childReq{Op: "html", Page: i})
	return resp.HTML, resp.Bounds, err
}

func (c *childDoc) close() {
	if c.cmd == nil {
		return
	}
	// The child exits on EOF. Should closing fail, the wait below still
	// ends it: it kills the child after five seconds.
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	c.cmd = nil
}

// ServeChild is the main of a render child: it applies the memory limit
// and answers requests on r/w until r ends. Call it from main (and from
// TestMain) when the ChildEnv variable is "1".
func ServeChild(r io.Reader, w io.Writer) error {
	if v := os.Getenv(childMemEnv); v != "" {
		var limit uint64
		if _, err := fmt.Sscan(v, &limit); err == nil && limit > 0 {
			_ = syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit})
		}
	}
	dec, enc := gob.NewDecoder(r), gob.NewEncoder(w)
	var doc pager
	defer func() {
		if doc != nil {
			doc.close()
		}
	}()
	for {
		var req childReq
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("render child: %w", err)
		}
		var resp childResp
		var err error
		switch req.Op {
		case "open":
			if doc, err = openFitz(req.Path, req.Format); err == nil {
				resp.Pages = doc.numPages()
			}
		case "render":
			var img *image.RGBA
			if img, resp.Size, err = doc.render(req.Page, req.Target); err == nil {
				resp.W, resp.H, resp.Pix = img.Bounds().Dx(), img.Bounds().Dy(), img.Pix
			}
		case "html":
			resp.HTML, resp.Bounds, err = doc.html(req.Page)
		default:
			err = fmt.Errorf("unknown request %q", req.Op)
		}
		if err != nil {
			resp.Err = err.Error()
			resp.Validation = errors.Is(err, failure.ErrValidation)
		}
		if err := enc.Encode(resp); err != nil {
			return fmt.Errorf("render child: %w", err)
		}
	}
}
