package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/popgate/popgate/auth"
	"github.com/popgate/popgate/auth/shadow"
	"github.com/spf13/afero"
)

// defaultMinUID is where Debian's and Fedora's login.defs start people's
// accounts (UID_MIN); below are system accounts.
const defaultMinUID = 1000

// importPasswd turns /etc/passwd + /etc/shadow accounts into users
// NAME@domain with the hashes they already have, so nobody needs a new
// password. Users already in the users file are left alone, so a second
// run adds only what is new. Every account not imported is listed with
// the reason.
func importPasswd(_ context.Context, e *env, args []string) error {
	fs, cfgPath := newFlags("import passwd", e)
	shadowPath := fs.String("shadow", "/etc/shadow", "shadow(5) file with the password hashes")
	passwdPath := fs.String("passwd", "/etc/passwd", "passwd(5) file with the accounts")
	minUID := fs.Int("min-uid", defaultMinUID, "accounts with a lower UID are system accounts and skipped")
	domain := fs.String("domain", "", "users become NAME@DOMAIN (default: the first of domains)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("usage: popgate import passwd [--config F] [--shadow F] [--passwd F] [--min-uid N] [--domain D]")
	}
	if *minUID < 0 {
		return usagef("--min-uid %d: must not be negative", *minUID)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *domain == "" {
		*domain = cfg.Domains[0]
	}
	*domain = strings.ToLower(*domain)
	if !slices.Contains(cfg.Domains, *domain) {
		return usagef("--domain %s is not one of the configured domains (%s): its users could not receive mail",
			*domain, strings.Join(cfg.Domains, ", "))
	}

	accounts, err := readPasswd(*passwdPath)
	if err != nil {
		return err
	}
	hashes, err := readShadow(*shadowPath)
	if err != nil {
		return err
	}
	plan := shadow.Plan(accounts, hashes, shadow.Options{Domain: *domain, MinUID: *minUID, Now: time.Now()})

	var batch []auth.NewUser
	for _, d := range plan {
		if d.Skip == "" {
			batch = append(batch, auth.NewUser{User: d.User, Hash: d.Stored})
		}
	}
	path := cfg.usersFile()
	if err := ensureUsersFile(cfg); err != nil {
		return err
	}
	present, err := auth.AddUsers(afero.NewOsFs(), path, batch)
	if err != nil {
		return err
	}
	printImportReport(e, plan, present, path)
	return nil
}

// readPasswd opens and parses a passwd file; errors name it (and the line).
func readPasswd(path string) ([]shadow.PasswdEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("passwd file: %w", err)
	}
	defer f.Close()
	entries, err := shadow.ParsePasswd(f, path)
	if err != nil {
		return nil, fmt.Errorf("passwd file: %w", err)
	}
	return entries, nil
}

// readShadow opens and parses a shadow file; errors name it (and the line).
func readShadow(path string) (map[string]shadow.ShadowEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("shadow file: %w", err)
	}
	defer f.Close()
	entries, err := shadow.ParseShadow(f, path)
	if err != nil {
		return nil, fmt.Errorf("shadow file: %w", err)
	}
	return entries, nil
}

// printImportReport prints one line per account (imported, already present, skipped
// with the reason) and a summary, so an administrator sees who still needs
// a password.
func printImportReport(e *env, plan []shadow.Decision, present []string, path string) {
	already := map[string]bool{}
	for _, u := range present {
		already[u] = true
	}
	var imported, kept, skipped, weak int
	for _, d := range plan {
		switch {
		case d.Skip != "":
			skipped++
			fmt.Fprintf(e.stdout, "skipped  %s (passwd line %d): %s\n", d.Account, d.Line, d.Skip)
		case already[d.User]:
			kept++
			fmt.Fprintf(e.stdout, "present  %s: already in the users file, left alone\n", d.User)
		default:
			imported++
			if strings.HasPrefix(d.Stored, "{MD5-CRYPT}") {
				weak++
			}
			fmt.Fprintf(e.stdout, "imported %s (%s)\n", d.User, d.Scheme)
		}
	}
	fmt.Fprintf(e.stdout, "%d imported, %d already present, %d skipped; users file %s\n", imported, kept, skipped, path)
	if weak > 0 {
		fmt.Fprintf(e.stderr, "popgate import passwd: warning: %d user(s) have weak MD5-crypt hashes; ask them to set a new password (`popgate user passwd`)\n", weak)
	}
}
