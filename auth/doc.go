// Package auth verifies user passwords from a Dovecot-style passwd-file and limits failed logins.
//
// The users file has one user a line, "user@domain:{SCHEME}hash", optionally
// followed by Dovecot's further fields (":uid:gid:gecos:home:shell:extra"),
// which are ignored; '#' starts a comment. User names are lowercased as a
// whole, local part included: logins are case-insensitive, and a file listing
// one address twice in different case is refused. Supported schemes:
// ARGON2ID, ARGON2I, BLF-CRYPT, SHA512-CRYPT, SHA256-CRYPT, MD5-CRYPT
// (weak, warned about), CRYPT ($y$ yescrypt, $6$, $5$, $2y$/$2b$/$2a$, $1$,
// $argon2id$), SSHA512, SHA512 and PLAIN (warned about). A bare "$6$…"
// style hash counts as CRYPT; yescrypt has no Dovecot scheme name of its
// own and is stored as {CRYPT}$y$…, as Dovecot does with libxcrypt. New passwords get HashPassword's
// {ARGON2ID} (OWASP parameters) in the form `doveadm pw` writes.
//
// [Users] holds the file and reloads it when it changes; [Limiter] slows and
// refuses repeated failures per IP and per user (its doc states the rule);
// [Service] combines both behind Authenticate. AddUser, SetPassword,
// DeleteUser and ListUsers edit the file atomically under a lock, for the
// `popgate user` commands.
package auth
