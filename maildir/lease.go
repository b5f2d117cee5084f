package maildir

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/afero"
)

// leaseFile holds the claim of the session that has a maildir: which
// process (owner) and until when (expiry). It works on a volume several
// machines share (NFS), where flock(2) cannot be relied on: a claim is
// made by hard-linking a complete record into place, which fails when a
// claim exists (link(2) is atomic over NFS, unlike O_EXCL on old clients),
// renewed while the session lives, and taken over once expired, so a
// holder killed with -9 blocks the mailbox for at most one lease.
const leaseFile = "popgate.lease"

// leaseMagic starts every lease record; the version lets a later format
// be told apart.
const leaseMagic = "popgate-lease-v1"

// maxLeaseRecord bounds how much of a lease file is read: a record is one
// short line.
const maxLeaseRecord = 512

// DefaultLeaseTTL is how long a claim lasts unless renewed.
const DefaultLeaseTTL = time.Minute

// leaseRecord is the content of a lease file.
type leaseRecord struct {
	owner   string
	expires time.Time
}

// marshal renders the record as one line: magic, owner, expiry in Unix
// nanoseconds.
func (r leaseRecord) marshal() []byte {
	return []byte(leaseMagic + " " + r.owner + " " + strconv.FormatInt(r.expires.UnixNano(), 10) + "\n")
}

// errBadLease means a lease file does not hold a record popgate wrote.
var errBadLease = errors.New("maildir: malformed lease record")

// parseLease reads a record written by marshal.
func parseLease(b []byte) (leaseRecord, error) {
	line, ok := bytes.CutSuffix(b, []byte("\n"))
	if !ok || len(b) > maxLeaseRecord {
		return leaseRecord{}, errBadLease
	}
	f := strings.Split(string(line), " ")
	if len(f) != 3 || f[0] != leaseMagic || !validOwner(f[1]) {
		return leaseRecord{}, errBadLease
	}
	ns, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || ns <= 0 {
		return leaseRecord{}, errBadLease
	}
	return leaseRecord{owner: f[1], expires: time.Unix(0, ns)}, nil
}

// validOwner accepts owner ids as newOwner makes them: printable ASCII
// without spaces, at most 200 bytes.
func validOwner(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '/' {
			return false
		}
	}
	return true
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newOwner names one claim "<label>:<pid>:<incarnation>:<claim>": the
// instance id (or, without one, the host name), the process, a random id
// of this Store (one per process run) and a random id of the claim, so
// that two claims never share a name, even from two containers with the
// same host name and pid.
func (s *Store) newOwner() string {
	label := s.instance
	if label == "" {
		label = s.hostname
	}
	return fmt.Sprintf("%s:%d:%s:%s", label, s.pid, s.incarnation, randomHex(4))
}

// leftByEarlierRun reports whether owner is a claim made by this instance
// (Options.Instance) in an earlier process run, which cannot be alive: an
// instance runs once at a time, so a restart after kill -9 need not wait
// for its own old leases to expire.
func (s *Store) leftByEarlierRun(owner string) bool {
	if s.instance == "" {
		return false
	}
	f := strings.Split(owner, ":")
	return len(f) == 4 && f[0] == s.instance && f[2] != s.incarnation
}

// lease is one held claim on a maildir.
type lease struct {
	s     *Store
	dir   string
	owner string
}

func (l *lease) path() string { return filepath.Join(l.dir, leaseFile) }

// aside is a name no other claim uses, next to the lease file.
func (l *lease) aside(what string) string {
	return filepath.Join(l.dir, leaseFile+"."+what+"."+l.owner)
}

// acquireLease claims dir for a new owner. A live claim by anyone else is
// ErrLocked; an expired one is taken over.
func (s *Store) acquireLease(dir string) (*lease, error) {
	l := &lease{s: s, dir: dir, owner: s.newOwner()}
	for attempt := 0; attempt < 2; attempt++ {
		err := l.create()
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, iofs.ErrExist) {
			return nil, fmt.Errorf("maildir: lock %s: %w", dir, err)
		}
		cur, raw, err := l.read()
		if errors.Is(err, iofs.ErrNotExist) {
			continue // released between our link and our read
		}
		if err != nil {
			return nil, fmt.Errorf("maildir: lock %s: %w", dir, err)
		}
		earlier := s.leftByEarlierRun(cur.owner)
		if s.now().Before(cur.expires) && !earlier {
			return nil, fmt.Errorf("maildir: lock %s: held by %s until %s: %w",
				dir, cur.owner, cur.expires.UTC().Format(time.RFC3339), ErrLocked)
		}
		s.log.Warn("maildir: taking over a lease", "dir", dir, "owner", cur.owner,
			"expires", cur.expires.UTC().Format(time.RFC3339), "left_by_earlier_run", earlier)
		if err := l.removeIf(raw); err != nil {
			return nil, fmt.Errorf("maildir: lock %s: %w", dir, err)
		}
	}
	return nil, fmt.Errorf("maildir: lock %s: lease contended: %w", dir, ErrLocked)
}

