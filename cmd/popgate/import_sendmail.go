package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// importSendmail converts a sendmail /etc/mail tree into a popgate
// configuration: DIR/popgate.toml, DIR/access and DIR/aliases. Every
// line it cannot carry over is printed with its file and line, and the
// result is checked with popgate's own configuration loader before the
// command succeeds.
func importSendmail(_ context.Context, e *env, args []string) error {
	fs, _ := newFlags("import sendmail", e)
	from := fs.String("from", "/etc/mail", "sendmail's configuration directory")
	out := fs.String("out", "", "directory to write popgate.toml, access and aliases into (created if missing)")
	dataDir := fs.String("data-dir", "/var/lib/popgate", "data_dir of the new configuration")
	force := fs.Bool("force", false, "overwrite popgate.toml, access and aliases when they exist in --out")
	userDomain := fs.String("domain", "", "domain of the popgate users that bare virtusertable targets name (default: the first local domain other than localhost, as import passwd --domain sets it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		return usagef("usage: popgate import sendmail [--from /etc/mail] --out DIR [--data-dir DIR] [--domain D] [--force]")
	}
	if st, err := os.Stat(*from); err != nil || !st.IsDir() {
		return fmt.Errorf("import sendmail: --from %s is not a directory", *from)
	}
	im := newSMImport(*from)
	steps := []func() error{
		func() error { return im.readDomainList("local-host-names") },
		im.readSendmailCf,
		im.readAccess,
		im.readRelayDomains,
		im.readMailertable,
		im.readAliases,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	if len(im.domains) == 0 {
		return fmt.Errorf("import sendmail: no local domain in %s (local-host-names, Cw lines of sendmail.cf)", *from)
	}
	im.userDomain = strings.ToLower(*userDomain)
	for _, d := range im.domains {
		if im.userDomain == "" && d != "localhost" {
			im.userDomain = d
		}
	}
	if im.userDomain == "" {
		im.userDomain = im.domains[0]
	}
	// virtusertable last: it needs the local domains to tell local
	// targets from remote ones.
	if err := im.readVirtusertable(); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("import sendmail: %w", err)
	}
	outDir, err := filepath.Abs(*out)
	if err != nil {
		return fmt.Errorf("import sendmail: %w", err)
	}
	cfgPath, err := im.write(outDir, *dataDir, *force)
	if err != nil {
		return err
	}
	// The command's promise: `popgate check` passes on what it wrote.
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return fmt.Errorf("import sendmail: the written configuration does not load (a bug): %w", err)
	}
	if err := checkFiles(cfg, nopWriter{}); err != nil {
		return fmt.Errorf("import sendmail: the written files do not check (a bug): %w", err)
	}
	im.report(e, cfgPath)
	return nil
}

