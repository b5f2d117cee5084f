package main

import (
	"context"
	"errors"
)

// importSendmail converts /etc/mail into a popgate configuration.
func importSendmail(_ context.Context, _ *env, _ []string) error {
	return errors.New("import sendmail: not built yet")
}
