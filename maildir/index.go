package maildir

import (
	"bytes"
	"errors"
	"fmt"
	iofs "io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/spf13/afero"

	"github.com/popgate/popgate/maildir/durable"
)

// indexFile holds, per maildir, the CRLF size of every message whose name
// does not carry ",W=" (files written by other programs), so those files
// are read once, not once per POP3 session. Maildir files never change
// after delivery and their base names are unique, so an entry stays true
// for as long as the name exists.
const indexFile = "popgate-sizes"

// indexHeader and the "end <count>" trailer let a damaged file be detected
// and rebuilt rather than trusted.
const indexHeader = "popgate-sizes 1"

// scanWorkers bounds the goroutines reading files whose size is unknown:
// enough to keep a disk queue busy, few enough for a small machine.
const scanWorkers = 8

// scanBufSize is each worker's read buffer; typical messages fit in one read.
const scanBufSize = 64 * 1024

// pruneMin is how many stale entries (names gone from the maildir) the
// index may carry before it is rewritten just to drop them.
const pruneMin = 64

// sizeIndex is the loaded index of one maildir, shared by the sessions of
// this process.
type sizeIndex struct {
	mu     sync.Mutex
	loaded bool
	sizes  map[string]int64 // base name -> CRLF size
}

// indexFor returns the in-memory index of dir, creating an empty one.
func (s *Store) indexFor(dir string) *sizeIndex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indexes == nil {
		s.indexes = make(map[string]*sizeIndex)
	}
	ix := s.indexes[dir]
	if ix == nil {
		ix = &sizeIndex{}
		s.indexes[dir] = ix
	}
	return ix
}

// loadIndex reads dir's index file. A missing file is an empty index; a
// damaged one is reported so the caller logs it and rebuilds.
func loadIndex(fs afero.Fs, dir string) (map[string]int64, error) {
	data, err := afero.ReadFile(fs, filepath.Join(dir, indexFile))
	if errors.Is(err, iofs.ErrNotExist) {
		return map[string]int64{}, nil
	}
	if err != nil {
		return map[string]int64{}, err
	}
	m, err := parseIndex(data)
	if err != nil {
		return map[string]int64{}, err
	}
	return m, nil
}

// parseIndex parses "popgate-sizes 1\n", lines "<size> <base name>\n" and
// "end <count>\n".
func parseIndex(data []byte) (map[string]int64, error) {
	header, rest, ok := bytes.Cut(data, []byte{'\n'})
	if !ok || string(header) != indexHeader {
		return nil, errors.New("bad header")
	}
	m := make(map[string]int64, bytes.Count(rest, []byte{'\n'}))
	for len(rest) > 0 {
		var line []byte
		line, rest, ok = bytes.Cut(rest, []byte{'\n'})
		if !ok {
			return nil, errors.New("truncated line")
		}
		num, name, ok := strings.Cut(string(line), " ")
		if !ok || name == "" {
			return nil, fmt.Errorf("bad line %q", line)
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if num == "end" {
			if len(rest) != 0 {
				return nil, errors.New("data after end")
			}
			c, err := strconv.Atoi(name)
			if err != nil || c != len(m) {
				return nil, fmt.Errorf("count %q does not match %d entries", name, len(m))
			}
			return m, nil
		}
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad size in line %q", line)
		}
		m[name] = n
	}
	return nil, errors.New("missing end line")
}

// formatIndex is the inverse of parseIndex. Names that cannot be written
// on one line are left out (and recomputed when seen).
func formatIndex(m map[string]int64) []byte {
	var b bytes.Buffer
	b.Grow(len(m) * 64)
	b.WriteString(indexHeader + "\n")
	n := 0
	for name, size := range m {
		if strings.IndexByte(name, '\n') >= 0 {
			continue
		}
		b.WriteString(strconv.FormatInt(size, 10))
		b.WriteByte(' ')
		b.WriteString(name)
		b.WriteByte('\n')
		n++
	}
	fmt.Fprintf(&b, "end %d\n", n)
	return b.Bytes()
}

// sizeJob asks for the CRLF size of one file.
type sizeJob struct {
	path string
	base string
	size int64
	err  error
}

// resolveSizes fills size for every entry lacking one: from the index, or
// by reading the file (in parallel), and keeps the index file up to date.
// Entries whose file vanished meanwhile are marked gone.
func (s *Store) resolveSizes(dir string, entries []entry) error {
	ix := s.indexFor(dir)
	ix.mu.Lock()
	defer ix.mu.Unlock()

	var jobs []sizeJob
	var jobIdx []int
	used := 0
	for i := range entries {
		e := &entries[i]
		if e.ni.wsize >= 0 {
			e.size = e.ni.wsize
			continue
		}
		if !ix.loaded {
			m, err := loadIndex(s.fs, dir)
			if err != nil {
				s.log.Warn("maildir: size index unreadable, rebuilding", "dir", dir, "err", err)
			}
			ix.sizes, ix.loaded = m, true
		}
		if n, ok := ix.sizes[e.ni.base]; ok {
			e.size = n
			used++
			continue
		}
		jobs = append(jobs, sizeJob{path: filepath.Join(dir, e.sub, e.name), base: e.ni.base})
		jobIdx = append(jobIdx, i)
	}
	if !ix.loaded {
		return nil // every name carries its size; no index needed
	}
	s.computeSizes(jobs)
	added := 0
	for k, j := range jobs {
		e := &entries[jobIdx[k]]
		switch {
		case j.err == nil:
			e.size = j.size
			ix.sizes[j.base] = j.size
			added++
		case errors.Is(j.err, iofs.ErrNotExist):
			e.gone = true // deleted or moved by another program since the listing
		case errors.Is(j.err, syscall.EISDIR):
			// A directory in new/ or cur/ is not a message; do not let it
			// make the whole mailbox unreadable.
			s.log.Warn("maildir: skipping directory among messages", "path", j.path)
			e.gone = true
		default:
			return fmt.Errorf("maildir: size of %s: %w", j.path, j.err)
		}
	}
	stale := len(ix.sizes) - used - added
	if added == 0 && stale < pruneMin {
		return nil
	}
	if stale > 0 {
		live := make(map[string]bool, used+added)
		for i := range entries {
			if !entries[i].gone && entries[i].ni.wsize < 0 {
				live[entries[i].ni.base] = true
			}
		}
		for name := range ix.sizes {
			if !live[name] {
				delete(ix.sizes, name)
			}
		}
	}
	if err := durable.WriteBytes(s.fs, filepath.Join(dir, indexFile), formatIndex(ix.sizes), filePerm); err != nil {
		// The sizes are right in memory; only the next process pays again.
		s.log.Warn("maildir: write size index", "dir", dir, "err", err)
	}
	return nil
}

// computeSizes reads every job's file and sets its size or error, using up
// to scanWorkers goroutines.
func (s *Store) computeSizes(jobs []sizeJob) {
	if len(jobs) == 0 {
		return
	}
	workers := min(scanWorkers, len(jobs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, scanBufSize)
			for {
				k := int(next.Add(1) - 1)
				if k >= len(jobs) {
					return
				}
				jobs[k].size, jobs[k].err = s.fileCRLFSize(jobs[k].path, buf)
			}
		})
	}
	wg.Wait()
}

func (s *Store) fileCRLFSize(path string, buf []byte) (int64, error) {
	if _, ok := s.fs.(*afero.OsFs); ok {
		return osCRLFSize(path, buf)
	}
	f, err := s.fs.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return crlfSize(f, buf)
}