// create writes a fresh record aside and links it into place; an existing
// claim makes it fail with an error wrapping fs.ErrExist.
func (l *lease) create() error {
	tmp := l.aside("new")
	if err := l.writeRecord(tmp); err != nil {
		return err
	}
	defer l.s.fs.Remove(tmp)
	return l.linkNew(tmp, l.path())
}

// linkNew makes src visible as dst too, failing with an error wrapping
// fs.ErrExist when dst exists: link(2) where the filesystem has it; on one
// without hard links (MemMapFs, in tests) a check and a copy, which is
// atomic enough within one process.
//
// Where link(2) is refused (a filesystem without hard links, such as some
// FUSE or SMB mounts) it falls back to O_EXCL, atomic on local disks and
// NFSv3 and later; a reader that catches the file still empty sees a
// claim that expires one lease after its creation, which errs on the
// safe side.
func (l *lease) linkNew(src, dst string) error {
	var err error
	switch lk := l.s.fs.(type) {
	case hardLinker:
		err = lk.Link(src, dst)
	case *afero.OsFs:
		err = os.Link(src, dst)
	default:
		err = errNoLinks
	}
	if err == nil || errors.Is(err, iofs.ErrExist) {
		return err
	}
	if !errors.Is(err, errNoLinks) && !errors.Is(err, errors.ErrUnsupported) &&
		!errors.Is(err, iofs.ErrPermission) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	b, err := afero.ReadFile(l.s.fs, src)
	if err != nil {
		return err
	}
	f, err := l.s.fs.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (l *lease) record() leaseRecord {
	return leaseRecord{owner: l.owner, expires: l.s.now().Add(l.s.leaseTTL)}
}

// writeRecord writes a record valid from now into path. It is not
// fsynced: a lease lost in a crash frees a mailbox whose holder died with
// the machine anyway, and NFS writes the data back at close, before the
// link that publishes it.
func (l *lease) writeRecord(path string) error {
	f, err := l.s.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, filePerm)
	if err != nil {
		return err
	}
	_, err = f.Write(l.record().marshal())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// read returns the current claim and its raw bytes. An unreadable record
// (not written by popgate) counts as a claim that expires one lease after
// the file's last change, so garbage cannot lock a mailbox for ever.
func (l *lease) read() (leaseRecord, []byte, error) {
	f, err := l.s.fs.Open(l.path())
	if err != nil {
		return leaseRecord{}, nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxLeaseRecord+1))
	if err != nil {
		return leaseRecord{}, nil, err
	}
	rec, perr := parseLease(raw)
	if perr != nil {
		st, err := f.Stat()
		if err != nil {
			return leaseRecord{}, nil, err
		}
		rec = leaseRecord{owner: "unknown", expires: st.ModTime().Add(l.s.leaseTTL)}
	}
	return rec, raw, nil
}

// removeIf removes the lease file if it still holds raw. It renames the
// file aside first (one rename wins), then checks what it moved: another
// process's fresh claim, made since raw was read, is linked back.
func (l *lease) removeIf(raw []byte) error {
	moved := l.aside("old")
	if err := l.s.fs.Rename(l.path(), moved); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil
		}
		return err
	}
	got, err := afero.ReadFile(l.s.fs, moved)
	if err == nil && !bytes.Equal(got, raw) {
		// Not the claim we meant: put it back unless a newer one exists.
		if lerr := l.linkNew(moved, l.path()); lerr != nil && !errors.Is(lerr, iofs.ErrExist) {
			l.s.log.Warn("maildir: could not restore a lease moved by mistake", "dir", l.dir, "err", lerr)
		}
	}
	return l.s.fs.Remove(moved)
}

// errLeaseLost means a session's claim expired and another took over.
var errLeaseLost = errors.New("maildir: lease lost")

// check reports whether the claim is still this owner's and unexpired.
func (l *lease) check() error {
	cur, _, err := l.read()
	if err != nil {
		return fmt.Errorf("maildir: lease %s: %w", l.dir, err)
	}
	if cur.owner != l.owner {
		return fmt.Errorf("maildir: lease %s now held by %s: %w", l.dir, cur.owner, errLeaseLost)
	}
	return nil
}

// renew extends the claim by one lease from now. It fails with
// errLeaseLost when another owner took it over meanwhile.
func (l *lease) renew() error {
	if err := l.check(); err != nil {
		return err
	}
	tmp := l.aside("renew")
	if err := l.writeRecord(tmp); err != nil {
		return fmt.Errorf("maildir: renew lease %s: %w", l.dir, err)
	}
	if err := l.s.fs.Rename(tmp, l.path()); err != nil {
		_ = l.s.fs.Remove(tmp)
		return fmt.Errorf("maildir: renew lease %s: %w", l.dir, err)
	}
	return nil
}

// release removes the claim if it is still this owner's.
func (l *lease) release() error {
	cur, raw, err := l.read()
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("maildir: release lease %s: %w", l.dir, err)
	}
	if cur.owner != l.owner {
		return nil // expired and taken over: not ours to remove
	}
	if err := l.removeIf(raw); err != nil {
		return fmt.Errorf("maildir: release lease %s: %w", l.dir, err)
	}
	return nil
}
