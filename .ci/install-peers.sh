#!/usr/bin/env bash
# Installs the third-party programs that `task interop` drives: mail clients,
# mkpasswd (whois: libxcrypt hashes for the yescrypt and import passwd tests),
# Berkeley DB and LMDB tools, Postfix (postmap with hash, cdb and lmdb tables,
# smtp-source, smtp-sink) and sendmail's makemap, extracted from its .deb
# because sendmail-bin conflicts with postfix;
# podman, lintian and debootstrap for the image and package tests.
# redis-server for the shared grants (relay.grants_url).
# haproxy for several instances behind a PROXY-protocol balancer.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

$SUDO apt-get update -qq
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
# One package a line, so that parallel work merges cleanly.
packages=(
  db5.3-util
  postfix
  postfix-cdb
  postfix-lmdb
  lmdb-utils
  swaks
  libnet-ssleay-perl
  libio-socket-ssl-perl
  libdb1-compat
  fail2ban
  systemd
  mpop
  fetchmail
  getmail6
  python3
  openssl
  ca-certificates
  whois
  bsd-mailx
  git
  git-email
  libmailtools-perl
  php-cli
  podman
  lintian
  debootstrap
  redis-server
  haproxy
)
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

# sendmail's makemap and the sendmail binary, unpacked into a private root.
root=/opt/sendmail-root
if [ ! -x "$root/usr/sbin/makemap" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download sendmail-bin >/dev/null)
  $SUDO mkdir -p "$root"
  $SUDO dpkg-deb -x "$tmp"/sendmail-bin_*.deb "$root"
  rm -rf "$tmp"
fi
echo "peers installed: $(command -v db5.3_dump postmap swaks mpop fetchmail getmail python3 | tr '\n' ' ') $root/usr/sbin/makemap"
