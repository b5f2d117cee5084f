package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/popgate/popgate/auth"
	"github.com/popgate/popgate/maildir"
	"github.com/popgate/popgate/maildir/mbox"
	"github.com/spf13/afero"
)

// defaultSpoolLockWait is how long an import waits for mail.local or
// qpopper to release a spool file.
const defaultSpoolLockWait = time.Minute

// importMbox imports one qpopper/mail.local mbox into a user's maildir,
// keeping qpopper's X-UIDLs as the POP3 unique-ids.
func importMbox(ctx context.Context, e *env, args []string) error {
	fs, cfgPath := newFlags("import mbox", e)
	wait := fs.Duration("lock-timeout", defaultSpoolLockWait, "how long to wait for the spool file's locks")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usagef("usage: popgate import mbox [--config FILE] [--lock-timeout D] USER MBOX")
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	imp, err := newMboxImporter(cfg, e, *wait)
	if err != nil {
		return err
	}
	user := strings.ToLower(fs.Arg(0))
	if !strings.Contains(user, "@") && len(cfg.Domains) > 0 {
		user += "@" + strings.ToLower(cfg.Domains[0])
	}
	if !imp.users[user] {
		return fmt.Errorf("%s is not a user in %s (add it with `popgate user add %s`)", user, cfg.usersFile(), user)
	}
	st, err := imp.importFile(ctx, user, fs.Arg(1))
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, st.summary(user, fs.Arg(1)))
	return nil
}

// importSpool imports every mbox of a spool directory such as /var/mail:
// the file NAME goes to the maildir of NAME@domain.
func importSpool(ctx context.Context, e *env, args []string) error {
	fs, cfgPath := newFlags("import spool", e)
	wait := fs.Duration("lock-timeout", defaultSpoolLockWait, "how long to wait for each spool file's locks")
	domain := fs.String("domain", "", "domain of the spool's users (default: the first of domains)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("usage: popgate import spool [--config FILE] [--domain D] [--lock-timeout D] DIR")
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	dom := strings.ToLower(*domain)
	if dom == "" {
		if len(cfg.Domains) == 0 {
			return errors.New("no local domain configured: give --domain")
		}
		dom = strings.ToLower(cfg.Domains[0])
	}
	imp, err := newMboxImporter(cfg, e, *wait)
	if err != nil {
		return err
	}
	dir := fs.Arg(0)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("spool %s: %w", dir, err)
	}
	var total importStats
	var skipped, failed []string
	for _, ent := range entries {
		name := ent.Name()
		// Hidden files are qpopper's temporary copies (.NAME.pop), *.lock
		// are dot-locks; neither is a mailbox.
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".lock") || !ent.Type().IsRegular() {
			continue
		}
		user := strings.ToLower(name) + "@" + dom
		if !imp.users[user] {
			skipped = append(skipped, name)
			continue
		}
		path := filepath.Join(dir, name)
		st, err := imp.importFile(ctx, user, path)
		if err != nil {
			fmt.Fprintf(e.stderr, "popgate import: %s: %v\n", path, err)
			failed = append(failed, name)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		fmt.Fprintln(e.stdout, st.summary(user, path))
		total.add(st)
	}
	if len(skipped) > 0 {
		fmt.Fprintf(e.stdout, "skipped %d spool file(s) that are not users of %s: %s\n", len(skipped), dom, strings.Join(skipped, " "))
	}
	fmt.Fprintf(e.stdout, "spool %s: %d mailbox(es), %s\n", dir, total.files, total.counts())
	if len(failed) > 0 {
		return fmt.Errorf("%d spool file(s) not imported: %s", len(failed), strings.Join(failed, " "))
	}
	return nil
}

// mboxImporter brings spool files into maildirs.
type mboxImporter struct {
	e        *env
	store    *maildir.Store
	users    map[string]bool
	lockWait time.Duration
	progress bool // draw a progress bar on stderr (a terminal)
}

func newMboxImporter(cfg *Config, e *env, wait time.Duration) (*mboxImporter, error) {
	osfs := afero.NewOsFs()
	list, err := auth.ListUsers(osfs, cfg.usersFile())
	if err != nil {
		return nil, err
	}
	users := make(map[string]bool, len(list))
	for _, u := range list {
		users[u] = true
	}
	f, isFile := e.stderr.(*os.File)
	return &mboxImporter{
		e:        e,
		store:    maildir.NewStore(osfs, filepath.Join(cfg.DataDir, "mail"), maildir.Options{Hostname: cfg.Hostname}),
		users:    users,
		lockWait: wait,
		progress: isFile && isTerminal(f),
	}, nil
}

// importStats counts what one import did.
type importStats struct {
	files    int
	imported int
	skipped  int   // imported before
	internal int   // UW "FOLDER INTERNAL DATA"
	newUIDs  int   // messages that got a UIDL of popgate's making
	bytes    int64 // of the spool file
	elapsed  time.Duration
}

func (s *importStats) add(o importStats) {
	s.files += o.files
	s.imported += o.imported
	s.skipped += o.skipped
	s.internal += o.internal
	s.newUIDs += o.newUIDs
	s.bytes += o.bytes
	s.elapsed += o.elapsed
}

func (s *importStats) counts() string {
	return fmt.Sprintf("%d imported, %d already there, %d without a usable X-UIDL, %d UW internal skipped, %d bytes in %.1fs",
		s.imported, s.skipped, s.newUIDs, s.internal, s.bytes, s.elapsed.Seconds())
}

