"""Redaction on its worst cases, old and new side by side in one run, at growing lengths.

1. A long pasted token of email-name characters with no ``@`` (a base64url blob in a
   chat): the email pattern without its left anchor (the peer, the code before) next to
   the shipped one. The unanchored pattern rescans the run from every start (quadratic);
   the shipped one is linear.
2. The log scrubber, ``shared.logs.scrub()``, on a run of unfinished URLs
   (``"://a:" * n``) and on ordinary log lines: with the URL password mask that ran one
   pattern over the whole text (a reference copy of it, below; each "://" scanned to the
   end of the run for an "@": quadratic) next to the shipped one. The whole-text mask is
   timed on the run up to ``--old-max`` characters only (100 KB of it took 39 s, 400 KB about 16 times that).
3. ``scrub()`` on runs of the prefixes of its later masks (Authorization headers, a bare
   bearer token, Telegram bot URLs, webhook and URL password forms JSON-escaped or
   percent-encoded): the shipped scrubber only (no earlier code matched them); each must
   grow linearly with the length.
4. ``scrub()`` on the worst cases of its masks of API-key headers and fields (``X-API-Key``,
   ``access_token`` and their runs of prefix words), cookies, Digest/AWS parameter lists and
   bare JSON Web Tokens: a head (maybe none) and a unit repeated to the length. Each must
   grow linearly too.
5. ``scrub()`` on the worst cases of its masks of MySQL/MariaDB passwords (``IDENTIFIED BY``, quoted
   or bare, in capitals or in a lower-case ``create``/``alter user`` or ``grant ... on ... to``
   statement, a user name's quote never closed, ``SET PASSWORD FOR``), Redis ``AUTH``/``requirepass``,
   ``redis-cli -a``/``--pass`` (flags before the password), ``mysql -p``, ``--password``/``--api-key``
   flags, secret lists nested at any depth, ``*credentials`` fields (an HTTP status after a bare one),
   Docker registry ``auth``, a further credential in one Authorization value, PEM private-key
   bodies, service-prefixed tokens (``ghp_``, ``sk-``, ``xoxb-``), presigned-URL signatures and
   Azure ``AccountKey``: a head, a unit repeated and a tail (maybe none) to the length. The
   shipped scrubber only (no earlier code matched them); each must grow linearly too.

Usage: ``python bench/redact_worst_case.py [--old-max CHARS]``. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared import logs  # noqa: E402
from shared.redact import EMAIL  # noqa: E402

UNANCHORED = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# shared/logs.py's URL password mask before it ran on each whitespace-free run up to its last "@".
WHOLE_TEXT_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]+(?:@[^@\s/?#]*)*)(@)")
LOG_LINE = (
    "2026-11-30 15:18:44,123 WARNING alerter services.alerter.deliver: POST "
    "https://alerts.example.com:8443/hook?id=3&token=t0ps3cret failed (502), retry 2 of 5 for rule r-42; "
    "postgresql://tw:s3cret@10.0.0.5:5432/tw slow; caller jane@example.com\n"
)


def seconds(pattern: re.Pattern[str], text: str) -> float:
    start = time.perf_counter()
    pattern.sub("[EMAIL]", text)
    return time.perf_counter() - start


def whole_text_passwords(text: str) -> str:
    return WHOLE_TEXT_PASSWORD.sub(r"\1***\3", text)


def scrub_seconds(text: str, mask: Callable[[str], str] | None = None, repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs of ``scrub(text)``, with ``mask`` as its URL password
    mask when one is given."""
    best = float("inf")
    with patch.object(logs, "mask_url_passwords", mask or logs.mask_url_passwords):  # looked up on each call
        for _ in range(repeat):
            start = time.perf_counter()
            logs.scrub(text)
            best = min(best, time.perf_counter() - start)
    return best


def email_rows() -> list[dict[str, float]]:
    rows = []
    print(f"{'chars':>8} {'unanchored s':>13} {'shipped s':>10}")
    for n in (1_000, 2_000, 4_000, 8_000, 16_000):
        text = "token " + ("A1_-" * n)[:n]
        row = {"chars": n, "unanchored_s": seconds(UNANCHORED, text), "shipped_s": seconds(EMAIL, text)}
        rows.append(row)
        print(f"{n:>8} {row['unanchored_s']:>13.4f} {row['shipped_s']:>10.5f}")
    return rows


# Worst cases of the masks added for Authorization values, Telegram tokens and escaped or
# encoded URLs: runs of their prefixes that fail late, and runs of backslashes and encoded
# separators.
NEW_MASK_CASES = (
    ("'authorization': '", "'authorization': '"),
    ("Authorization: Bearer", "Authorization: Bearer "),
    ("bearer aaaa", "bearer aaaa "),
    ("hooks.slack.com\\", "hooks.slack.com" + "\\" * 64),
    ("%2Fhooks%2F", "%2Fhooks%2F"),
    ("api.telegram.org/bot", "api.telegram.org/bot"),
    ("1234567:AA", "1234567:AA"),
    ("https%3A%2F%2Fa%3A", "https%3A%2F%2Fa%3A"),
    (":\\/\\/a:", ":\\/\\/a:"),
)


