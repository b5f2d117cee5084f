#!/usr/bin/env python3
"""Fetch every message of a POP3 mailbox with Python's poplib.

usage: poplib_fetch.py HOST PORT MODE USER PASSWORD OUTDIR DELETE
MODE is plain, stls (RFC 2595 STLS) or ssl (implicit TLS); DELETE is 0 or 1.
Writes message N to OUTDIR/N (lines joined with LF) and prints a JSON
summary of what the server said (CAPA, STAT, UIDL, TOP) on stdout.
"""
import json
import os
import poplib
import ssl
import sys


def main():
    host, port, mode, user, password, outdir, delete = sys.argv[1:8]
    port = int(port)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if mode == "ssl":
        conn = poplib.POP3_SSL(host, port, context=ctx, timeout=20)
    else:
        conn = poplib.POP3(host, port, timeout=20)
    summary = {"welcome": conn.getwelcome().decode()}
    summary["capa_before"] = sorted(conn.capa().keys())
    if mode == "stls":
        conn.stls(context=ctx)
        summary["capa_after_stls"] = sorted(conn.capa().keys())
    conn.user(user)
    conn.pass_(password)
    summary["capa_transaction"] = sorted(conn.capa().keys())
    count, size = conn.stat()
    summary["stat"] = [count, size]
    summary["uidl"] = [u.decode() for u in conn.uidl()[1]]
    summary["list"] = [l.decode() for l in conn.list()[1]]
    summary["top"] = [l.decode() for l in conn.top(1, 0)[1]]
    octets = 0
    for n in range(1, count + 1):
        resp, lines, o = conn.retr(n)
        octets += o
        with open(os.path.join(outdir, str(n)), "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
        if delete == "1":
            conn.dele(n)
    summary["retr_octets"] = octets
    summary["quit"] = conn.quit().decode()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
