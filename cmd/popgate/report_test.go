package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRelayReportCountsWindowsAndPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay-report.json")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r := newRelayReport(path, clock, slog.New(slog.DiscardHandler))
	r.relayed("alice@example.com")
	now = now.AddDate(0, 0, -10)
	r.relayed("alice@example.com")
	r.relayed("bob@example.com")
	now = now.AddDate(0, 0, -200) // past the kept window: dropped at save
	r.relayed("carol@example.com")
	now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	if err := r.save(); err != nil {
		t.Fatal(err)
	}

	back := newRelayReport(path, clock, slog.New(slog.DiscardHandler))
	rows := back.summary(30)
	if len(rows) != 2 || rows[0].User != "alice@example.com" || rows[0].Recipients != 2 || rows[0].Days != 2 || rows[0].Last != "2026-11-25" {
		t.Fatalf("30-day summary = %+v", rows)
	}
	if rows := back.summary(1); len(rows) != 1 || rows[0].Recipients != 1 {
		t.Errorf("1-day summary = %+v, want alice once", rows)
	}
	if rows := back.summary(reportKeepDays); len(rows) != 2 {
		t.Errorf("carol's day past the window survived: %+v", rows)
	}

	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rows := newRelayReport(path, clock, slog.New(slog.DiscardHandler)).summary(30); len(rows) != 0 {
		t.Errorf("corrupt file: %+v, want an empty report", rows)
	}
}
