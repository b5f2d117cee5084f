package maildir

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/afero"

	"github.com/popgate/popgate/maildir/durable"
)

// importTmpPrefix names the tmp/ files of imports. Only an importer holding
// the mailbox lock writes them, so one that finds such files (left by an
// interrupted import) may remove them at once, without maildir(5)'s
// 36-hour wait that protects deliveries in progress.
const importTmpPrefix = "import."

// ImportMessage is a message brought in from another mail store (a
// qpopper mbox) that keeps the POP3 unique-id it had there.
type ImportMessage struct {
	// UID is the unique-id it keeps; it must satisfy ValidUID.
	UID string
	// Time is when it was delivered: List orders by it, so imported mail
	// sits among the maildir's own in delivery order.
	Time time.Time
	// Seq is its position in the source; it orders messages of one second.
	Seq int64
	// Seen marks it read: it goes to cur/ with the seen flag (":2,S").
	Seen bool
	// Old marks it seen by a mail reader but unread: cur/ with ":2,".
	Old bool
	// Body is the message text (LF or CRLF line endings).
	Body io.Reader
}

// Import stores msg durably, like a delivery (tmp/, fsync, link, fsync of
// the directory), under a name that carries msg.UID, and returns that name.
// The caller should hold the mailbox lock (Lock) so that POP3 sessions do
// not see a half-imported mailbox.
func (m *Mailbox) Import(ctx context.Context, msg ImportMessage) (string, error) {
	var name string
	err := m.ImportMany(ctx, 1, func(int) ImportMessage { return msg }, func(_ int, n string) error {
		name = n
		return nil
	})
	return name, err
}

// Import parallelism: how many messages are written and fsynced at once
// (the disk commits concurrent fsyncs together), and how many are linked
// before new/ and cur/ are fsynced once for all of them.
const (
	importWorkers = 8
	importBatch   = 256
)

// ImportMany imports n messages, get(i) yielding the i-th (called from
// several goroutines). Each message file is written and fsynced as in
// Import, several at a time; the directories are fsynced once per batch.
// done(i, name) is called in order for each message once it is durable;
// an error from it stops the import. On error, messages already passed to
// done stay imported.
func (m *Mailbox) ImportMany(ctx context.Context, n int, get func(i int) ImportMessage, done func(i int, name string) error) error {
	if err := m.s.ensureMaildir(m.dir); err != nil {
		return fmt.Errorf("maildir: import: %w", err)
	}
	names := make([]string, min(n, importBatch))
	errs := make([]error, len(names))
	for b := 0; b < n; b += importBatch {
		k := min(importBatch, n-b)
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(importWorkers, k) {
			wg.Go(func() {
				for {
					j := int(next.Add(1) - 1)
					if j >= k {
						return
					}
					names[j], errs[j] = m.importOne(ctx, get(b+j))
				}
			})
		}
		wg.Wait()
		// Make what was linked durable even when some failed, so that a
		// retry finds those and skips them.
		dirty := map[string]bool{}
		for j := range k {
			if errs[j] == nil {
				dirty[filepath.Join(m.dir, subdirOf(names[j]))] = true
			}
		}
		if err := m.syncDirs(dirty); err != nil {
			return fmt.Errorf("maildir: import: %w", err)
		}
		for j := range k {
			if errs[j] != nil {
				return errs[j]
			}
			if err := done(b+j, names[j]); err != nil {
				return err
			}
		}
	}
	return nil
}

// subdirOf is where Import puts a message of that name: cur/ when it has
// maildir info, new/ otherwise.
func subdirOf(name string) string {
	if strings.Contains(name, infoSep) {
		return subCur
	}
	return subNew
}

// importOne writes, fsyncs and links one message; its directory is not
// fsynced yet.
func (m *Mailbox) importOne(ctx context.Context, msg ImportMessage) (string, error) {
	if !validUID(msg.UID) {
		return "", fmt.Errorf("maildir: import: invalid unique-id %q", msg.UID)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("maildir: import %s: %w", msg.UID, err)
	}
	s := m.s
	stem := s.importStem(msg)
	tmp := filepath.Join(m.dir, subTmp, importTmpPrefix+stem)
	f, err := s.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return "", fmt.Errorf("maildir: import %s: %w", msg.UID, err)
	}
	defer func() {
		if rmErr := s.fs.Remove(tmp); rmErr != nil && !errors.Is(rmErr, iofs.ErrNotExist) {
			s.log.Warn("maildir: remove tmp file", "path", tmp, "err", rmErr)
		}
	}()
	size, wsize, err := writeMessage(&s.bufs, f, msg.Body)
	if err != nil {
		return "", fmt.Errorf("maildir: import %s: %w", msg.UID, err)
	}
	name := stem + uidNameField(msg.UID) + ",S=" + strconv.FormatInt(size, 10) + ",W=" + strconv.FormatInt(wsize, 10)
	switch {
	case msg.Seen:
		name += infoSep + "S"
	case msg.Old:
		name += infoSep
	}
	if err := s.link(tmp, filepath.Join(m.dir, subdirOf(name), name)); err != nil {
		return "", fmt.Errorf("maildir: import %s: %w", msg.UID, err)
	}
	return name, nil
}

