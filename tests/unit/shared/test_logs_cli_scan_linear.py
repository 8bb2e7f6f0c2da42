"""The client names inside words (``--user=redis-cli``, ``x=mysql``) start no command; the
scrubber searched again from each and re-read the rest of the line each time: 104 KB of
``"mysql --user="`` took 4 s, 400 KB about 90 s, in every log line's path. No timing here:
a line of 2 MB (quadratic: about 25 minutes) must pass within the per-test timeout, and the masking stays the same."""

from __future__ import annotations

import pytest

from shared.logs import scrub


@pytest.mark.parametrize("unit", ["mysql --user=", "redis-cli --user=", "mysql -u=", "x=redis-cli ", "x=mysql "])
def test_client_names_inside_words_are_read_once(unit: str) -> None:
    line = unit * (2_000_000 // len(unit))
    assert scrub(line) == line


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("redis-cli --user=redis-cli -a s3cret ping", "redis-cli --user=redis-cli -a *** ping"),
        ("x=redis-cli; redis-cli -a s3cret", "x=redis-cli; redis-cli -a ***"),
        ("mysql --user=mysql -pS3cret app", "mysql --user=mysql -p*** app"),
        ("redis-cli -h h redis-cli -a s3cret", "redis-cli -h h redis-cli -a ***"),
    ],
)
def test_a_password_after_a_name_inside_a_word_is_still_masked(line: str, shown: str) -> None:
    assert scrub(line) == shown
