"""Passwords the log scrubber still let through: redis-cli's password after other flags
(``-a --no-auth-warning --pass pw``), a lower-case ``create``/``alter user`` statement whose user
name opens a quote it never closes (``create user "bob identified by pw``), and MySQL's
lower-case ``grant ... on ... to ... identified by pw``. Prose and placeholders stay as they are."""

from __future__ import annotations

import pytest

from shared.logs import scrub


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # 1. redis-cli: flags between -a/--pass and the password
        ("redis-cli -a --no-auth-warning --pass s3cret", "redis-cli -a --no-auth-warning --pass ***"),
        ("redis-cli -a --no-auth-warning s3cret", "redis-cli -a --no-auth-warning ***"),
        ("redis-cli --pass --no-auth-warning s3cret ping", "redis-cli --pass --no-auth-warning *** ping"),
        ("redis-cli -a -a s3cret", "redis-cli -a -a ***"),
        ("redis-cli -h h -a --raw 's3 cret' ping", "redis-cli -h h -a --raw '***' ping"),
        ("redis-cli --no-auth-warning -a s3cret", "redis-cli --no-auth-warning -a ***"),
        # 2. a user name with a quote never closed, then a bare password (any case)
        ('create user "bob identified by s3cret', 'create user "bob identified by ***'),
        ("create user 'bob identified by s3cret;", "create user 'bob identified by ***;"),
        ("create user `bob identified by s3cret", "create user `bob identified by ***"),
        ("create user 'bob'@'% identified by s3cret", "create user 'bob'@'% identified by ***"),
        ("create user 'bob@'%' identified by s3cret", "create user 'bob@'%' identified by ***"),
        (
            'alter user "bob identified by s3cret, b identified by y2',
            'alter user "bob identified by ***, b identified by ***',
        ),
        # 3. MySQL's GRANT ... IDENTIFIED BY in lower case, bare
        ("grant all on db.* to bob identified by s3cret", "grant all on db.* to bob identified by ***"),
        (
            "grant all on db.* to 'bob'@'%' identified by s3cret with grant option;",
            "grant all on db.* to 'bob'@'%' identified by *** with grant option;",
        ),
        (
            "grant select, insert on db.t to bob@localhost identified by pa$$word",
            "grant select, insert on db.t to bob@localhost identified by ***",
        ),
        ('grant all on *.* to "bob identified by s3cret', 'grant all on *.* to "bob identified by ***'),
        (
            "Grant All On db.* To a Identified By x1, b Identified By y_2",
            "Grant All On db.* To a Identified By ***, b Identified By ***",
        ),
        ("grant all on db to bob identified by 'x'", "grant all on db to bob identified by '***'"),
    ],
)
def test_secret_is_masked(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "redis-cli -a --no-auth-warning",
        "redis-cli -a --no-auth-warning; ls -a x",
        "grant access to users identified by email",
        "grant read on the repo to users identified by email",
        "grant read on the repo to users identified by e-mail.",
        "grant all on db.* to bob identified by %s",
        "grant all on db.* to bob identified by ?",
        "the grant was identified by its id 42",
    ],
)
def test_ordinary_text_stays(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis-cli -a " + "--x " * 100_000 + "pw", "redis-cli -a " + "--x " * 100_000 + "***"),
        ("redis-cli " + "-a --x " * 60_000, "redis-cli " + "-a --x " * 60_000),
        ('create user "' + "a" * 400_000 + " identified by pw", 'create user "' + "a" * 400_000 + " identified by ***"),
        ("create user " + "'a" * 200_000, "create user " + "'a" * 200_000),
        ("grant " * 60_000, "grant " * 60_000),
        ("/grant " * 60_000, "/grant " * 60_000),
        ("grant a on b to " * 30_000, "grant a on b to " * 30_000),
        ("grant a " * 50_000, "grant a " * 50_000),
        (
            "grant all on b to " + "a identified by x1, " * 20_000,
            "grant all on b to " + "a identified by ***, " * 20_000,
        ),
    ],
)
def test_hostile_lines_are_scanned_once(text: str, shown: str) -> None:
    """Long runs of the new patterns' prefixes. No wall time is asserted (the bench times
    scrub()); a pattern that backtracked here would run past the suite's limit."""
    assert scrub(text) == shown
