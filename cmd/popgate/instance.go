package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	iofs "io/fs"
	"path/filepath"
	"strings"

	"github.com/spf13/afero"

	"github.com/popgate/popgate/maildir/durable"
)

// instanceID returns this instance's stable id, kept in
// <data_dir>/state/instance-id and made on first start. Instances sharing
// a mail_dir tell their mailbox leases apart by it, and a restarted
// instance recognises the leases its killed predecessor left (data_dir is
// never shared, so one id is one running process at a time).
func instanceID(fs afero.Fs, dataDir string) (string, error) {
	p := filepath.Join(dataDir, "state", "instance-id")
	b, err := afero.ReadFile(fs, p)
	if err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, iofs.ErrNotExist) {
		return "", fmt.Errorf("data_dir: instance id: %w", err)
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("data_dir: instance id: %w", err)
	}
	id := hex.EncodeToString(r[:])
	if err := durable.WriteBytes(fs, p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("data_dir: instance id: %w", err)
	}
	return id, nil
}
