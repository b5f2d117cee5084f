#!/usr/bin/env python3
"""Drive popgate's SMTP server with Python's smtplib.

Usage: smtplib_send.py MODE HOST PORT FROM TO [USER PASSWORD]
MODE: plain | starttls | ssl | relay-denied
Exits 0 when the server behaved as expected, 1 otherwise (message on stderr).
"""
import smtplib
import ssl
import sys
from email.message import EmailMessage


def main():
    mode, host, port, sender, rcpt = sys.argv[1:6]
    user = sys.argv[6] if len(sys.argv) > 6 else None
    password = sys.argv[7] if len(sys.argv) > 7 else None
    port = int(port)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = rcpt
    msg["Subject"] = "smtplib interop " + mode
    msg.set_content("Hello from smtplib.\n.leading dot\nbare line\n")

    if mode == "ssl":
        s = smtplib.SMTP_SSL(host, port, context=ctx, timeout=10)
    else:
        s = smtplib.SMTP(host, port, timeout=10)
    try:
        s.ehlo("smtplib.example")
        if mode == "starttls":
            if not s.has_extn("starttls"):
                print("no STARTTLS", file=sys.stderr)
                return 1
            if s.has_extn("auth") and not host.startswith("127."):
                print("AUTH offered before TLS", file=sys.stderr)
                return 1
            s.starttls(context=ctx)
            s.ehlo("smtplib.example")
        if not s.has_extn("size") or not s.has_extn("8bitmime") or not s.has_extn("pipelining"):
            print("missing extension: " + repr(s.esmtp_features), file=sys.stderr)
            return 1
        if user:
            s.login(user, password)
        if mode == "relay-denied":
            try:
                s.send_message(msg, from_addr=sender, to_addrs=[rcpt])
            except smtplib.SMTPRecipientsRefused as e:
                code, text = e.recipients[rcpt]
                if code == 554 and text.startswith(b"5.7.1"):
                    print("refused as expected: %d %s" % (code, text.decode()))
                    return 0
                print("wrong refusal: %d %r" % (code, text), file=sys.stderr)
                return 1
            print("relay was accepted", file=sys.stderr)
            return 1
        refused = s.send_message(msg, from_addr=sender, to_addrs=[rcpt])
        if refused:
            print("refused: %r" % refused, file=sys.stderr)
            return 1
        print("sent")
        return 0
    finally:
        try:
            s.quit()
        except Exception:
            pass


if __name__ == "__main__":
    sys.exit(main())
