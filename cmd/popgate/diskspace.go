package main

import (
	"fmt"

	"github.com/popgate/popgate/smtp"
)

// diskSpace tells the SMTP server whether the filesystems that take mail
// (maildirs, queue, message buffers) have room, like Postfix's
// queue_minfree: a message is taken only while each keeps reserve octets
// free beyond its announced size.
type diskSpace struct {
	paths   []string
	reserve int64
	free    func(path string) (int64, error) // statfs; tests replace it
}

var _ smtp.Storage = (*diskSpace)(nil)

// CheckRoom is asked at every MAIL FROM.
func (d *diskSpace) CheckRoom(size int64) error {
	for _, p := range d.paths {
		free, err := d.free(p)
		if err != nil {
			return fmt.Errorf("free space of %s: %w", p, err)
		}
		if free < d.reserve+size {
			return fmt.Errorf("%s: %d octets free, %d reserved, %d announced: %w", p, free, d.reserve, size, smtp.ErrInsufficientStorage)
		}
	}
	return nil
}
