package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// eachCopy is one mailbox's copy in a deliverEach.
type eachCopy struct {
	dir         string // the maildir
	tmp, stem   string
	size, wsize int64
	dst         string // new/<name> once linked
}

// deliverEach stores r once per distinct maildir, each copy starting with
// its own prefixes[i] (CRLF lines), and makes them appear in new/ only once
// every copy is written and fsynced: on error no new/ gained anything. The
// first copy is written from r; the others are copied from the first, past
// its prefix, concurrently. Mailboxes that name the same maildir get one copy, with the
// first one's prefix.
func (s *Store) deliverEach(ctx context.Context, mailboxes []Address, prefixes [][]byte, r io.Reader) (names []string, err error) {
	var copies []*eachCopy
	index := make([]int, len(mailboxes)) // mailbox -> copy
	var pre [][]byte
	seen := make(map[string]int)
	for i, a := range mailboxes {
		p, err := s.MailboxPath(a.Domain, a.Local)
		if err != nil {
			return nil, fmt.Errorf("maildir: deliver to %q: %w", a.Local+"@"+a.Domain, err)
		}
		j, ok := seen[p]
		if !ok {
			j = len(copies)
			seen[p] = j
			copies = append(copies, &eachCopy{dir: p})
			pre = append(pre, prefixes[i])
		}
		index[i] = j
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("maildir: deliver: %w", err)
	}
	for _, c := range copies {
		if err := s.ensureMaildir(c.dir); err != nil {
			return nil, fmt.Errorf("maildir: deliver: %w", err)
		}
	}
	defer func() {
		for _, c := range copies {
			if err != nil {
				s.ready.Delete(c.dir)
			}
			if c.tmp == "" {
				continue
			}
			if rmErr := s.fs.Remove(c.tmp); rmErr != nil && !errors.Is(rmErr, iofs.ErrNotExist) {
				s.log.Warn("maildir: remove tmp file", "path", c.tmp, "err", rmErr)
			}
		}
	}()

	if err := s.writeCopy(ctx, copies[0], pre[0], r); err != nil {
		return nil, err
	}
	if len(copies) > 1 {
		// The first copy is stored with LF endings: its prefix is shorter
		// by one octet per line. The other copies are written at the same
		// time, each waiting for its own fsync.
		skip := int64(len(pre[0]) - strings.Count(string(pre[0]), "\r\n"))
		errs := make([]error, len(copies))
		var wg sync.WaitGroup
		for i := 1; i < len(copies); i++ {
			wg.Go(func() { errs[i] = s.copyFrom(ctx, copies[i], pre[i], copies[0], skip) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	if err := s.linkEach(copies); err != nil {
		return nil, err
	}
	names = make([]string, len(mailboxes))
	for i := range mailboxes {
		names[i] = filepath.Base(copies[index[i]].dst)
	}
	return names, nil
}

// writeCopy writes prefix and src into a new file in tmp/ of c.dir.
func (s *Store) writeCopy(ctx context.Context, c *eachCopy, prefix []byte, src io.Reader) error {
	tmp, stem, f, err := s.createTmp(c.dir)
	if errors.Is(err, iofs.ErrNotExist) {
		if err = s.remake([]string{c.dir}); err == nil {
			tmp, stem, f, err = s.createTmp(c.dir)
		}
	}
	if err != nil {
		return err
	}
	c.tmp, c.stem = tmp, stem
	c.size, c.wsize, err = writeMessage(&s.bufs, f, io.MultiReader(strings.NewReader(string(prefix)), src))
	if err != nil {
		return fmt.Errorf("maildir: deliver %s: %w", stem, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("maildir: deliver %s: %w", stem, err)
	}
	return nil
}

// copyFrom writes c from the first copy's body (past its skip-octet
// prefix), after c's own prefix.
func (s *Store) copyFrom(ctx context.Context, c *eachCopy, prefix []byte, first *eachCopy, skip int64) error {
	f, err := s.fs.Open(first.tmp)
	if err != nil {
		return fmt.Errorf("maildir: deliver: reopen %s: %w", first.tmp, err)
	}
	defer f.Close()
	return s.writeCopy(ctx, c, prefix, io.NewSectionReader(f, skip, first.size-skip))
}

// linkEach links every copy's tmp file into its new/ (a fresh name if one
// is taken), then fsyncs those new/ directories; on failure it removes
// what it linked.
func (s *Store) linkEach(copies []*eachCopy) error {
	var done []string
	fail := func(err error) error {
		s.unlinkAll(done)
		return err
	}
	for _, c := range copies {
		for attempt := 0; ; attempt++ {
			name := c.stem + ",S=" + strconv.FormatInt(c.size, 10) + ",W=" + strconv.FormatInt(c.wsize, 10)
			dst := filepath.Join(c.dir, subNew, name)
			err := s.link(c.tmp, dst)
			if errors.Is(err, iofs.ErrNotExist) && attempt == 0 {
				if err = s.remake([]string{c.dir}); err == nil {
					err = s.link(c.tmp, dst)
				}
			}
			if err == nil {
				c.dst = dst
				done = append(done, dst)
				break
			}
			if !errors.Is(err, iofs.ErrExist) || attempt+1 >= maxNameAttempts {
				return fail(fmt.Errorf("maildir: deliver %s into %s: %w", name, c.dir, err))
			}
			c.stem = s.newStem()
		}
	}
	dirs := make([]string, len(copies))
	for i, c := range copies {
		dirs[i] = c.dir
	}
	if err := s.syncNewDirs(dirs); err != nil {
		return fail(fmt.Errorf("maildir: deliver: %w", err))
	}
	return nil
}