// write writes the three files into dir and returns the configuration's
// path. Unless force is set it refuses, before writing anything, when one
// of them exists: an operator runs the import again after editing
// popgate.toml (or over the file a package installed), and losing those
// edits without a word is worse than a refusal.
func (im *smImport) write(dir, dataDir string, force bool) (string, error) {
	stamp := fmt.Sprintf("# Written by `popgate import sendmail --from %s` on %s.\n", tomlQuote(im.from), time.Now().UTC().Format(time.RFC3339))
	files := map[string]string{}
	if len(im.access) > 0 {
		files["access"] = stamp + "# The access rules popgate could read, then relay-domains, virtusertable and\n" +
			"# mailertable errors in sendmail's own access syntax.\n" + strings.Join(im.access, "\n") + "\n"
	}
	if len(im.aliases) > 0 {
		files["aliases"] = stamp + "# aliases, then virtusertable (user@domain and @domain catch-all entries).\n" +
			strings.Join(im.aliases, "\n") + "\n"
	}
	var b strings.Builder
	b.WriteString(stamp)
	b.WriteString("# Check it with `popgate check --config " + filepath.Join(dir, "popgate.toml") + "`.\n")
	// The users' domain goes first: `import passwd` and `import spool`
	// default to the first of domains, and sendmail's local-host-names
	// usually starts with localhost.
	domains := []string{im.userDomain}
	for _, d := range im.domains {
		if d != im.userDomain {
			domains = append(domains, d)
		}
	}
	fmt.Fprintf(&b, "domains = %s\n", tomlStrings(domains))
	fmt.Fprintf(&b, "data_dir = %s\n", tomlQuote(dataDir))
	if _, ok := files["aliases"]; ok {
		fmt.Fprintf(&b, "\n[users]\naliases = %s\n", tomlQuote(filepath.Join(dir, "aliases")))
	}
	if _, ok := files["access"]; ok {
		fmt.Fprintf(&b, "\n[relay]\naccess_file = %s\n", tomlQuote(filepath.Join(dir, "access")))
	}
	if im.smarthost != "" || len(im.routes) > 0 {
		b.WriteString("\n[queue]\n")
		if im.smarthost != "" {
			fmt.Fprintf(&b, "smarthost = %s\n", tomlQuote(im.smarthost))
		}
		if len(im.routes) > 0 {
			b.WriteString("\n[queue.routes]  # from mailertable\n")
			keys := make([]string, 0, len(im.routes))
			for k := range im.routes {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "%s = %s\n", tomlQuote(k), tomlQuote(im.routes[k]))
			}
		}
	}
	files["popgate.toml"] = b.String()
	// Make sure the TOML we wrote by hand is TOML.
	if _, err := toml.Decode(files["popgate.toml"], new(map[string]any)); err != nil {
		return "", fmt.Errorf("import sendmail: generated popgate.toml does not parse (a bug): %w", err)
	}
	names := []string{"access", "aliases", "popgate.toml"}
	if !force {
		var exist []string
		for _, name := range names {
			if _, ok := files[name]; !ok {
				continue
			}
			p := filepath.Join(dir, name)
			if _, err := os.Lstat(p); err == nil {
				exist = append(exist, p)
			} else if !errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("import sendmail: %w", err)
			}
		}
		if len(exist) > 0 {
			return "", fmt.Errorf("import sendmail: %s already exist(s) and would be overwritten (with any edits since): move them away, or pass --force", strings.Join(exist, ", "))
		}
	}
	for _, name := range names {
		text, ok := files[name]
		if !ok {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return "", fmt.Errorf("import sendmail: %w", err)
		}
	}
	return filepath.Join(dir, "popgate.toml"), nil
}

// tomlQuote writes s as a TOML basic string. Go's strconv.Quote is not
// TOML: it writes escapes such as \a that TOML does not have.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func tomlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = tomlQuote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// report prints what was carried over and, line by line, what was not.
func (im *smImport) report(e *env, cfgPath string) {
	w := e.stdout
	fmt.Fprintf(w, "wrote %s\n", cfgPath)
	fmt.Fprintf(w, "  read from %s: %s\n", im.from, strings.Join(im.filesRead, ", "))
	if len(im.filesAbsent) > 0 {
		fmt.Fprintf(w, "  not present: %s\n", strings.Join(im.filesAbsent, ", "))
	}
	fmt.Fprintf(w, "  domains   %s\n", strings.Join(im.domains, ", "))
	fmt.Fprintf(w, "  access    %d rules\n  aliases   %d entries\n", len(im.access), len(im.aliases))
	if im.smarthost != "" {
		fmt.Fprintf(w, "  smarthost %s\n", im.smarthost)
	}
	fmt.Fprintf(w, "  routes    %d\n", len(im.routes))
	for _, n := range im.notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(im.skipped) > 0 {
		fmt.Fprintf(e.stderr, "%d line(s) not carried over:\n", len(im.skipped))
		for _, s := range im.skipped {
			fmt.Fprintf(e.stderr, "  %s\n", s)
		}
	}
}
