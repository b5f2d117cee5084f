package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/popgate/popgate/smtp/pickup"
	"github.com/popgate/popgate/smtp/queue"
)

// defaultSendmailConfig is where sendmail(1) looks for the configuration
// when neither --config nor $POPGATE_CONFIG names one.
const defaultSendmailConfig = "/etc/popgate/popgate.toml"

// sendmailTimeout bounds handing one message to the server.
const sendmailTimeout = 10 * time.Minute

// sendmailCommand is sendmail(1) for local programs. Every failure is a
// *pickup.Error carrying the sysexits code the process exits with.
func sendmailCommand(ctx context.Context, e *env, args []string) error {
	o, err := parseSendmailArgs(args)
	if err != nil {
		return &pickup.Error{Code: pickup.ExUsage, Msg: err.Error() + " (usage: sendmail [-t] [-i] [-f sender] [-F name] [-bm|-bs|-bp|-bi] [-q] [--config FILE] [recipient ...])"}
	}
	cfg, err := sendmailConfig(o.config, os.Getenv("POPGATE_CONFIG"))
	if err != nil {
		return &pickup.Error{Code: pickup.ExConfig, Msg: err.Error()}
	}
	switch o.mode {
	case modeQueueList:
		return sendmailQueueList(ctx, e, cfg)
	case modeFlush:
		if err := callControl(ctx, cfg.controlSocket(), "queue.flush", nil, nil); err != nil {
			return controlFailure("queue flush", err)
		}
		if o.verbose {
			fmt.Fprintln(e.stderr, "popgate: queue flush started")
		}
		return nil
	case modeAliases:
		return sendmailAliases(ctx, e, cfg)
	case modeSMTP:
		return sendmailSMTP(ctx, e, cfg, o)
	}
	msg, err := readSendmailMessage(e.stdin, o.ignoreDots, cfg.SMTP.MaxMessageBytes)
	if errors.Is(err, errMessageTooLarge) {
		return &pickup.Error{Code: pickup.ExDataErr, Msg: fmt.Sprintf("%v (smtp.max_message_bytes)", err)}
	}
	if err != nil {
		return &pickup.Error{Code: pickup.ExIOErr, Msg: err.Error()}
	}
	rcpts := o.rcpts
	if o.extract {
		// As Postfix does: recipients on the command line are added to
		// those of the header (sendmail 8 would drop them instead).
		rcpts = append(extractRecipients(msg), rcpts...)
	}
	if len(rcpts) == 0 {
		return &pickup.Error{Code: pickup.ExUsage, Msg: "no recipients (give them as arguments, or use -t)"}
	}
	req := pickup.Request{From: o.from, FullName: o.fullName, Rcpts: rcpts, Size: int64(len(msg))}
	where, err := handOver(ctx, cfg, req, msg)
	if err != nil {
		return err
	}
	if o.verbose {
		fmt.Fprintf(e.stderr, "popgate: %s\n", where)
	}
	return nil
}

// handOver gives one message to the running server, or leaves it in the
// maildrop when the server is not running; it says where the message went.
func handOver(ctx context.Context, cfg *Config, req pickup.Request, msg []byte) (string, error) {
	id, err := pickup.Send(ctx, cfg.sendmailSocket(), req, bytes.NewReader(msg), sendmailTimeout)
	if err == nil {
		return "accepted as " + id, nil
	}
	var pe *pickup.Error
	if !errors.As(err, &pe) {
		pe = &pickup.Error{Code: pickup.ExTempFail, Msg: err.Error()}
	}
	if !errors.Is(err, pickup.ErrNotRunning) && !pe.Temporary() {
		return "", pe // refused for good: the caller must know
	}
	// Not running, or a temporary failure (busy, a delivery problem): the
	// maildrop keeps the message and the server retries it every minute,
	// as a queue would.
	name, derr := pickup.WriteMaildrop(cfg.maildropDir(), req, bytes.NewReader(msg))
	if errors.Is(derr, fs.ErrNotExist) && os.Geteuid() == 0 {
		// The server has never run (mail from a package's postinst, say):
		// root sets the maildrop up as the server would, so nothing is lost.
		if err := pickup.EnsureMaildrop(cfg.maildropDir()); err == nil {
			name, derr = pickup.WriteMaildrop(cfg.maildropDir(), req, bytes.NewReader(msg))
		}
	}
	if derr != nil && !errors.Is(err, pickup.ErrNotRunning) {
		return "", &pickup.Error{Code: pickup.ExTempFail, Msg: fmt.Sprintf(
			"%s; the maildrop %s cannot take the message either (%v); it was NOT sent, try again later",
			pe.Msg, cfg.maildropDir(), errors.Unwrap(derr))}
	}
	if derr != nil {
		return "", &pickup.Error{Code: pickup.ExTempFail, Msg: fmt.Sprintf(
			"popgate is not running (no answer on %s) and the maildrop %s cannot take the message (%v); it was NOT sent, try again later",
			cfg.sendmailSocket(), cfg.maildropDir(), errors.Unwrap(derr))}
	}
	if !errors.Is(err, pickup.ErrNotRunning) {
		return fmt.Sprintf("popgate could not take it now (%s): left in the maildrop as %s, retried within a minute", pe.Msg, name), nil
	}
	return fmt.Sprintf("popgate is not running: left in the maildrop as %s, delivered when it starts", name), nil
}

