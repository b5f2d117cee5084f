package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/popgate/popgate/auth"
	"github.com/spf13/afero"
	"golang.org/x/term"
)

// minPasswordLen is the shortest password `popgate user` accepts.
const minPasswordLen = 8

// userCommand manages the users file: add, passwd, del, list.
func userCommand(ctx context.Context, e *env, args []string) error {
	fs, cfgPath := newFlags("user", e)
	stdin := fs.Bool("stdin", false, "read the password from the first line of standard input")
	if len(args) == 0 {
		return usagef("usage: popgate user add|passwd|del|list [--config FILE] [--stdin] [ADDRESS]")
	}
	sub := args[0]
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	osfs := afero.NewOsFs()
	path := cfg.usersFile()
	want := 1
	if sub == "list" {
		want = 0
	}
	if fs.NArg() != want {
		return usagef("%s takes %d argument(s), got %d", sub, want, fs.NArg())
	}
	var user string
	if want == 1 {
		user = strings.ToLower(fs.Arg(0))
		if err := auth.ValidateUsername(user); err != nil {
			return err
		}
	}
	switch sub {
	case "list":
		users, err := auth.ListUsers(osfs, path)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Fprintln(e.stdout, u)
		}
		return nil
	case "add", "passwd":
		pw, err := readPassword(e, *stdin)
		if err != nil {
			return err
		}
		hash, err := auth.HashPassword(pw)
		if err != nil {
			return err
		}
		if sub == "add" {
			if err := ensureUsersFile(cfg); err != nil {
				return err
			}
			if err := auth.AddUser(osfs, path, user, hash); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "added %s to %s\n", user, path)
			return nil
		}
		if err := auth.SetPassword(osfs, path, user, hash); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "password changed for %s\n", user)
		revokeGrants(ctx, e, cfg, user)
		return nil
	case "del":
		if err := auth.DeleteUser(osfs, path, user); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "deleted %s from %s\n", user, path)
		revokeGrants(ctx, e, cfg, user)
		return nil
	default:
		return usagef("unknown user command %q (want add, passwd, del or list)", sub)
	}
}

// ensureUsersFile creates an empty users file (mode 0600) where the
// embedded default expects one, so that the first `user add` works.
func ensureUsersFile(cfg *Config) error {
	path := cfg.usersFile()
	if _, err := os.Stat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return fmt.Errorf("users file: %w", err)
	}
	return f.Close()
}

// revokeGrants tells a running server that user's POP-before-SMTP grants
// are void: a changed or deleted password must not keep relaying.
func revokeGrants(ctx context.Context, e *env, cfg *Config, user string) {
	var n int
	err := callControl(ctx, cfg.controlSocket(), "grants.revoke-user", []string{user}, &n)
	switch {
	case errors.Is(err, errNotRunning):
	case err != nil:
		fmt.Fprintf(e.stderr, "popgate user: could not revoke relay grants of %s: %v\n", user, err)
	case n > 0:
		fmt.Fprintf(e.stdout, "revoked %d relay grant(s) of %s\n", n, user)
	}
}

// readPassword reads a new password: from the first line of stdin with
// --stdin, else twice from the terminal without echo.
func readPassword(e *env, fromStdin bool) (string, error) {
	var pw string
	if fromStdin || !e.stdinIsTerminal {
		if !fromStdin {
			return "", usagef("standard input is not a terminal: use --stdin to read the password from it")
		}
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("reading password from stdin: no input")
		}
		pw = strings.TrimRight(line, "\r\n")
	} else {
		f, ok := e.stdin.(*os.File)
		if !ok {
			return "", errors.New("no terminal to prompt on")
		}
		fmt.Fprint(e.stderr, "New password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("reading password: %w", err)
		}
		fmt.Fprint(e.stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("reading password: %w", err)
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords do not match")
		}
		pw = string(a)
	}
	if len(pw) < minPasswordLen {
		return "", fmt.Errorf("password too short: at least %d characters", minPasswordLen)
	}
	if strings.ContainsAny(pw, "\x00\r\n") {
		return "", errors.New("password must not contain NUL or line breaks")
	}
	return pw, nil
}