# Worst cases of the masks added for API-key headers, cookies, parameter-list Authorization
# values and bare JWTs: (name, head, unit), the text is ``head`` then ``unit`` repeated.
HEADER_MASK_CASES = (
    ("x-api-key: ", "", "x-api-key: "),
    ("a-a-a-... (key name)", "", "a-"),
    ("a...a (key name)", "", "a"),
    ("\\na_ (key name)", "", "\\na_"),
    ("api_key", "", "api_key"),
    ("Set-Cookie: a; a; ...", "Set-Cookie: ", "a; "),
    ("cookie: expires=Wed, 21", "", "cookie: expires=Wed, 21 Oct "),
    ("Digest a...a", "Authorization: Digest ", "a"),
    ("Digest a=\\...", "Authorization: Digest a=", "\\"),
    ('Digest a="', "", 'Authorization: Digest a="'),
    ("Digest a=b, ...", "Authorization: Digest ", "a=b, "),
    ("eyJ a...a", "eyJ", "a"),
    ("%41eyJaaaaa", "", "%41eyJaaaaa"),
    ("eyJaaaaaaaa....", "eyJaaaaaaaa", "."),
    ('password:" (unterminated)', "", 'password:"'),
    ('password: "a\\" (escaped)', "", 'password="a\\"'),
    ('"api_key": "\\\\', "", '"api_key": "\\\\'),
    ('\\"password\\": \\" (escaped)', "", '\\"password\\": \\"'),
    ('\\"token\\": \\"\\\\...', '\\"token\\": \\"', "\\"),
    ('\\"token\\": \\"a\\\\\\"...', '\\"token\\": \\"', 'a\\\\\\"'),
    ('("x-api-key", " (tuple)', "", '("x-api-key", "'),
    ('"x-api-key": [" (list)', "", '"x-api-key": ["'),
    ("PASSWORD ' (SQL)", "", "PASSWORD '"),
    ("PASSWORD 'a''... (SQL)", "PASSWORD '", "a''"),
    ("token... (bare name)", "", "token"),
    ("&password=a#... (query)", "", "&password=a#"),
)


