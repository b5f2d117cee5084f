// Package aliases reads sendmail aliases(5) files and expands local
// addresses through them.
package aliases

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Limits that keep a hostile or broken aliases file from costing much.
const (
	// maxDepth bounds nested expansion; sendmail stops at 10 as well.
	maxDepth = 10
	// maxExpansion bounds the addresses one recipient may expand to.
	maxExpansion = 1000
	// maxLine bounds one logical (joined) line.
	maxLine = 64 * 1024
)

// ErrLoop is returned when an alias expands back into itself with no
// other destination.
var ErrLoop = errors.New("aliases: expansion loop")

// Map is a parsed aliases file. Keys are lowercased; a key without a
// domain ("postmaster") applies to every local domain, one with a domain
// ("sales@example.com") only to that address, and "@example.net" is a
// catch-all for that domain as in sendmail's virtusertable: it takes the
// addresses no other key names, only as a recipient's first lookup (its
// targets are not caught again), and "%1" in its targets stands for the
// recipient's local part ("@example.net: %1@example.com").
type Map struct {
	entries map[string][]target
	// ReadInclude opens the file named by an :include: target. Nil refuses
	// every :include:.
	ReadInclude func(path string) (io.ReadCloser, error)
	// Logger receives a line for every refused target (pipes, files).
	Logger *slog.Logger
}

type targetKind int

const (
	address targetKind = iota
	include
	pipe
	file
)

type target struct {
	kind  targetKind
	value string
	line  int
}

