package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/acl/mapfile"
	"github.com/popgate/popgate/auth"
	"github.com/spf13/afero"
)

// checkFiles parses every file the configuration names with the same
// parsers the server uses, so `popgate check` fails where `serve` would.
func checkFiles(cfg *Config, logw io.Writer) error {
	fs := afero.NewOsFs()
	logger := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := os.Stat(cfg.usersFile()); err == nil || cfg.Users.File != "" {
		if _, err := auth.NewUsers(fs, cfg.usersFile(), time.Now, logger); err != nil {
			return fmt.Errorf("users.file: %w", err)
		}
	}
	if cfg.Users.Aliases != "" {
		if _, err := loadAliases(cfg.Users.Aliases, logger); err != nil {
			return err
		}
	}
	if cfg.Relay.AccessFile != "" {
		if _, err := acl.LoadRules(fs, cfg.Relay.AccessFile); err != nil {
			return fmt.Errorf("relay.access_file: %w", err)
		}
	}
	for _, m := range cfg.Relay.Mirror {
		// An existing map must be one popgate can read in its format.
		if _, err := os.Stat(m.Path); err != nil {
			continue
		}
		format, _ := mapfile.ParseFormat(m.Format) // validated by loadConfig
		if _, err := mapfile.ReadFile(m.Path, format, false); err != nil {
			return fmt.Errorf("relay.mirror %s: %w", m.Path, err)
		}
	}
	if cfg.TLS.Cert != "" {
		if _, err := loadTLS(cfg, time.Now(), logger); err != nil {
			return fmt.Errorf("tls.cert: %w", err)
		}
	}
	return nil
}
