package queue

import (
	"sync"

	"github.com/popgate/popgate/maildir/durable"
	"github.com/spf13/afero"
)

// dirSyncer fsyncs the spool directory for many concurrent callers at
// once (group commit): a caller needs a sync that starts after its own
// changes; whoever finds none running starts one, the others wait for it
// and share it. Under load one directory fsync then covers the new and
// removed names of many messages.
type dirSyncer struct {
	fs  afero.Fs
	dir string

	mu      sync.Mutex
	cond    *sync.Cond
	started uint64 // generation of the last sync started
	done    uint64 // generation of the last sync finished
	running bool
	waiting int   // callers waiting for a running sync (for tests)
	err     error // result of generation done
}

func newDirSyncer(fs afero.Fs, dir string) *dirSyncer {
	s := &dirSyncer{fs: fs, dir: dir}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// sync returns once a directory fsync that began after the call has
// finished, with its error.
func (s *dirSyncer) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A sync running now may have begun before our changes: we need the
	// next one.
	target := s.started + 1
	for s.done < target {
		if s.running {
			s.waiting++
			s.cond.Wait()
			s.waiting--
			continue
		}
		s.running = true
		s.started++
		gen := s.started
		s.mu.Unlock()
		err := durable.SyncDir(s.fs, s.dir)
		s.mu.Lock()
		s.running = false
		s.done, s.err = gen, err
		s.cond.Broadcast()
	}
	return s.err
}
