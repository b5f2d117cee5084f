package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Spool files are recycled: a delivered message's .env and .msg are
// renamed to free names ("free-<n>") in Dir instead of being removed, and
// a new message's files are free ones renamed to its id and written over.
// On ext4 this replaces an inode allocation and a deletion per file (the
// allocator's search past recently deleted inodes dominated the CPU of a
// busy relay) by two renames within the directory. Free files mean
// nothing: scan neither schedules nor removes them, only counts them in.
const (
	freePrefix = "free-"
	// maxFreeFiles bounds the pool; beyond it, files are removed.
	maxFreeFiles = 256
	// maxFreeSize is the largest file kept whole; a bigger one is cut to
	// nothing first, so the pool never holds much disk space.
	maxFreeSize = 1 << 20
)

// freePool holds the names of free files in Dir.
type freePool struct {
	mu    sync.Mutex
	names []string
	seq   uint64
}

// take returns a free file's path, or "" when there is none.
func (p *freePool) take() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.names) == 0 {
		return ""
	}
	n := p.names[len(p.names)-1]
	p.names = p.names[:len(p.names)-1]
	return n
}

// add records a free path; it reports false when the pool is full.
func (p *freePool) add(path string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.names) >= maxFreeFiles {
		return false
	}
	p.names = append(p.names, path)
	return true
}

// nextName returns a new free path in dir.
func (p *freePool) nextName(dir string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	return filepath.Join(dir, fmt.Sprintf("%s%d", freePrefix, p.seq))
}

// seen notes a free file found at start, so new names never reuse its
// number.
func (p *freePool) seen(name string) {
	n, err := strconv.ParseUint(strings.TrimPrefix(name, freePrefix), 10, 64)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.seq = max(p.seq, n)
	p.mu.Unlock()
}

func isFreeName(name string) bool { return strings.HasPrefix(name, freePrefix) }

// openNew opens path for a new spool file: a free file renamed there and
// written over, or a new one (O_EXCL). The caller writes the content,
// calls truncate at its end and fsyncs.
func (q *Queue) openNew(path string) (spoolFile, error) {
	for {
		src := q.free.take()
		if src == "" {
			break
		}
		if err := q.cfg.Fs.Rename(src, path); err != nil {
			q.log.Warn("queue free file lost", "file", src, "err", err)
			continue
		}
		f, err := q.cfg.Fs.OpenFile(path, os.O_WRONLY, filePerm)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	return q.cfg.Fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
}

// spoolFile is what openNew returns: afero.File's writing part.
type spoolFile interface {
	Write(b []byte) (int, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// release takes path out of the queue: renamed to a free name for reuse,
// or removed when the pool is full or the file big. A missing file is not
// an error.
func (q *Queue) release(path string) error {
	st, err := q.cfg.Fs.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil && st.Size() <= maxFreeSize && !q.free.full() {
		free := q.free.nextName(q.cfg.Dir)
		if err := q.cfg.Fs.Rename(path, free); err != nil {
			return err
		}
		if q.free.add(free) {
			return nil
		}
		path = free // the pool filled up meanwhile
	}
	if err := q.cfg.Fs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (p *freePool) full() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.names) >= maxFreeFiles
}
