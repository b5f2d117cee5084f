#!/usr/bin/env bash
# Installs the third-party programs that `task interop` drives: mail clients,
# mkpasswd (whois: libxcrypt hashes for the yescrypt and import passwd tests),
# Berkeley DB tools, Postfix (postmap, smtp-source, smtp-sink) and sendmail's
# makemap, extracted from its .deb because sendmail-bin conflicts with postfix;
# redis-server (shared grants, relay.grants_url) and haproxy (several
# instances behind a PROXY-protocol balancer, issue 14).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

$SUDO apt-get update -qq
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get install -y -qq --no-install-recommends \
  db5.3-util postfix swaks libnet-ssleay-perl libio-socket-ssl-perl libdb1-compat fail2ban systemd mpop fetchmail getmail6 python3 openssl ca-certificates whois haproxy redis-server >/dev/null

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
