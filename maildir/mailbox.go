package maildir

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/popgate/popgate/maildir/durable"
)

// Mailbox is one user's maildir as POP3 sees it.
type Mailbox struct {
	s     *Store
	dir   string
	lease *lease // set by Lock: the claim Delete and MarkSeen check first
}

// Message is one message of a List snapshot.
type Message struct {
	// UID is the POP3 unique-id (RFC 1939 §7): the file's base name (before
	// ":2,"), or "H" + hex SHA-256 of it when the name is not a valid
	// unique-id. It survives moves from new/ to cur/ and restarts.
	UID string
	// Size is the message size in octets as POP3 sends it, with CRLF line
	// endings (RFC 1939 §5, LIST).
	Size int64

	sub  string // "new" or "cur" when listed
	name string // file name when listed
}

// entry is a listed file while List builds its snapshot.
type entry struct {
	ni   nameInfo
	sub  string
	name string
	size int64
	gone bool
}

// Open returns the mailbox of local@domain. A missing maildir is an empty
// mailbox; it is created when locked or delivered to.
func (s *Store) Open(domain, local string) (*Mailbox, error) {
	dir, err := s.MailboxPath(domain, local)
	if err != nil {
		return nil, err
	}
	return &Mailbox{s: s, dir: dir}, nil
}

// Path returns the maildir directory.
func (m *Mailbox) Path() string { return m.dir }

// List returns a snapshot of the messages in new/ and cur/, oldest first:
// by the timestamp that starts the name, then by the rest of the name with
// numbers compared as numbers. The order is the same on every call.
func (m *Mailbox) List() ([]Message, error) {
	newNames, err := m.readNames(subNew)
	if err != nil {
		return nil, err
	}
	curNames, err := m.readNames(subCur)
	if err != nil {
		return nil, err
	}
	entries := make([]entry, 0, len(newNames)+len(curNames))
	for _, n := range newNames {
		entries = append(entries, entry{ni: parseName(n), sub: subNew, name: n})
	}
	for _, n := range curNames {
		entries = append(entries, entry{ni: parseName(n), sub: subCur, name: n})
	}
	// Sort small keys, not the entries: they are large to move and the
	// comparisons then stay in cache.
	keys := make([]sortKey, len(entries))
	for i := range entries {
		keys[i] = sortKey{ts: entries[i].ni.ts, rest: entries[i].ni.rest, idx: int32(i)}
	}
	slices.SortFunc(keys, func(a, b sortKey) int {
		switch {
		case a.ts < b.ts:
			return -1
		case a.ts > b.ts:
			return 1
		}
		if c := naturalCompare(a.rest, b.rest); c != 0 {
			return c
		}
		return compareEntries(&entries[a.idx], &entries[b.idx])
	})
	order := make([]int32, len(keys))
	for i, k := range keys {
		order[i] = k.idx
	}
	// The same base name twice (new/x and cur/x:2,S written by some other
	// program) would give two messages one UID; give the later one its own.
	own := false
	for k := 1; k < len(order); k++ {
		e, prev := &entries[order[k]], &entries[order[k-1]]
		if e.ni.base == prev.ni.base {
			e.ni.uid = uidFor(e.sub + "/" + e.name + "/dup")
		}
		own = own || e.ni.ownUID
	}
	if own || (len(order) > 0 && entries[order[0]].ni.ownUID) {
		dedupUIDs(entries, order)
	}
	if err := m.s.resolveSizes(m.dir, entries); err != nil {
		return nil, err
	}
	msgs := make([]Message, 0, len(entries))
	for _, i := range order {
		e := &entries[i]
		if e.gone {
			continue
		}
		msgs = append(msgs, Message{UID: e.ni.uid, Size: e.size, sub: e.sub, name: e.name})
	}
	return msgs, nil
}

// dedupUIDs gives a later message a UID of its own when an imported
// message's UID (from its name) equals an earlier message's: UIDs must be
// unique within a maildrop (RFC 1939 §7).
func dedupUIDs(entries []entry, order []int32) {
	seen := make(map[string]bool, len(order))
	for _, i := range order {
		e := &entries[i]
		if seen[e.ni.uid] {
			e.ni.uid = uidFor(e.sub + "/" + e.name + "/dup")
		}
		seen[e.ni.uid] = true
	}
}

// sortKey is what List sorts: the delivery order key of entries[idx].
type sortKey struct {
	ts   int64
	rest string
	idx  int32
}

