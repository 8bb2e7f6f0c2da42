"""A secret flag's value glued to "=" is the value whatever its first character: a
generated password may start with "-" (``pg_dump --password=-Xk9``), and was shown. With a
space before it, a "-" may start the next flag (``--password --user bob``) and stays."""

from __future__ import annotations

import pytest

from shared.logs import scrub


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("pg_dump --password=-Xk9q7Tz db", "pg_dump --password=*** db"),
        ("deploy --token=-Zz9Qw --user=bob", "deploy --token=*** --user=bob"),
        ("client --api-key=--k3y9 ping", "client --api-key=*** ping"),
        # unchanged: a flag after a space is no value
        ("pg_dump --password --user bob", "pg_dump --password --user bob"),
        ("pg_dump --password -W db", "pg_dump --password -W db"),
    ],
)
def test_a_value_glued_to_the_flag_is_masked_with_a_leading_dash(line: str, shown: str) -> None:
    assert scrub(line) == shown


def test_runs_of_dashed_values_are_read_once() -> None:
    line = "--password=-" * (2_000_000 // 12)
    assert scrub(line).startswith("--password=***")