// sendmailConfig loads the configuration: --config, else $POPGATE_CONFIG,
// else /etc/popgate/popgate.toml, else (that file missing) the embedded
// default.
func sendmailConfig(flag, envPath string) (*Config, error) {
	path := flag
	if path == "" {
		path = envPath
	}
	if path == "" {
		path = defaultSendmailConfig
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			path = ""
		}
	}
	return loadConfig(path)
}

// controlFailure maps a control-socket failure to a sysexits code.
func controlFailure(what string, err error) error {
	switch {
	case errors.Is(err, syscall.EACCES) || strings.Contains(err.Error(), "permission denied"):
		return &pickup.Error{Code: pickup.ExNoPerm, Msg: fmt.Sprintf("%s: permission denied (the control socket is for root and the popgate user)", what)}
	case errors.Is(err, errNotRunning):
		return &pickup.Error{Code: pickup.ExUnavailable, Msg: fmt.Sprintf("%s: %v", what, err)}
	}
	return &pickup.Error{Code: pickup.ExSoftware, Msg: fmt.Sprintf("%s: %v", what, err)}
}

// sendmailQueueList is -bp (mailq): the server's queue, and what waits in
// the maildrop while it is down.
func sendmailQueueList(ctx context.Context, e *env, cfg *Config) error {
	var items []queue.Item
	err := callControl(ctx, cfg.controlSocket(), "queue.list", nil, &items)
	if errors.Is(err, errNotRunning) {
		n, derr := maildropCount(cfg.maildropDir())
		if derr != nil {
			return controlFailure("mailq", err)
		}
		fmt.Fprintf(e.stdout, "popgate is not running; %d message(s) wait in the maildrop %s\n", n, cfg.maildropDir())
		return nil
	}
	if err != nil {
		return controlFailure("mailq", err)
	}
	if len(items) == 0 {
		fmt.Fprintln(e.stdout, "Mail queue is empty")
		return nil
	}
	return printQueue(e.stdout, items)
}

// maildropCount counts complete and incomplete files in the maildrop
// (readable only to root and the server's user).
func maildropCount(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), "m.") {
			n++
		}
	}
	return n, nil
}

// sendmailAliases is -bi (newaliases): popgate reads the aliases file
// itself, so this validates it and asks the running server to reload.
func sendmailAliases(ctx context.Context, e *env, cfg *Config) error {
	if cfg.Users.Aliases == "" {
		fmt.Fprintln(e.stdout, "popgate: no aliases file configured (users.aliases); nothing to do")
		return nil
	}
	m, err := loadAliases(cfg.Users.Aliases, slog.New(slog.DiscardHandler))
	if err != nil {
		return &pickup.Error{Code: pickup.ExDataErr, Msg: err.Error()}
	}
	fmt.Fprintf(e.stdout, "%s: %d aliases\n", filepath.Clean(cfg.Users.Aliases), m.Len())
	err = callControl(ctx, cfg.controlSocket(), "reload", nil, nil)
	switch {
	case err == nil:
		fmt.Fprintln(e.stdout, "popgate: the running server reloads them")
	case errors.Is(err, errNotRunning):
		fmt.Fprintln(e.stdout, "popgate: not running; it reads them when it starts")
	default:
		return controlFailure("newaliases: reload", err)
	}
	return nil
}
