package queue

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// gatedFs counts directory syncs and holds each until released.
type gatedFs struct {
	afero.Fs
	syncs   atomic.Int32
	started chan struct{}
	release chan error
}

type gatedDir struct {
	afero.File
	fs *gatedFs
}

func (g *gatedFs) Open(name string) (afero.File, error) {
	f, err := g.Fs.Open(name)
	if err != nil {
		return nil, err
	}
	return &gatedDir{File: f, fs: g}, nil
}

func (d *gatedDir) Sync() error {
	d.fs.syncs.Add(1)
	d.fs.started <- struct{}{}
	return <-d.fs.release
}

func TestDirSyncerSharesOneSyncAmongWaiters(t *testing.T) {
	t.Parallel()
	fs := &gatedFs{Fs: afero.NewMemMapFs(), started: make(chan struct{}, 10), release: make(chan error)}
	if err := fs.MkdirAll("/q", dirPerm); err != nil {
		t.Fatal(err)
	}
	s := newDirSyncer(fs, "/q")

	first := make(chan error, 1)
	go func() { first <- s.sync() }()
	<-fs.started // the first sync is running

	// These callers changed the directory while it ran: it does not
	// cover them, the next one must.
	const n = 8
	var wg sync.WaitGroup
	var returned atomic.Int32
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			err := s.sync()
			returned.Add(1)
			errs <- err
		})
	}
	waitFor(t, "the waiters to queue up", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.waiting >= n
	})
	fs.release <- nil
	if err := <-first; err != nil {
		t.Fatalf("first sync: %v", err)
	}
	<-fs.started // one second sync for all waiters
	if r := returned.Load(); r != 0 {
		t.Fatalf("%d callers returned on a sync that began before their call", r)
	}
	fs.release <- errors.New("disk on fire")
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil || err.Error() != "durable: fsync dir /q: disk on fire" {
			t.Errorf("waiter got %v, want the second sync's error", err)
		}
	}
	if got := fs.syncs.Load(); got != 2 {
		t.Errorf("%d directory syncs for %d callers, want 2", got, n+1)
	}
	select {
	case <-fs.started:
		t.Error("an extra sync ran")
	case <-time.After(10 * time.Millisecond):
	}
}
