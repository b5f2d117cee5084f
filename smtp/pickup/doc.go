// Package pickup takes mail from local programs (sendmail(1), cron, mailx,
// PHP mail()): over a Unix socket where the kernel names the calling user
// (SO_PEERCRED), or, while the server is down, from a maildrop directory
// where the file's owner names them. Both paths hand the message to the
// same delivery the SMTP server uses, like Postfix's postdrop and pickup.
package pickup
