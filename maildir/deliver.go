package maildir

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/spf13/afero"

	"github.com/popgate/popgate/maildir/durable"
)

// maxNameAttempts bounds retries when a generated name already exists
// (another Store in this process with the same clock, or a foreign writer).
const maxNameAttempts = 8

// writeBufSize is the buffer between the message source and the tmp file,
// so a source yielding small pieces (SMTP DATA lines) does not cost one
// write(2) per line.
const writeBufSize = 64 * 1024

// writeBuf is the per-delivery scratch space, pooled: allocating 96 KB
// for every message made the garbage collector a visible cost under load.
type writeBuf struct {
	w    *bufio.Writer
	copy []byte
}

func newWriteBuf() any {
	return &writeBuf{w: bufio.NewWriterSize(nil, writeBufSize), copy: make([]byte, 32*1024)}
}

// hardLinker is implemented by filesystems that can hard-link files. The
// OS filesystem gets os.Link; others (MemMapFs) fall back to copying.
type hardLinker interface {
	Link(oldname, newname string) error
}

var errNoLinks = errors.New("filesystem has no hard links")

// Deliver stores the message r yields (CRLF or LF line endings) once, with
// LF line endings, and makes it appear in new/ of every mailbox: written
// and fsynced in tmp/ of the first mailbox, hard-linked (or, where links
// are impossible, copied) into each new/, whose directories are fsynced
// before Deliver returns. Missing maildirs are created.
//
// names[i] is the file name given to the message in mailboxes[i] (the same
// name in all of them). On error nothing has been added to any new/.
func (s *Store) Deliver(ctx context.Context, mailboxes []Address, r io.Reader) (names []string, err error) {
	if len(mailboxes) == 0 {
		return nil, errors.New("maildir: deliver: no mailboxes")
	}
	var dirs []string // distinct maildirs, in order
	seen := make(map[string]bool)
	for _, a := range mailboxes {
		p, err := s.MailboxPath(a.Domain, a.Local)
		if err != nil {
			return nil, fmt.Errorf("maildir: deliver to %q: %w", a.Local+"@"+a.Domain, err)
		}
		if !seen[p] {
			seen[p] = true
			dirs = append(dirs, p)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("maildir: deliver: %w", err)
	}
	for _, d := range dirs {
		if err := s.ensureMaildir(d); err != nil {
			return nil, fmt.Errorf("maildir: deliver: %w", err)
		}
	}

	defer func() {
		if err != nil {
			for _, d := range dirs {
				s.ready.Delete(d)
			}
		}
	}()
	tmpPath, stem, f, err := s.createTmp(dirs[0])
	if errors.Is(err, iofs.ErrNotExist) {
		// Removed since it was last seen: make it again.
		if err = s.remake(dirs[:1]); err == nil {
			tmpPath, stem, f, err = s.createTmp(dirs[0])
		}
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if rmErr := s.fs.Remove(tmpPath); rmErr != nil && !errors.Is(rmErr, iofs.ErrNotExist) {
			s.log.Warn("maildir: remove tmp file", "path", tmpPath, "err", rmErr)
		}
	}()
	size, wsize, err := writeMessage(&s.bufs, f, r)
	if err != nil {
		return nil, fmt.Errorf("maildir: deliver %s: %w", stem, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("maildir: deliver %s: %w", stem, err)
	}

	name, err := s.linkAll(tmpPath, stem, size, wsize, dirs)
	if errors.Is(err, iofs.ErrNotExist) {
		if err = s.remake(dirs); err == nil {
			name, err = s.linkAll(tmpPath, stem, size, wsize, dirs)
		}
	}
	if err != nil {
		return nil, err
	}
	names = make([]string, len(mailboxes))
	for i := range names {
		names[i] = name
	}
	return names, nil
}

// remake forgets that dirs were complete and creates what they lack.
func (s *Store) remake(dirs []string) error {
	for _, d := range dirs {
		s.ready.Delete(d)
		if err := s.ensureMaildir(d); err != nil {
			return fmt.Errorf("maildir: deliver: %w", err)
		}
	}
	return nil
}

// createTmp creates a new, empty, exclusively owned file in tmp/ of dir and
// returns its path, its name stem (the unique part of the final name) and
// the open file.
func (s *Store) createTmp(dir string) (string, string, afero.File, error) {
	var lastErr error
	for range maxNameAttempts {
		stem := s.newStem()
		p := filepath.Join(dir, subTmp, stem)
		f, err := s.fs.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
		if err == nil {
			return p, stem, f, nil
		}
		lastErr = err
		if !errors.Is(err, iofs.ErrExist) {
			break
		}
	}
	return "", "", nil, fmt.Errorf("maildir: deliver: create tmp file: %w", lastErr)
}

// newStem returns "<unix>.M<usec>P<pid>Q<seq>.<hostname>", Dovecot's
// unique-name layout.
func (s *Store) newStem() string {
	now := s.now()
	b := make([]byte, 0, 64)
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, ".M"...)
	b = strconv.AppendInt(b, int64(now.Nanosecond()/1000), 10)
	b = append(b, 'P')
	b = strconv.AppendInt(b, int64(s.pid), 10)
	b = append(b, 'Q')
	b = strconv.AppendUint(b, s.seq.Add(1), 10)
	b = append(b, '.')
	b = append(b, s.hostname...)
	return string(b)
}

// writeMessage copies r into f with LF line endings, fsyncs and closes f,
// and returns the stored size and the size with CRLF line endings.
func writeMessage(bufs *sync.Pool, f afero.File, r io.Reader) (size, wsize int64, err error) {
	b := bufs.Get().(*writeBuf)
	defer bufs.Put(b)
	b.w.Reset(f)
	defer b.w.Reset(nil) // keep no reference to f in the pool
	bw := b.w
	lw := newLFWriter(bw)
	// Hide r's WriterTo (io.MultiReader has one): it would allocate its
	// own 32 KB buffer for every message instead of using the pooled one.
	if _, err = io.CopyBuffer(lw, struct{ io.Reader }{r}, b.copy); err == nil {
		err = lw.Flush()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return lw.size, lw.crlfSize(), nil
}

// linkAll makes the tmp file visible as new/<name> in every dir, retrying
// with a fresh name if one is taken, and fsyncs each new/. On failure it
// removes the entries it made.
func (s *Store) linkAll(tmpPath, stem string, size, wsize int64, dirs []string) (string, error) {
	for attempt := 0; ; attempt++ {
		name := stem + ",S=" + strconv.FormatInt(size, 10) + ",W=" + strconv.FormatInt(wsize, 10)
		var done []string
		var err error
		for _, d := range dirs {
			dst := filepath.Join(d, subNew, name)
			if err = s.link(tmpPath, dst); err != nil {
				err = fmt.Errorf("maildir: deliver %s into %s: %w", name, d, err)
				break
			}
			done = append(done, dst)
		}
		if err == nil {
			if err = s.syncNewDirs(dirs); err != nil {
				err = fmt.Errorf("maildir: deliver %s: %w", name, err)
			}
		}
		if err == nil {
			return name, nil
		}
		s.unlinkAll(done)
		if !errors.Is(err, iofs.ErrExist) || attempt+1 >= maxNameAttempts {
			return "", err
		}
		stem = s.newStem()
	}
}

// syncNewDirs fsyncs new/ of every dir, concurrently: each fsync waits for
// the disk, and a message to several local recipients should not wait for
// them one after another.
func (s *Store) syncNewDirs(dirs []string) error {
	if len(dirs) == 1 {
		return durable.SyncDir(s.fs, filepath.Join(dirs[0], subNew))
	}
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	for i, d := range dirs {
		wg.Go(func() { errs[i] = durable.SyncDir(s.fs, filepath.Join(d, subNew)) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// unlinkAll removes entries made visible by a delivery that then failed.
func (s *Store) unlinkAll(paths []string) {
	for _, p := range paths {
		if err := s.fs.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			s.log.Error("maildir: roll back failed delivery", "path", p, "err", err)
			continue
		}
		if err := durable.SyncDir(s.fs, filepath.Dir(p)); err != nil {
			s.log.Error("maildir: roll back failed delivery", "path", p, "err", err)
		}
	}
}

// link hard-links src to dst, or copies when the filesystem cannot link
// (MemMapFs, or maildirs on different devices). An existing dst is an error
// wrapping fs.ErrExist, never overwritten.
func (s *Store) link(src, dst string) error {
	var err error
	switch l := s.fs.(type) {
	case hardLinker:
		err = l.Link(src, dst)
	case *afero.OsFs:
		err = os.Link(src, dst)
	default:
		err = errNoLinks
	}
	if err == nil || errors.Is(err, iofs.ErrExist) {
		return err
	}
	if cerr := s.copyFile(src, dst); cerr != nil {
		if errors.Is(err, errNoLinks) {
			return cerr
		}
		return fmt.Errorf("link failed (%v), copy failed: %w", err, cerr)
	}
	return nil
}

// copyFile copies src to dst through a file in tmp/ of dst's maildir, so
// dst appears complete or not at all.
func (s *Store) copyFile(src, dst string) (err error) {
	maildir := filepath.Dir(filepath.Dir(dst))
	tmp := filepath.Join(maildir, subTmp, filepath.Base(dst)+".copy."+durable.UniqueSuffix())
	in, err := s.fs.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := s.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = s.fs.Remove(tmp)
		}
	}()
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// Rename replaces silently; refuse to clobber a message already there.
	if _, serr := s.fs.Stat(dst); serr == nil {
		return &iofs.PathError{Op: "copy", Path: dst, Err: iofs.ErrExist}
	}
	return s.fs.Rename(tmp, dst)
}
