// Command popgate is a single-binary mail gateway: a POP3 server over
// maildirs, an SMTP server for inbound mail and submission, and
// POP-before-SMTP relay authorisation mirrored into sendmail's access.db.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/popgate/popgate/smtp/pickup"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// env carries what every subcommand needs from the process: its standard
// streams, so that tests can run commands in-process and read their output.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// stdinIsTerminal reports whether stdin is an interactive terminal
	// (password prompts without echo, progress bars).
	stdinIsTerminal bool
}

// usageError marks a command-line mistake: it is printed with the usage
// hint and exits 2, where other errors exit 1.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// command is one subcommand of popgate.
type command struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"version": {"print the version", func(_ context.Context, e *env, _ []string) error {
			fmt.Fprintln(e.stdout, "popgate", version)
			return nil
		}},
		"config":   {"print every configuration key with its documentation and value", configCommand},
		"check":    {"validate the configuration and the files it names", checkCommand},
		"serve":    {"run every listener until SIGINT or SIGTERM", serveCommand},
		"user":     {"add|passwd|del|list: manage the users file", userCommand},
		"access":   {"list|get|put|del|dump|make|why: read and edit sendmail and Postfix maps (hash, cdb, lmdb)", accessRouter},
		"grants":   {"list|revoke|revoke-user: POP-before-SMTP grants of the running server", grantsCommand},
		"queue":    {"list|flush|del: the running server's outbound queue", queueCommand},
		"health":   {"exit 0 when the running server answers", healthCommand},
		"report":   {"users who relayed thanks to a POP3 login (move them to SMTP AUTH)", reportCommand},
		"import":   {"mbox|spool|passwd|sendmail: bring over a sendmail + qpopper server", importCommand},
		"sendmail": {"sendmail(1) for local programs (also run as sendmail, mailq, newaliases)", sendmailCommand},
	}
}

// accessRouter sends `access why` to the server and every other access
// subcommand to the map tool.
func accessRouter(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "why" {
		return accessWhy(ctx, e, args[1:])
	}
	return accessCommand(ctx, e, args)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stdinIsTerminal: isTerminal(os.Stdin)}
	// Invoked as sendmail, mailq or newaliases (symlinks, or Debian's
	// alternatives), popgate is its sendmail command.
	code := run(ctx, e, sendmailArgs(os.Args[0], os.Args[1:]))
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and returns the process exit code.
func run(ctx context.Context, e *env, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(e.stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "popgate: unknown command %q (try 'popgate help')\n", args[0])
		return 2
	}
	if err := c.run(ctx, e, args[1:]); err != nil {
		var help *helpRequested
		if errors.As(err, &help) {
			fmt.Fprint(e.stdout, help.text)
			return 0
		}
		fmt.Fprintf(e.stderr, "popgate %s: %v\n", args[0], err)
		// sendmail(1) callers read sysexits.h codes.
		var pe *pickup.Error
		if errors.As(err, &pe) {
			return pe.Code
		}
		var ue *usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

func printUsage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: popgate COMMAND [--config FILE] [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
