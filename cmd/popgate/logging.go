package main

import (
	"io"
	"log/slog"
)

// newLogger builds the process logger from the [log] section: text for a
// person at a terminal, JSON for a log pipeline.
func newLogger(w io.Writer, cfg LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated by loadConfig
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
