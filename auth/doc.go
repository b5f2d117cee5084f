// Package auth verifies user passwords from a Dovecot-style passwd-file and limits failed logins.
package auth
