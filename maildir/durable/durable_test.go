package durable

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/afero"
)

func TestWriteFileReplacesAndKeepsMode(t *testing.T) {
	dir := t.TempDir()
	fs := afero.NewOsFs()
	p := filepath.Join(dir, "state")
	if err := WriteBytes(fs, p, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(fs, p, strings.NewReader("two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "two\n" {
		t.Fatalf("content = %q, %v; want %q", got, err, "two\n")
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640 kept", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the file (no temp left)", len(ents))
	}
}

func TestWriteFileMissingDirFails(t *testing.T) {
	fs := afero.NewOsFs()
	err := WriteBytes(fs, filepath.Join(t.TempDir(), "no", "such", "file"), []byte("x"), 0o600)
	if err == nil || !strings.Contains(err.Error(), "durable: create") {
		t.Fatalf("err = %v, want a create error naming the temp file", err)
	}
}

func TestWriteFileOnMemFs(t *testing.T) {
	fs := afero.NewMemMapFs()
	if err := fs.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteBytes(fs, "/d/f", []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := afero.ReadFile(fs, "/d/f")
	if err != nil || string(b) != "hello" {
		t.Fatalf("got %q, %v", b, err)
	}
}

func TestSyncDirOnDisk(t *testing.T) {
	fs := afero.NewOsFs()
	if err := SyncDir(fs, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	err := SyncDir(fs, filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "durable: fsync dir") || !os.IsNotExist(errors.Unwrap(err)) {
		t.Fatalf("missing dir: err = %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(fs, f); err == nil {
		t.Fatal("a regular file synced as a directory")
	}
}