def header_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    print(f"\nscrub() {'header-mask input':>16} {'chars':>8} {'shipped s':>10}")
    for name, head, unit in HEADER_MASK_CASES:
        for n in (16_000, 100_000, 400_000):
            text = head + (unit * ((n - len(head)) // len(unit) + 1))[: n - len(head)]
            new = scrub_seconds(text)
            rows.append({"input": name, "chars": n, "shipped_s": new})
            print(f"{name:>24} {n:>8} {new:>10.4f}")
    return rows


# Worst cases of the masks added for SQL, Redis and command-line passwords, nested secret lists,
# Docker auth, further Authorization credentials, private keys and service-prefixed tokens:
# (name, head, unit, tail), the text is ``head``, then ``unit`` repeated, then ``tail``.
SECRET_MASK_CASES = (
    ("IDENTIFIED BY ... (SQL)", "", "IDENTIFIED BY ", ""),
    ("IDENTIFIED WITH a BY", "", "IDENTIFIED WITH a BY ", ""),
    ("IDENTIFIED BY a (bare)", "", "IDENTIFIED BY a ", ""),
    ("IDENTIFIED BY 'a''...", "IDENTIFIED BY '", "a''", ""),
    ("SET PASSWORD FOR a...", "SET PASSWORD FOR ", "a", ""),
    ("SET PASSWORD FOR ...", "", "SET PASSWORD FOR ", ""),
    ("AUTH a ... (Redis)", "", "AUTH a ", ""),
    ("requirepass ...", "", "requirepass ", ""),
    ("redis-cli -a -a ...", "redis-cli ", "-a ", ""),
    ("redis-cli redis-cli", "", "redis-cli ", ""),
    ("redis-cli a a ... -a pw", "redis-cli ", "a ", "-a pw"),
    ("redis-cli a|a|... -a pw", "redis-cli ", "a|", " -a pw"),
    ("mysql a. a. ... -pX", "mysql ", "a. ", "-pX"),
    ('"credentials": "include", ...', "", '"credentials": "include", ', ""),
    ("mysql -p-p...", "mysql ", "-p", ""),
    ("mysql -p mysql -p", "", "mysql -p ", ""),
    ("mysql a a ... (args)", "mysql ", "a ", ""),
    ("mysql a a ... -ppw", "mysql ", "a ", "-ppw"),
    ("--a-... (flag name)", "", "--a-", ""),
    ("--password --pass...", "", "--password ", ""),
    ("--api-key=...", "", "--api-key=", ""),
    ("password=[...", "", "password=[", ""),
    ("password=[]...", "", "password=[]", ""),
    ("('x-api-key', [)", "", "('x-api-key', [)", ""),
    ("{'password': ['a', ", "{'password': [", "'a', ", "]}"),
    ("password=[a, a, ...", "password=[", "a, ", "]"),
    ('{"password": [[[...', '{"password": ', "[", ""),
    ('{"password": [["a", ', '{"password": [', '["a", ', ""),
    ('"a_a_...password": [', '"', "a_", 'password": ["a", "b"]'),
    ('"credentials": ...', "", '"credentials": ', ""),
    ('"auth": "\\\\... (Docker)', '"auth": "', "\\", ""),
    ('\\...\\"auth" (Docker)', "", "\\", '"auth": "YTpi"'),
    ('"auth": "AAAA... (open)', '"auth": "', "A", ""),
    ("Basic a, , , ...", "Authorization: Basic a", ", ", ""),
    ("Basic a, Bearer a, ...", "Authorization: Basic a", ", Bearer a", ""),
    ("BEGIN A A ... (PEM)", "-----BEGIN ", "A ", "PRIVATE KEY"),
    ("PRIVATE KEY-----a-a-...", "-----BEGIN PRIVATE KEY-----", "a-", ""),
    ("PRIVATE KEY-----... x n", "", "-----BEGIN PRIVATE KEY-----", ""),
    ("ghp_aaa..._", "ghp_", "a", "_"),
    ("sk-aaa... (no digit)", "sk-", "a", ""),
    ("xoxb------..._", "xoxb-", "-", "_"),
    ("&X-Amz-Signature=", "", "&X-Amz-Signature=", ""),
    ("%26X-Goog-Signature%3D", "", "%26X-Goog-Signature%3D", ""),
    ("AccountKey=a;...", "", "AccountKey=a;", ""),
    ("alter user a identified by ...", "", "alter user a identified by ", ""),
    ("create user a identified by x, ...", "create user ", "a identified by x, ", ""),
    ("create user create user ...", "", "create user ", ""),
    ("create user 'a... (open quote)", "create user '", "a", " identified by pw"),
    ("create user a identified with a...", "create user a identified with ", "a", ""),
    ("redis-cli --pass --pass ...", "redis-cli ", "--pass ", ""),
    ("redis-cli a a ... --pass pw", "redis-cli ", "a ", "--pass pw"),
    ("redis-cli --pass=--pass=...", "redis-cli ", "--pass=", ""),
    ("credentials: 401 ...", "", "credentials: 401 ", ""),
    ("credentials: admin:admin:...", "credentials: ", "admin:", ""),
    ("credentials: 401:401:...", "credentials: ", "401:", ""),
    ("redis-cli -a --x --x ... pw", "redis-cli -a ", "--x ", "pw"),
    ("redis-cli -a --x -a --x ...", "redis-cli ", "-a --x ", ""),
    ('create user "a... (never closed)', 'create user "', "a", " identified by pw"),
    ("grant a grant a ...", "", "grant a ", ""),
    ("/grant /grant ...", "", "/grant ", ""),
    ("grant a on b to ...", "", "grant a on b to ", ""),
    ("grant all on b to a identified by x1, ...", "grant all on b to ", "a identified by x1, ", ""),
)


def secret_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    print(f"\nscrub() {'secret-mask input':>16} {'chars':>8} {'shipped s':>10}")
    for name, head, unit, tail in SECRET_MASK_CASES:
        for n in (16_000, 100_000, 400_000):
            body = n - len(head) - len(tail)
            text = head + (unit * (body // len(unit) + 1))[:body] + tail
            new = scrub_seconds(text)
            rows.append({"input": name, "chars": n, "shipped_s": new})
            print(f"{name:>24} {n:>8} {new:>10.4f}")
    return rows


def scrub_rows(old_max: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    print(f"\nscrub() {'input':>12} {'chars':>8} {'whole-text s':>13} {'shipped s':>10}")
    for name, unit in (("'://a:' * n", "://a:"), ("log lines", LOG_LINE)):
        for n in (16_000, 100_000, 400_000):
            text = (unit * (n // len(unit) + 1))[:n]
            if unit == LOG_LINE:
                old: float | None = scrub_seconds(text, whole_text_passwords)
            else:  # once: 39 s at 100 KB
                old = scrub_seconds(text, whole_text_passwords, repeat=1) if n <= old_max else None
            new = scrub_seconds(text)
            rows.append({"input": name, "chars": n, "whole_text_s": old, "shipped_s": new})
            shown = "skipped" if old is None else f"{old:.4f}"
            print(f"{name:>20} {n:>8} {shown:>13} {new:>10.4f}")
    for name, unit in NEW_MASK_CASES:
        for n in (16_000, 100_000, 400_000):
            text = (unit * (n // len(unit) + 1))[:n]
            new = scrub_seconds(text)
            rows.append({"input": name, "chars": n, "whole_text_s": None, "shipped_s": new})
            print(f"{name:>20} {n:>8} {'n/a':>13} {new:>10.4f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-max", type=int, default=100_000, help="longest run the whole-text mask is timed on")
    args = parser.parse_args()
    print(
        json.dumps(
            {
                "email": email_rows(),
                "scrub": scrub_rows(args.old_max),
                "headers": header_rows(),
                "secrets": secret_rows(),
            }
        )
    )


if __name__ == "__main__":
    main()