func (s *importStats) summary(user, path string) string {
	return fmt.Sprintf("%s -> %s: %s", path, user, s.counts())
}

// importFile imports the spool file at path into user's maildir. The file
// is only read, under the locks mail.local takes; it is checked whole
// before anything is written, so bad input leaves the maildir untouched.
func (imp *mboxImporter) importFile(ctx context.Context, user, path string) (importStats, error) {
	start := time.Now()
	st := importStats{files: 1}
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return st, err
	}
	if !fi.Mode().IsRegular() {
		return st, fmt.Errorf("%s is not a regular file", path)
	}
	lock, err := lockSpool(ctx, f, path, imp.lockWait, func(msg string) {
		fmt.Fprintf(imp.e.stderr, "popgate import: warning: %s\n", msg)
	})
	if err != nil {
		return st, err
	}
	defer lock.release()
	if fi, err = f.Stat(); err != nil { // the size under the lock
		return st, err
	}
	st.bytes = fi.Size()

	var msgs []*mbox.Message
	if err := mbox.Scan(f, fi.Size(), func(m *mbox.Message) error {
		msgs = append(msgs, m)
		return nil
	}); err != nil {
		return st, fmt.Errorf("%s: %w; nothing imported", path, err)
	}

	local, domain, _ := strings.Cut(user, "@")
	mb, err := imp.store.Open(domain, local)
	if err != nil {
		return st, err
	}
	unlock, err := mb.Lock()
	if errors.Is(err, maildir.ErrLocked) {
		return st, fmt.Errorf("maildir of %s is in use (a POP3 session?): try again later", user)
	}
	if err != nil {
		return st, err
	}
	defer unlock()
	if err := mb.CleanImportTmp(); err != nil {
		return st, err
	}
	present, err := mb.List()
	if err != nil {
		return st, err
	}
	have := make(map[string]bool, len(present))
	for _, m := range present {
		have[m.UID] = true
	}
	record, err := mb.OpenImportLog()
	if err != nil {
		return st, err
	}
	defer record.Close()

	uids := imp.assignUIDs(path, msgs, &st)
	bar := newProgressBar(imp.e.stderr, imp.progress, user, fi.Size())
	defer bar.done()
	// Delivery order is spool order: a clock that went back between two
	// deliveries must not reorder them.
	var todo []int
	times := make([]time.Time, len(msgs))
	var last time.Time
	for i, m := range msgs {
		if m.Internal {
			continue
		}
		last = maxTime(last, m.Time)
		times[i] = last
		if uid := uids[i]; record.Has(uid) || have[uid] {
			st.skipped++
			if err := record.Add(uid); err != nil {
				return st, err
			}
			continue
		}
		todo = append(todo, i)
	}
	get := func(k int) maildir.ImportMessage {
		i := todo[k]
		m := msgs[i]
		return maildir.ImportMessage{
			UID:  uids[i],
			Time: times[i],
			Seq:  int64(i + 1),
			Seen: strings.ContainsRune(m.Status, 'R'),
			Old:  strings.ContainsRune(m.Status, 'O'),
			Body: io.NewSectionReader(f, m.Start, m.Size()),
		}
	}
	err = mb.ImportMany(ctx, len(todo), get, func(k int, _ string) error {
		i := todo[k]
		bar.update(msgs[i].End)
		st.imported++
		return record.Add(uids[i])
	})
	if err != nil {
		return st, fmt.Errorf("%s: %w (imported so far: %d; run again to resume)", path, err, st.imported)
	}
	if err := record.Close(); err != nil {
		return st, err
	}
	st.elapsed = time.Since(start)
	return st, nil
}

// assignUIDs returns each message's POP3 unique-id: its X-UIDL when that is
// valid (RFC 1939 §7) and not taken by an earlier message of the file,
// otherwise a new one, derived from the message's headers so that a
// re-run gives it the same and skips it.
func (imp *mboxImporter) assignUIDs(path string, msgs []*mbox.Message, st *importStats) []string {
	uids := make([]string, len(msgs))
	taken := make(map[string]int64, len(msgs)) // uid -> offset of its message
	for i, m := range msgs {
		if m.Internal {
			st.internal++
			continue
		}
		if u := m.UIDL; u != "" && maildir.ValidUID(u) {
			if _, dup := taken[u]; !dup {
				uids[i], taken[u] = u, m.Offset
			}
		}
	}
	seen := make(map[[sha256.Size]byte]uint64)
	for i, m := range msgs {
		if m.Internal || uids[i] != "" {
			continue
		}
		n := seen[m.HeaderSum]
		seen[m.HeaderSum]++
		sum := sha256.Sum256(fmt.Appendf(m.HeaderSum[:], "#%d", n))
		u := hex.EncodeToString(sum[:16])
		for _, ok := taken[u]; ok; _, ok = taken[u] {
			sum = sha256.Sum256(sum[:])
			u = hex.EncodeToString(sum[:16])
		}
		taken[u] = m.Offset
		uids[i] = u
		st.newUIDs++
		switch {
		case m.UIDL == "":
		case !maildir.ValidUID(m.UIDL):
			fmt.Fprintf(imp.e.stderr, "popgate import: %s: message at offset %d: X-UIDL %q is not a valid UIDL; it gets %s\n", path, m.Offset, m.UIDL, u)
		default:
			fmt.Fprintf(imp.e.stderr, "popgate import: %s: message at offset %d: X-UIDL %q repeats the one of the message at offset %d; it gets %s\n", path, m.Offset, m.UIDL, taken[m.UIDL], u)
		}
	}
	return uids
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
