"""Redaction on its worst case, a long pasted token of email-name characters with no
``@`` (a base64url blob in a chat): the email pattern without its left anchor (the
peer, the code before) next to the shipped one, in one run, at growing lengths. The
unanchored pattern rescans the run from every start (quadratic); the shipped one is linear.

Usage: ``python bench/redact_worst_case.py``. Last line: one JSON object.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.redact import EMAIL  # noqa: E402

UNANCHORED = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def seconds(pattern: re.Pattern[str], text: str) -> float:
    start = time.perf_counter()
    pattern.sub("[EMAIL]", text)
    return time.perf_counter() - start


def main() -> None:
    rows = []
    print(f"{'chars':>8} {'unanchored s':>13} {'shipped s':>10}")
    for n in (1_000, 2_000, 4_000, 8_000, 16_000):
        text = "token " + ("A1_-" * n)[:n]
        row = {"chars": n, "unanchored_s": seconds(UNANCHORED, text), "shipped_s": seconds(EMAIL, text)}
        rows.append(row)
        print(f"{n:>8} {row['unanchored_s']:>13.4f} {row['shipped_s']:>10.5f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
