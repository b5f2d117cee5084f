package main

import (
	"fmt"
	"time"
)

// controlText is DEBIAN/control. popgate is the system's mail transport
// agent: it provides, conflicts with and replaces the virtual package
// mail-transport-agent, so installing it removes Postfix, Exim or sendmail
// (Debian Policy 7.6.2 and 11.6).
func controlText(version, arch string, installedKiB int64) string {
	return fmt.Sprintf(`Package: popgate
Version: %s
Architecture: %s
Maintainer: %s
Installed-Size: %d
Depends: passwd
Recommends: ca-certificates
Provides: mail-transport-agent
Conflicts: mail-transport-agent
Replaces: mail-transport-agent
Section: mail
Priority: optional
Homepage: https://github.com/popgate/popgate
Description: mail gateway for a small office: POP3, SMTP, POP-before-SMTP
 popgate replaces sendmail, qpopper and the POP-before-SMTP patch with one
 process: a POP3 server over maildirs, an SMTP server for inbound mail and
 submission with a queue for outbound mail, and relay grants given by a
 POP3 login that expire on time. It reads sendmail's /etc/mail/access and
 keeps an access.db mirror of the grants up to date.
 .
 The package installs /usr/sbin/sendmail, mailq and newaliases for the
 programs that send mail through the local MTA.
`, version, arch, maintainer, installedKiB)
}

// changelogText is the one-entry changelog of a package built from the
// repository (a native package: changelog.gz).
func changelogText(version string, when time.Time) string {
	return fmt.Sprintf(`popgate (%s) unstable; urgency=medium

  * Built from the popgate repository with go tool task deb.

 -- %s  %s
`, version, maintainer, when.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
}

// copyrightText is /usr/share/doc/popgate/copyright (DEP-5).
func copyrightText(when time.Time) string {
	return fmt.Sprintf(`Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: popgate
Source: https://github.com/popgate/popgate

Files: *
Copyright: %d popgate developers
License: no-license-stated
 The popgate sources state no license. This package is built for the
 installation it is copied to; ask the copyright holders before
 redistributing it.
`, when.Year())
}

// lintianOverrides explains the one lintian tag that does not apply.
// Lintian exempts Go programs from statically-linked-binary only when it
// sees a source package that build-depends on golang-go; this package is
// built from the repository, not from a Debian source package.
const lintianOverrides = `# A Go program, statically linked by design (CGO_ENABLED=0): it needs no
# libc, and the same binary runs in the FROM scratch container image.
popgate: statically-linked-binary [usr/sbin/popgate]
`

// postinst creates the system user popgate runs as (the same entry as
// contrib/systemd/popgate.sysusers) and its data directory, then enables
// and starts the service where systemd runs, as debhelper's scripts do.
const postinst = `#!/bin/sh
set -e

if [ "$1" = configure ]; then
	if ! getent group popgate >/dev/null; then
		groupadd --system popgate
	fi
	if ! getent passwd popgate >/dev/null; then
		useradd --system --gid popgate --home-dir /var/lib/popgate --no-create-home \
			--shell /usr/sbin/nologin --comment "popgate mail gateway" popgate
	fi
	install -d -o popgate -g popgate -m 0700 /var/lib/popgate
fi

if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
	if command -v deb-systemd-helper >/dev/null; then
		deb-systemd-helper unmask popgate.service >/dev/null || true
		if deb-systemd-helper --quiet was-enabled popgate.service; then
			deb-systemd-helper enable popgate.service >/dev/null || true
		else
			deb-systemd-helper update-state popgate.service >/dev/null || true
		fi
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			deb-systemd-invoke try-restart popgate.service >/dev/null || true
		else
			deb-systemd-invoke start popgate.service >/dev/null || true
		fi
	fi
fi

exit 0
`

// prerm stops the service before the files go.
const prerm = `#!/bin/sh
set -e

if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop popgate.service >/dev/null || true
fi

exit 0
`

// postrm forgets the service's enablement on purge. The mail in
// /var/lib/popgate and the popgate user stay: deleting mail is the
// administrator's decision.
const postrm = `#!/bin/sh
set -e

if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi

if [ "$1" = remove ] && command -v deb-systemd-helper >/dev/null; then
	deb-systemd-helper mask popgate.service >/dev/null || true
fi

if [ "$1" = purge ] && command -v deb-systemd-helper >/dev/null; then
	deb-systemd-helper purge popgate.service >/dev/null || true
	deb-systemd-helper unmask popgate.service >/dev/null || true
fi

exit 0
`
