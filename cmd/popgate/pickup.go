package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/popgate/popgate/smtp"
	"github.com/popgate/popgate/smtp/pickup"
)

// maildropInterval is how often the server looks into the maildrop
// besides at start (Postfix's pickup polls every 60 s as well).
const maildropInterval = time.Minute

// listenPickup builds the local submission server over the same delivery
// path as SMTP, binds its socket (mode 0666: any local user may submit,
// the server trusts only SO_PEERCRED) and prepares the maildrop (1733).
func (s *services) listenPickup(rcpts smtp.Recipients) error {
	cfg := s.cfg
	srv, err := pickup.NewServer(pickup.Config{
		Hostname:        cfg.Hostname,
		LocalDomains:    cfg.Domains,
		MaxMessageBytes: cfg.SMTP.MaxMessageBytes,
		MaxRecipients:   cfg.SMTP.MaxRecipients,
		Timeout:         cfg.SMTP.Timeout.Duration,
		TrustedUsers:    cfg.Sendmail.TrustedUsers,
		TempDir:         filepath.Join(cfg.DataDir, "state"),
		Now:             s.now,
		Logger:          s.logger,
	}, pickup.Deps{Recipients: rcpts, Deliverer: deliverer{s.store}, Spooler: spooler{s.queue}})
	if err != nil {
		return err
	}
	sock, drop := cfg.sendmailSocket(), cfg.maildropDir()
	if inside(cfg.DataDir, sock) || inside(cfg.DataDir, drop) {
		// Other users must reach the socket and the maildrop inside
		// data_dir: search (x) only, nothing listable; mail/, queue/ and
		// state/ stay 0700.
		st, err := os.Stat(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("data_dir: %w", err)
		}
		if err := os.Chmod(cfg.DataDir, st.Mode().Perm()|0o011); err != nil {
			return fmt.Errorf("data_dir: %w", err)
		}
	}
	if err := pickup.EnsureMaildrop(drop); err != nil {
		return fmt.Errorf("sendmail.maildrop: %w", err)
	}
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("sendmail.socket: %s: another popgate is running", sock)
	}
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("sendmail.socket: %w", err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		ln.Close()
		return fmt.Errorf("sendmail.socket: %w", err)
	}
	s.pickup, s.pickupLn = srv, ln
	return nil
}

// runPickup serves the socket and drains the maildrop now and every
// minute, until ctx is done.
func (s *services) runPickup(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := s.pickup.Serve(s.pickupLn); err != nil && !errors.Is(err, net.ErrClosed) {
			errc <- fmt.Errorf("sendmail.socket: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		s.pickup.Run(ctx, s.cfg.maildropDir(), maildropInterval)
	}()
}

// closePickup stops the socket and removes its file.
func (s *services) closePickup(ctx context.Context) {
	if s.pickup == nil {
		return
	}
	_ = s.pickup.Shutdown(ctx)
	_ = s.pickupLn.Close()
	_ = os.Remove(s.cfg.sendmailSocket())
}
