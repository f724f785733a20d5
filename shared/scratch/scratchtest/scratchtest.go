// Package scratchtest is the conformance suite of the scratch-store port:
// every adapter of scratch.Store (package blob) must pass it.
package scratchtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/scratch"
)

// Store is the behaviour the pipeline relies on (scratch.Store).
type Store = scratch.Store

// Run runs the suite against stores made by newStore (a fresh, empty store
// per call).
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	get := func(t *testing.T, s Store, key string) string {
		t.Helper()
		rc, err := s.Get(ctx, key)
		require.NoError(t, err, "Get(%q)", key)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		require.NoError(t, err, "read %q", key)
		return string(b)
	}

	t.Run("put_then_get_returns_the_bytes", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Put(ctx, "jobs/a/pages/1.md", strings.NewReader("hello")))
		assert.Equal(t, "hello", get(t, s, "jobs/a/pages/1.md"))
	})
	t.Run("put_replaces", func(t *testing.T) {
		s := newStore(t)
		for _, v := range []string{"one", "two"} {
			require.NoError(t, s.Put(ctx, "k/v", strings.NewReader(v)), "Put(%q)", v)
		}
		assert.Equal(t, "two", get(t, s, "k/v"))
	})
	t.Run("get_missing_is_ErrNotFound", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Get(ctx, "jobs/none/x")
		assert.ErrorIs(t, err, scratch.ErrNotFound)
		ok, err := s.Exists(ctx, "jobs/none/x")
		require.NoError(t, err, "Exists")
		assert.False(t, ok, "Exists of a missing key")
	})
	t.Run("exists_after_put", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Put(ctx, "a/b", strings.NewReader("x")))
		ok, err := s.Exists(ctx, "a/b")
		require.NoError(t, err, "Exists")
		assert.True(t, ok, "Exists after Put")
	})
	t.Run("create_is_exclusive_under_contention", func(t *testing.T) {
		s := newStore(t)
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				errs[i] = s.Create(ctx, "jobs/a/final.lock", strings.NewReader(fmt.Sprint("owner-", i)))
			})
		}
		wg.Wait()
		winners := 0
		winner := ""
		for i, err := range errs {
			if err == nil {
				winners++
				winner = fmt.Sprint("owner-", i)
				continue
			}
			require.ErrorIs(t, err, scratch.ErrExists, "Create #%d: want nil or ErrExists", i)
		}
		require.Equal(t, 1, winners, "creators that won, want exactly 1")
		assert.Equal(t, winner, get(t, s, "jobs/a/final.lock"), "the lock holds the winner")
	})
	t.Run("list_returns_sorted_keys_under_prefix_only", func(t *testing.T) {
		s := newStore(t)
		for _, k := range []string{"jobs/a/pages/2.md", "jobs/a/pages/1.md", "jobs/ab/pages/1.md", "jobs/a/manifest.json"} {
			require.NoError(t, s.Put(ctx, k, bytes.NewReader(nil)), "Put(%q)", k)
		}
		got, err := s.List(ctx, "jobs/a/pages/")
		require.NoError(t, err)
		assert.Equal(t, []string{"jobs/a/pages/1.md", "jobs/a/pages/2.md"}, got, "List")
		none, err := s.List(ctx, "jobs/zzz/")
		require.NoError(t, err, "List(missing)")
		assert.Empty(t, none, "List(missing)")
	})
	t.Run("unclean_keys_are_refused", func(t *testing.T) {
		s := newStore(t)
		for _, k := range []string{"../escape", "/abs", "a//b", "a/./b", ""} {
			assert.Error(t, s.Put(ctx, k, strings.NewReader("x")), "Put(%q) succeeded, want an error", k)
		}
	})
}
