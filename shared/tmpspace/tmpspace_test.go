package tmpspace_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/failure"
	"github.com/ocrflow/ocrflow/shared/tmpspace"
)

// deadPID returns the pid of a process that has ended.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

func touch(t *testing.T, path string, age time.Duration) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte("x"), 0o644))
	at := time.Now().Add(-age)
	require.NoError(t, os.Chtimes(path, at, at))
}

func TestSweep(t *testing.T) {
	base := t.TempDir()
	dead := filepath.Join(base, "ocrflow-"+strconv.Itoa(deadPID(t))+"-12345")
	live := filepath.Join(base, "ocrflow-"+strconv.Itoa(os.Getppid())+"-67890")
	touch(t, filepath.Join(dead, "job-1-123", "source"), time.Minute)
	touch(t, filepath.Join(live, "fresh"), time.Minute)
	touch(t, filepath.Join(live, "forgotten"), 2*time.Hour)
	touch(t, filepath.Join(base, "ocrflow-open-77", "document.pdf"), time.Minute)
	touch(t, filepath.Join(base, "ocrflow-open-78"), 2*time.Hour)
	touch(t, filepath.Join(base, "ocrflow-upload-79"), 2*time.Hour)
	touch(t, filepath.Join(base, "someone-else"), 5*time.Hour)
	// ocrflow-* that is not the sweep's: a long `ocrflow run`'s work
	// directory (its NATS store and scratch space), a tool's cache.
	run := filepath.Join(base, "ocrflow-run-4242")
	touch(t, filepath.Join(run, "nats", "jetstream"), 3*time.Hour)
	require.NoError(t, os.Chtimes(run, time.Now().Add(-3*time.Hour), time.Now().Add(-3*time.Hour)))
	touch(t, filepath.Join(base, "ocrflow-bench-docs-v1", "scanned-3000.pdf"), 5*time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(base, "ocrflow-bench-docs-v1"), time.Now().Add(-5*time.Hour), time.Now().Add(-5*time.Hour)))

	removed, err := tmpspace.Sweep(base, tmpspace.MaxAge, time.Now())
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{
		dead, filepath.Join(live, "forgotten"), filepath.Join(base, "ocrflow-open-78"), filepath.Join(base, "ocrflow-upload-79"),
	}, removed)
	for _, kept := range []string{
		filepath.Join(live, "fresh"), filepath.Join(base, "ocrflow-open-77"), filepath.Join(base, "someone-else"),
		filepath.Join(run, "nats", "jetstream"), filepath.Join(base, "ocrflow-bench-docs-v1", "scanned-3000.pdf"),
	} {
		_, err := os.Stat(kept)
		assert.NoError(t, err, "kept: %s", kept)
	}
	assert.NoDirExists(t, dead, "a dead process's root goes whole, however young")
}

func TestSpace_dirs_go_whatever_happens(t *testing.T) {
	base := t.TempDir()
	s, err := tmpspace.Open(base, 0, nil)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(s.Root(), filepath.Join(base, "ocrflow-"+strconv.Itoa(os.Getpid())+"-")), "root %s", s.Root())
	other, err := tmpspace.Open(base, 0, nil)
	require.NoError(t, err)
	assert.NotEqual(t, s.Root(), other.Root(), "two spaces of one process do not share a root")
	require.NoError(t, other.Close())

	for _, tc := range []struct {
		name string
		work func(dir string)
	}{
		{"success", func(string) {}},
		{"failure", func(dir string) { touch(t, filepath.Join(dir, "half-written"), 0) }},
		{"panic", func(dir string) { touch(t, filepath.Join(dir, "x"), 0); panic("boom") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dir string
			func() {
				defer func() { _ = recover() }()
				d, release, err := s.Dir("job-")
				require.NoError(t, err)
				dir = d
				defer release()
				tc.work(d)
			}()
			assert.NoDirExists(t, dir)
		})
	}
	entries, err := os.ReadDir(s.Root())
	require.NoError(t, err)
	assert.Empty(t, entries)
	require.NoError(t, s.Close())
	assert.NoDirExists(t, s.Root())
}

func TestSpace_refuses_work_when_the_disk_is_nearly_full(t *testing.T) {
	base := t.TempDir()
	free, err := tmpspace.Free(base)
	require.NoError(t, err)
	s, err := tmpspace.Open(base, free*2+1<<30, nil)
	require.NoError(t, err)
	_, _, err = s.Dir("job-")
	require.Error(t, err)
	assert.True(t, failure.Retryable(err), "low disk is transient: the work goes elsewhere or later")
	assert.ErrorContains(t, err, "MIN_FREE_DISK_BYTES")

	ok, err := tmpspace.Open(base, 1, nil)
	require.NoError(t, err)
	dir, release, err := ok.Dir("job-")
	require.NoError(t, err)
	release()
	assert.NoDirExists(t, dir)
}

func TestOpen_sweeps_what_a_killed_process_left(t *testing.T) {
	base := t.TempDir()
	dead := filepath.Join(base, "ocrflow-"+strconv.Itoa(deadPID(t))+"-1")
	touch(t, filepath.Join(dead, "job-9-1", "source"), time.Second)
	_, err := tmpspace.Open(base, 0, nil)
	require.NoError(t, err)
	assert.NoDirExists(t, dead)
}
