package blob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/ocrflow/ocrflow/shared/scratch"
)

// Memory is a scratch store held in this process's memory: for one-shot
// in-process runs (synchronous OCR) and for stage tests. Its contents
// vanish with the process, so it cannot be shared between processes.
type Memory struct {
	mu      sync.RWMutex
	objects map[string][]byte
}

var _ scratch.Store = (*Memory)(nil)

// NewMemory returns an empty memory store.
func NewMemory() *Memory { return &Memory{objects: map[string][]byte{}} }

func (m *Memory) read(ctx context.Context, key string, r io.Reader) ([]byte, error) {
	if !scratch.ValidKey(key) {
		return nil, fmt.Errorf("blob key %q is not a clean relative key", key)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("put %s: %w", key, err)
	}
	return b, nil
}

// Put stores r under key, replacing any previous object.
func (m *Memory) Put(ctx context.Context, key string, r io.Reader) error {
	b, err := m.read(ctx, key, r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.objects[key] = b
	m.mu.Unlock()
	return nil
}

// Create stores r under key only if key is absent.
func (m *Memory) Create(ctx context.Context, key string, r io.Reader) error {
	b, err := m.read(ctx, key, r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[key]; ok {
		return fmt.Errorf("create %s: %w", key, scratch.ErrExists)
	}
	m.objects[key] = b
	return nil
}

// Get returns a reader over key's object.
func (m *Memory) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if !scratch.ValidKey(key) {
		return nil, fmt.Errorf("blob key %q is not a clean relative key", key)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	b, ok := m.objects[key]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, scratch.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Exists reports whether key exists.
func (m *Memory) Exists(ctx context.Context, key string) (bool, error) {
	if !scratch.ValidKey(key) {
		return false, fmt.Errorf("blob key %q is not a clean relative key", key)
	}
	m.mu.RLock()
	_, ok := m.objects[key]
	m.mu.RUnlock()
	return ok, ctx.Err()
}

// List returns the keys that start with prefix, sorted.
func (m *Memory) List(ctx context.Context, prefix string) ([]string, error) {
	m.mu.RLock()
	var keys []string
	for k := range m.objects {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	m.mu.RUnlock()
	sort.Strings(keys)
	return keys, ctx.Err()
}

// DeletePrefix removes every object whose key starts with prefix (a job's
// scratch space once its answer is out).
func (m *Memory) DeletePrefix(ctx context.Context, prefix string) error {
	if prefix == "" {
		return fmt.Errorf("delete: an empty prefix would remove everything")
	}
	m.mu.Lock()
	for k := range m.objects {
		if strings.HasPrefix(k, prefix) {
			delete(m.objects, k)
		}
	}
	m.mu.Unlock()
	return ctx.Err()
}

// Len returns the number of objects held.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.objects)
}
