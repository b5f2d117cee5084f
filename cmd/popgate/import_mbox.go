package main

import (
	"context"
	"errors"
)

// importMbox imports one qpopper/mail.local mbox into a user's maildir.
func importMbox(_ context.Context, _ *env, _ []string) error {
	return errors.New("import mbox: not built yet")
}

// importSpool imports every mbox of a spool directory such as /var/mail.
func importSpool(_ context.Context, _ *env, _ []string) error {
	return errors.New("import spool: not built yet")
}