// importStem is "<unix>.I<seq>P<pid>Q<n>.<hostname>": the delivery time
// first so that List orders it, then the source position.
func (s *Store) importStem(msg ImportMessage) string {
	b := make([]byte, 0, 64)
	b = strconv.AppendInt(b, max(msg.Time.Unix(), 0), 10)
	b = append(b, ".I"...)
	b = strconv.AppendInt(b, msg.Seq, 10)
	b = append(b, 'P')
	b = strconv.AppendInt(b, int64(s.pid), 10)
	b = append(b, 'Q')
	b = strconv.AppendUint(b, s.seq.Add(1), 10)
	b = append(b, '.')
	b = append(b, s.hostname...)
	return string(b)
}

// CleanImportTmp removes what an interrupted import left in tmp/. Call it
// with the mailbox lock held.
func (m *Mailbox) CleanImportTmp() error {
	dir := filepath.Join(m.dir, subTmp)
	names, err := m.readNames(subTmp)
	if err != nil {
		return err
	}
	for _, n := range names {
		if !strings.HasPrefix(n, importTmpPrefix) {
			continue
		}
		if err := m.s.fs.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("maildir: clean import leftovers: %w", err)
		}
	}
	return nil
}

// importLogFile records, per maildir, the unique-id of every message ever
// imported into it, so that importing the same source again skips the
// messages the user has deleted since.
const importLogFile = "popgate-imported"

// importLogHeader starts the file; then one unique-id per line.
const importLogHeader = "popgate-imported 1"

// importLogSyncEvery bounds how many records may wait for an fsync. A
// message imported but not yet recorded is still recognised by the UID in
// its name; only one deleted in that window would come back.
const importLogSyncEvery = 256

// ImportLog is the set of unique-ids already imported into a maildir, open
// for adding.
type ImportLog struct {
	f       afero.File
	w       *bufio.Writer
	uids    map[string]bool
	pending int
}

// OpenImportLog reads the mailbox's import record, creating it if needed.
// A line cut short by a crash is ignored.
func (m *Mailbox) OpenImportLog() (*ImportLog, error) {
	if err := m.s.ensureMaildir(m.dir); err != nil {
		return nil, fmt.Errorf("maildir: import log: %w", err)
	}
	p := filepath.Join(m.dir, importLogFile)
	data, err := afero.ReadFile(m.s.fs, p)
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return nil, fmt.Errorf("maildir: import log: %w", err)
	}
	uids := map[string]bool{}
	if len(data) > 0 {
		header, rest, _ := bytes.Cut(data, []byte{'\n'})
		if string(header) != importLogHeader {
			return nil, fmt.Errorf("maildir: import log %s: bad header %q", p, header)
		}
		for len(rest) > 0 {
			line, tail, ok := bytes.Cut(rest, []byte{'\n'})
			if !ok {
				break // cut short by a crash
			}
			uids[string(line)] = true
			rest = tail
		}
	}
	f, err := m.s.fs.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, filePerm)
	if err != nil {
		return nil, fmt.Errorf("maildir: import log: %w", err)
	}
	l := &ImportLog{f: f, w: bufio.NewWriter(f), uids: uids}
	if len(data) == 0 {
		l.w.WriteString(importLogHeader + "\n")
	} else if data[len(data)-1] != '\n' {
		l.w.WriteByte('\n') // end the cut line so the next record stands alone
	}
	if err := l.Sync(); err != nil {
		_ = f.Close()
		return nil, err
	}
	if len(data) == 0 {
		if err := durable.SyncDir(m.s.fs, m.dir); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("maildir: import log: %w", err)
		}
	}
	return l, nil
}

// Has reports whether uid was imported before.
func (l *ImportLog) Has(uid string) bool { return l.uids[uid] }

// Len is the number of unique-ids recorded.
func (l *ImportLog) Len() int { return len(l.uids) }

// Add records uid; the record reaches the disk at the latest after
// importLogSyncEvery more, or at Sync or Close.
func (l *ImportLog) Add(uid string) error {
	if l.uids[uid] {
		return nil
	}
	l.uids[uid] = true
	l.w.WriteString(uid)
	l.w.WriteByte('\n')
	l.pending++
	if l.pending >= importLogSyncEvery {
		return l.Sync()
	}
	return nil
}

// Sync writes and fsyncs the records added so far.
func (l *ImportLog) Sync() error {
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("maildir: import log: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("maildir: import log: %w", err)
	}
	l.pending = 0
	return nil
}

// Close syncs and closes the record; closing it again does nothing.
func (l *ImportLog) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.Sync()
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("maildir: import log: %w", cerr)
	}
	l.f = nil
	return err
}
