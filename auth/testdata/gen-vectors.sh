#!/bin/sh
# Regenerates vectors.tsv from real tools. Not run by tests: the output is
# committed and checked by TestSchemeVectors with no tool needed.
# Needs: doveadm (Debian dovecot-core 2.3), mkpasswd (Debian whois), openssl.
# yescrypt at more costs and settings: gen-yescrypt-vectors.sh.
# Each line: tool<TAB>password<TAB>stored hash as it goes into the users file.
set -eu
out=vectors.tsv
: > "$out"
emit() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$out"; }
for pw in 'correct horse' 'pässwörd ünïcode' 'x'; do
	emit "doveadm pw -s ARGON2ID" "$pw" "$(doveadm pw -s ARGON2ID -p "$pw")"
	emit "doveadm pw -s ARGON2I" "$pw" "$(doveadm pw -s ARGON2I -p "$pw")"
	emit "doveadm pw -s BLF-CRYPT -r 5" "$pw" "$(doveadm pw -s BLF-CRYPT -r 5 -p "$pw")"
	emit "doveadm pw -s SHA512-CRYPT" "$pw" "$(doveadm pw -s SHA512-CRYPT -p "$pw")"
	emit "doveadm pw -s SHA256-CRYPT" "$pw" "$(doveadm pw -s SHA256-CRYPT -p "$pw")"
	emit "doveadm pw -s SSHA512" "$pw" "$(doveadm pw -s SSHA512 -p "$pw")"
	emit "doveadm pw -s SHA512" "$pw" "$(doveadm pw -s SHA512 -p "$pw")"
	emit "doveadm pw -s CRYPT" "$pw" "$(doveadm pw -s CRYPT -p "$pw")"
	emit "mkpasswd -m sha512crypt" "$pw" "{SHA512-CRYPT}$(mkpasswd -m sha512crypt "$pw")"
	emit "mkpasswd -m sha512crypt -R 12345" "$pw" "{CRYPT}$(mkpasswd -m sha512crypt -R 12345 "$pw")"
	emit "mkpasswd -m sha256crypt -R 1000" "$pw" "{SHA256-CRYPT}$(mkpasswd -m sha256crypt -R 1000 "$pw")"
	emit "mkpasswd -m bcrypt -R 5" "$pw" "{BLF-CRYPT}$(mkpasswd -m bcrypt -R 5 "$pw")"
	emit "mkpasswd -m bcrypt-a -R 5" "$pw" "{CRYPT}$(mkpasswd -m bcrypt-a -R 5 "$pw")"
	emit "openssl passwd -6" "$pw" "{SHA512-CRYPT}$(openssl passwd -6 "$pw")"
	emit "openssl passwd -5 (no scheme prefix)" "$pw" "$(openssl passwd -5 "$pw")"
	emit "mkpasswd -m bcrypt -R 5 (no scheme prefix)" "$pw" "$(mkpasswd -m bcrypt -R 5 "$pw")"
	emit "doveadm pw -s MD5-CRYPT" "$pw" "$(doveadm pw -s MD5-CRYPT -p "$pw")"
	emit "mkpasswd -m md5crypt" "$pw" "{CRYPT}$(mkpasswd -m md5crypt "$pw")"
	emit "openssl passwd -1 (no scheme prefix)" "$pw" "$(openssl passwd -1 "$pw")"
	emit "mkpasswd -m yescrypt -R 1" "$pw" "{CRYPT}$(mkpasswd -m yescrypt -R 1 "$pw")"
	emit "mkpasswd -m yescrypt -R 1 (no scheme prefix)" "$pw" "$(mkpasswd -m yescrypt -R 1 "$pw")"
done