// Parse reads aliases(5) text: "name: target, target, ..." with
// continuation lines that start with a space or tab, '#' comments, and
// targets that are addresses, local names, :include:/path, "|command" or
// /path/to/file. Errors name the line.
func Parse(r io.Reader) (*Map, error) {
	m := &Map{entries: map[string][]target{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	var (
		cur     strings.Builder
		curLine int
		n       int
	)
	flush := func() error {
		if cur.Len() == 0 {
			return nil
		}
		err := m.addLine(cur.String(), curLine)
		cur.Reset()
		return err
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if line != "" && (line[0] == ' ' || line[0] == '\t') {
			if strings.TrimSpace(line) == "" {
				continue
			}
			if cur.Len() == 0 {
				return nil, fmt.Errorf("aliases: line %d: continuation line without an alias before it", n)
			}
			cur.WriteString(" " + strings.TrimSpace(line))
			if cur.Len() > maxLine {
				return nil, fmt.Errorf("aliases: line %d: alias longer than %d bytes", curLine, maxLine)
			}
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		cur.WriteString(line)
		curLine = n
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("aliases: line %d: %w", n+1, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Map) addLine(line string, n int) error {
	name, rest, ok := strings.Cut(line, ":")
	if !ok {
		return fmt.Errorf("aliases: line %d: missing ':' after the alias name", n)
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" || strings.ContainsAny(name, " \t\",") {
		return fmt.Errorf("aliases: line %d: bad alias name %q", n, name)
	}
	if _, dup := m.entries[name]; dup {
		return fmt.Errorf("aliases: line %d: alias %q defined twice", n, name)
	}
	var ts []target
	for _, raw := range splitTargets(rest) {
		t := strings.TrimSpace(raw)
		switch {
		case t == "":
			continue
		case strings.HasPrefix(strings.ToLower(t), ":include:"):
			ts = append(ts, target{include, strings.TrimSpace(t[len(":include:"):]), n})
		case strings.HasPrefix(t, "|") || strings.HasPrefix(t, `"|`):
			ts = append(ts, target{pipe, strings.Trim(t, `"`), n})
		case strings.HasPrefix(t, "/"):
			ts = append(ts, target{file, t, n})
		default:
			t = strings.Trim(t, `"`)
			if strings.ContainsAny(t, " \t<>") {
				return fmt.Errorf("aliases: line %d: bad target %q", n, t)
			}
			ts = append(ts, target{address, strings.ToLower(t), n})
		}
	}
	if len(ts) == 0 {
		return fmt.Errorf("aliases: line %d: alias %q has no targets", n, name)
	}
	m.entries[name] = ts
	return nil
}

// splitTargets splits on commas outside double quotes, so that a quoted
// pipe command may contain commas.
func splitTargets(s string) []string {
	var out []string
	quoted := false
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// Len reports how many aliases the map holds.
func (m *Map) Len() int { return len(m.entries) }

// Has reports whether addr (local@domain, lowercased) is an alias, by its
// full address or by its local part.
func (m *Map) Has(addr string) bool {
	_, _, ok := m.lookup(addr, true)
	return ok
}

// lookup finds addr's targets: by the full address, the local part, then
// (with catchAll) the "@domain" catch-all, which caught reports.
func (m *Map) lookup(addr string, catchAll bool) (ts []target, caught, ok bool) {
	if ts, ok := m.entries[addr]; ok {
		return ts, false, true
	}
	local, domain, hasDomain := strings.Cut(addr, "@")
	if ts, ok := m.entries[local]; ok {
		return ts, false, true
	}
	if catchAll && hasDomain && domain != "" {
		if ts, ok := m.entries["@"+domain]; ok {
			return ts, true, true
		}
	}
	return nil, false, false
}

// Expand resolves addr (local@domain, lowercased, in a local domain)
// through the aliases, recursively. A target without a domain takes addr's
// domain. isLocal tells which domains are local: only their addresses are
// expanded further. Pipes and files are refused: they are skipped with a
// log line, and an alias that leaves nothing else is an error. An address
// that is no alias expands to itself.
func (m *Map) Expand(addr string, isLocal func(domain string) bool) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	if err := m.expand(addr, isLocal, 0, seen, &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("aliases: %s expands to nothing deliverable: %w", addr, ErrLoop)
	}
	return out, nil
}

func (m *Map) expand(addr string, isLocal func(string) bool, depth int, seen map[string]bool, out *[]string) error {
	if depth > maxDepth {
		return fmt.Errorf("aliases: %s: nested deeper than %d", addr, maxDepth)
	}
	if seen[addr] {
		return nil
	}
	seen[addr] = true
	local, domain, _ := strings.Cut(addr, "@")
	ts, caught, ok := m.lookup(addr, depth == 0)
	if !ok || !isLocal(domain) {
		if len(*out) >= maxExpansion {
			return fmt.Errorf("aliases: %s expands to more than %d addresses", addr, maxExpansion)
		}
		*out = append(*out, addr)
		return nil
	}
	for _, t := range ts {
		switch t.kind {
		case pipe, file:
			m.log().Warn("aliases target refused", "alias", addr, "target", t.value, "line", t.line,
				"reason", "popgate delivers only to mailboxes, not to programs or files")
		case include:
			addrs, err := m.readInclude(t.value)
			if err != nil {
				return fmt.Errorf("aliases: %s: line %d: %w", addr, t.line, err)
			}
			for _, a := range addrs {
				if err := m.expand(qualify(a, domain), isLocal, depth+1, seen, out); err != nil {
					return err
				}
			}
		default:
			next := qualify(t.value, domain)
			if caught {
				next = qualify(strings.ReplaceAll(t.value, "%1", local), domain)
				if next == addr {
					// The catch-all's own mailbox: delivered, not a loop.
					*out = append(*out, addr)
					continue
				}
			}
			if err := m.expand(next, isLocal, depth+1, seen, out); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *Map) readInclude(path string) ([]string, error) {
	if m.ReadInclude == nil {
		return nil, fmt.Errorf(":include:%s refused: includes are not enabled", path)
	}
	f, err := m.ReadInclude(path)
	if err != nil {
		return nil, fmt.Errorf(":include:%s: %w", path, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), maxLine)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, t := range splitTargets(line) {
			t = strings.ToLower(strings.Trim(strings.TrimSpace(t), `"`))
			switch {
			case t == "":
			case strings.HasPrefix(t, "|"), strings.HasPrefix(t, "/"), strings.HasPrefix(t, ":include:"):
				m.log().Warn("aliases include target refused", "file", path, "target", t)
			default:
				out = append(out, t)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf(":include:%s: %w", path, err)
	}
	return out, nil
}

func qualify(a, domain string) string {
	if strings.Contains(a, "@") {
		return a
	}
	return a + "@" + domain
}

func (m *Map) log() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.New(slog.DiscardHandler)
}
