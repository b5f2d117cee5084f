// Package maildir stores and reads mail in maildir format on an afero filesystem.
package maildir
