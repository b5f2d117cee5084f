#!/bin/sh
# Regenerates yescrypt-vectors.tsv: "$y$" hashes made by libxcrypt, for
# TestYescryptVectors. Not run by tests; the output is committed.
# Needs (Debian 12): mkpasswd from `whois`, python3 3.11 (its crypt module
# calls libxcrypt's crypt(3), so hand-made settings reach parameters that
# mkpasswd cannot ask for: p, t, the classic-scrypt and WORM flavors).
# Each line: tool<TAB>password<TAB>hash.
set -eu
out=yescrypt-vectors.tsv
: > "$out"
emit() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$out"; }
for pw in 'correct horse' 'pässwörd ünïcode' 'x'; do
	for cost in 1 2 3 4; do
		emit "mkpasswd -m yescrypt -R $cost" "$pw" "$(mkpasswd -m yescrypt -R "$cost" "$pw")"
	done
done
# The default cost (5: N=4096, r=32, 16 MiB), which also pre-hashes.
emit "mkpasswd -m yescrypt" 'correct horse' "$(mkpasswd -m yescrypt 'correct horse')"
emit "mkpasswd -m yescrypt -R 6" 'x' "$(mkpasswd -m yescrypt -R 6 'x')"
# Hand-made settings through libxcrypt's crypt(3): RW with p=2, t=1, t=2,
# p=4 and t=3; classic scrypt (flavor '.'); WORM (flavor '/') with and
# without t; a salt of odd length; an empty salt; a long password.
python3 -W ignore - >> "$out" <<'PY'
import crypt
cases = [
    ("$y$j75..$o1rW2MWnue6wuzMYro5GL0$", "correct horse"),
    ("$y$j75/.$MMMMLh.soZieicPhQxFHb0$", "correct horse"),
    ("$y$j75//$MMMMLh.soZieicPhQxFHb0$", "pässwörd"),
    ("$y$j750.0$3asHpBGGpNOMvStE4RFL6.$", "x"),
    ("$y$j950.0$3asHpBGGpNOMvStE4RFL6.$", "correct horse"),
    ("$y$.75$abcdefghijklmnopqrstu.$", "correct horse"),
    ("$y$.65..$abcdefghijklmnopqrstu.$", "x"),
    ("$y$/75$abcdefghijklmnopqrstu.$", "correct horse"),
    ("$y$/75/.$abcdefghijklmnopqrstu.$", "correct horse"),
    ("$y$/75//$abcdefghijklmnopqrstu.$", "x"),
    ("$y$j75$abcde.$", "correct horse"),
    ("$y$j75$$", "correct horse"),
    ("$y$j65$abcdefgh$", "p" * 300),
    ("$y$j55$abcdefgh$", ""),
]
for setting, pw in cases:
    h = crypt.crypt(pw, setting)
    if not h or not h.startswith("$y$"):
        raise SystemExit("crypt refused %s: %r" % (setting, h))
    print("python3 crypt.crypt %s\t%s\t%s" % (setting, pw, h))
PY
