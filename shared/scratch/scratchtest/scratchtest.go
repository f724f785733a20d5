// Package scratchtest is the conformance suite of the scratch-store port:
// every adapter of scratch.Store (package blob) must pass it.
package scratchtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

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
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("read %q: %v", key, err)
		}
		return string(b)
	}

	t.Run("put_then_get_returns_the_bytes", func(t *testing.T) {
		s := newStore(t)
		if err := s.Put(ctx, "jobs/a/pages/1.md", strings.NewReader("hello")); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, "jobs/a/pages/1.md"); got != "hello" {
			t.Fatalf("got %q, want hello", got)
		}
	})
	t.Run("put_replaces", func(t *testing.T) {
		s := newStore(t)
		for _, v := range []string{"one", "two"} {
			if err := s.Put(ctx, "k/v", strings.NewReader(v)); err != nil {
				t.Fatal(err)
			}
		}
		if got := get(t, s, "k/v"); got != "two" {
			t.Fatalf("got %q, want two", got)
		}
	})
	t.Run("get_missing_is_ErrNotFound", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Get(ctx, "jobs/none/x")
		if !errors.Is(err, scratch.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		ok, err := s.Exists(ctx, "jobs/none/x")
		if err != nil || ok {
			t.Fatalf("Exists = %v, %v; want false, nil", ok, err)
		}
	})
	t.Run("exists_after_put", func(t *testing.T) {
		s := newStore(t)
		if err := s.Put(ctx, "a/b", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		ok, err := s.Exists(ctx, "a/b")
		if err != nil || !ok {
			t.Fatalf("Exists = %v, %v; want true, nil", ok, err)
		}
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
			switch {
			case err == nil:
				winners++
				winner = fmt.Sprint("owner-", i)
			case !errors.Is(err, scratch.ErrExists):
				t.Fatalf("Create #%d: %v, want nil or ErrExists", i, err)
			}
		}
		if winners != 1 {
			t.Fatalf("%d creators won, want exactly 1", winners)
		}
		if got := get(t, s, "jobs/a/final.lock"); got != winner {
			t.Fatalf("lock holds %q, want the winner %q", got, winner)
		}
	})
	t.Run("list_returns_sorted_keys_under_prefix_only", func(t *testing.T) {
		s := newStore(t)
		for _, k := range []string{"jobs/a/pages/2.md", "jobs/a/pages/1.md", "jobs/ab/pages/1.md", "jobs/a/manifest.json"} {
			if err := s.Put(ctx, k, bytes.NewReader(nil)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.List(ctx, "jobs/a/pages/")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"jobs/a/pages/1.md", "jobs/a/pages/2.md"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("List = %v, want %v", got, want)
		}
		none, err := s.List(ctx, "jobs/zzz/")
		if err != nil || len(none) != 0 {
			t.Fatalf("List(missing) = %v, %v; want empty, nil", none, err)
		}
	})
	t.Run("unclean_keys_are_refused", func(t *testing.T) {
		s := newStore(t)
		for _, k := range []string{"../escape", "/abs", "a//b", "a/./b", ""} {
			if err := s.Put(ctx, k, strings.NewReader("x")); err == nil {
				t.Errorf("Put(%q) succeeded, want an error", k)
			}
		}
	})
}
