// Package backfilltest runs what the backfill tests need for real, in the
// test's process or as its children: a throwaway PostgreSQL cluster with
// simple-content's schema (created by simple-content's own migrations),
// and simple-content's v5 API over any repository.
package backfilltest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// PostgresBinGlob is where Debian and Ubuntu's postgresql packages put the
// server binaries; the newest version found is used.
const PostgresBinGlob = "/usr/lib/postgresql/*/bin"

// Postgres is a running throwaway cluster. Its superuser is "ocrflow",
// trusted on 127.0.0.1 only.
type Postgres struct {
	port int
	dir  string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  []string
}

// postgresBin returns the directory holding initdb and postgres, or "".
func postgresBin() string {
	dirs, _ := filepath.Glob(PostgresBinGlob)
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(p); isExec(filepath.Join(d, "postgres")) {
			return d
		}
	}
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// runAs returns the credential to run the server with: PostgreSQL refuses
// to run as root, so as root it runs as the "postgres" system user (the
// postgresql package creates it), else as "nobody"; otherwise as the
// current user (nil).
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and neither a postgres nor a nobody user exists to run PostgreSQL as")
}

// PostgresMissing says why no cluster can be started here ("" when one
// can): the server binaries are not installed.
func PostgresMissing() string {
	if postgresBin() != "" {
		return ""
	}
	return "SKIPPED: no PostgreSQL server binaries (initdb, postgres) under " + PostgresBinGlob + " or in PATH; install the postgresql package (make test does)"
}

// StartPostgres starts a cluster in a directory of the test's own (its
// data, its unix socket), listening on a free loopback port, and stops it
// when the test ends. It skips the test, visibly, when no PostgreSQL
// server binaries are installed (`make test` installs them: the
// postgresql package).
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := postgresBin()
	if bin == "" {
		t.Skip(PostgresMissing())
	}
	cred, err := runAs()
	require.NoError(t, err)

	dir := t.TempDir()
	if cred != nil {
		// The server's user must reach the directory: open up the test's
		// temp root for traversal and hand the directory over.
		require.NoError(t, os.Chmod(filepath.Dir(dir), 0o711))
		require.NoError(t, os.Chown(dir, int(cred.Uid), int(cred.Gid)))
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "ocrflow", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	out, err := initdb.CombinedOutput()
	require.NoError(t, err, "initdb:\n%s", out)

	port := freePort(t)
	pg := &Postgres{port: port, dir: dir}
	pg.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=50", "-c", "shared_buffers=32MB",
		"-c", "dynamic_shared_memory_type=mmap", "-c", "log_min_messages=warning")
	// Pdeathsig: the server dies with the test binary, even on a crash.
	pg.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	pg.cmd.Dir = dir
	stderr, err := pg.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, pg.cmd.Start(), "start postgres")
	var waitErr error
	exited := make(chan struct{})
	ready := make(chan struct{})
	go pg.readLog(stderr, ready)
	go func() { waitErr = pg.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = pg.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = pg.cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case <-ready:
	case <-exited:
		require.Failf(t, "postgres exited before it was ready", "%v\n%s", waitErr, pg.Log())
	case <-time.After(60 * time.Second):
		require.Failf(t, "postgres not ready within 60s", "%s", pg.Log())
	}
	return pg
}

// readLog keeps the server's log and closes ready at "ready to accept
// connections".
func (pg *Postgres) readLog(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	closed := false
	for sc.Scan() {
		line := sc.Text()
		pg.mu.Lock()
		pg.log = append(pg.log, line)
		pg.mu.Unlock()
		if !closed && strings.Contains(line, "ready to accept connections") {
			close(ready)
			closed = true
		}
	}
}

// Log returns what the server logged so far.
func (pg *Postgres) Log() string {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	return strings.Join(pg.log, "\n")
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// URL returns the connection URL of database db.
func (pg *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://ocrflow@127.0.0.1:%d/%s?sslmode=disable", pg.port, db)
}

// ContentDatabase creates database name with simple-content's schema: the
// schema "content" (simple-content's default), filled by running the
// module's own migrations/postgres/*.sql (their goose Up sections) with
// search_path set to it. It returns the database's URL; the schema is
// not in it (ocrflow's DATABASE_SCHEMA selects it).
func (pg *Postgres) ContentDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, pg.URL("postgres"))
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err)
	require.NoError(t, admin.Close(ctx))

	conn, err := pgx.Connect(ctx, pg.URL(name))
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	_, err = conn.Exec(ctx, "CREATE SCHEMA content; SET search_path TO content")
	require.NoError(t, err)
	for _, m := range migrations(t) {
		_, err := conn.Exec(ctx, m.up)
		require.NoError(t, err, "migration %s", m.name)
	}
	return pg.URL(name)
}

type migration struct{ name, up string }

// migrations reads simple-content's Postgres migrations from the module
// the build uses, in file name order, keeping their goose Up sections.
func migrations(t testing.TB) []migration {
	t.Helper()
	// Ask from inside this module: the test may have changed directory.
	list := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tendant/simple-content")
	if _, self, _, ok := runtime.Caller(0); ok && filepath.IsAbs(self) {
		list.Dir = filepath.Dir(self)
	}
	out, err := list.Output()
	require.NoError(t, err, "locate the simple-content module")
	dir := filepath.Join(strings.TrimSpace(string(out)), "migrations", "postgres")
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no migrations in %s", dir)
	sort.Strings(files)
	var ms []migration
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		up, _, _ := strings.Cut(string(b), "-- +goose Down")
		ms = append(ms, migration{name: filepath.Base(f), up: up})
	}
	return ms
}