// compareEntries orders by delivery (compareNames), then by subdirectory
// and full name so that even duplicates have a fixed order.
func compareEntries(a, b *entry) int {
	if c := compareNames(&a.ni, &b.ni); c != 0 {
		return c
	}
	if c := strings.Compare(a.sub, b.sub); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

// readNames lists the message files of one subdirectory with a single
// directory read and no per-file stat. Hidden names are skipped.
func (m *Mailbox) readNames(sub string) ([]string, error) {
	dir := filepath.Join(m.dir, sub)
	f, err := m.s.fs.Open(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("maildir: list %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("maildir: list %s: %w", dir, err)
	}
	return slices.DeleteFunc(names, func(n string) bool { return n == "" || n[0] == '.' }), nil
}

// Open returns the message file as stored (LF line endings for mail
// delivered here). When the file has moved between new/ and cur/ since the
// listing it is found there; when it is gone the error wraps ErrNotFound.
func (m *Mailbox) Open(msg Message) (io.ReadCloser, error) {
	if msg.name == "" {
		return nil, fmt.Errorf("maildir: open %s: message not from List", msg.UID)
	}
	for _, p := range m.candidates(msg) {
		f, err := m.s.fs.Open(p)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, iofs.ErrNotExist) {
			return nil, fmt.Errorf("maildir: open %s: %w", msg.UID, err)
		}
	}
	p, err := m.find(msg, nil)
	if err != nil {
		return nil, err
	}
	if p != "" {
		f, err := m.s.fs.Open(p)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, iofs.ErrNotExist) {
			return nil, fmt.Errorf("maildir: open %s: %w", msg.UID, err)
		}
	}
	return nil, fmt.Errorf("maildir: open %s: %w", msg.UID, ErrNotFound)
}

// candidates are the paths a listed message may have now: where it was
// listed, then where a move new/ -> cur/ marking it seen would put it.
func (m *Mailbox) candidates(msg Message) []string {
	ni := parseName(msg.name)
	c := []string{filepath.Join(m.dir, msg.sub, msg.name)}
	if msg.sub == subNew {
		c = append(c, filepath.Join(m.dir, subCur, ni.base+infoSep+addSeenFlag(ni.flags)))
	} else {
		c = append(c, filepath.Join(m.dir, subNew, ni.base))
	}
	return c
}

// find looks for a file with msg's base name in new/ and cur/, with one
// directory read each (cached in names for callers handling many messages).
// It returns "" when there is none.
func (m *Mailbox) find(msg Message, names map[string]string) (string, error) {
	if names == nil {
		var err error
		if names, err = m.namesByBase(); err != nil {
			return "", err
		}
	}
	return names[parseName(msg.name).base], nil
}

// namesByBase maps each base name in new/ and cur/ to its current path.
func (m *Mailbox) namesByBase() (map[string]string, error) {
	byBase := make(map[string]string)
	for _, sub := range []string{subNew, subCur} {
		names, err := m.readNames(sub)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			byBase[parseName(n).base] = filepath.Join(m.dir, sub, n)
		}
	}
	return byBase, nil
}

// Delete removes the messages' files, wherever in new/ or cur/ they are
// now, and fsyncs the directories. A file already gone is not an error.
func (m *Mailbox) Delete(msgs []Message) error {
	if err := m.checkLease(); err != nil {
		return err
	}
	var byBase map[string]string // read only if a file moved
	dirty := map[string]bool{}
	for _, msg := range msgs {
		removed := false
		for _, p := range m.candidates(msg) {
			err := m.s.fs.Remove(p)
			if err == nil {
				dirty[filepath.Dir(p)] = true
				removed = true
				break
			}
			if !errors.Is(err, iofs.ErrNotExist) {
				return fmt.Errorf("maildir: delete %s: %w", msg.UID, err)
			}
		}
		if removed {
			continue
		}
		if byBase == nil {
			var err error
			if byBase, err = m.namesByBase(); err != nil {
				return fmt.Errorf("maildir: delete %s: %w", msg.UID, err)
			}
		}
		p, _ := m.find(msg, byBase)
		if p == "" {
			continue // already gone
		}
		if err := m.s.fs.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("maildir: delete %s: %w", msg.UID, err)
		}
		dirty[filepath.Dir(p)] = true
	}
	return m.syncDirs(dirty)
}

// MarkSeen moves messages from new/ to cur/, adding the seen flag to the
// maildir info (":2,S"); messages in cur/ without it get it too. Their UID
// and Size stay the same. A message already gone is skipped.
func (m *Mailbox) MarkSeen(msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := m.checkLease(); err != nil {
		return err
	}
	// A maildir made by another program may lack cur/; without it every
	// rename below would look like a vanished message.
	if err := m.s.ensureMaildir(m.dir); err != nil {
		return fmt.Errorf("maildir: mark seen: %w", err)
	}
	dirty := map[string]bool{}
	for _, msg := range msgs {
		ni := parseName(msg.name)
		flags := addSeenFlag(ni.flags)
		if msg.sub == subCur && flags == ni.flags && strings.Contains(msg.name, infoSep) {
			continue
		}
		src := filepath.Join(m.dir, msg.sub, msg.name)
		dst := filepath.Join(m.dir, subCur, ni.base+infoSep+flags)
		if err := m.s.fs.Rename(src, dst); err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				continue // moved or deleted by someone else
			}
			return fmt.Errorf("maildir: mark seen %s: %w", msg.UID, err)
		}
		dirty[filepath.Dir(src)] = true
		dirty[filepath.Dir(dst)] = true
	}
	return m.syncDirs(dirty)
}

func (m *Mailbox) syncDirs(dirs map[string]bool) error {
	for d := range dirs {
		if err := durable.SyncDir(m.s.fs, d); err != nil {
			return fmt.Errorf("maildir: %w", err)
		}
	}
	return nil
}
