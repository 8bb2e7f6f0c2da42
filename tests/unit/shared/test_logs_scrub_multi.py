"""Passwords the log scrubber still let through, and a host it hid: every password flag of one
command line, not the first alone (``redis-cli -a s3 --pass s4``, ``mysql -pA -pB``); a redis-cli
password that starts with "-" (``-a -Xk9q``, ``--pass=-Xk9q``); ``redis-cli -a -h host`` (an
unset ``$REDIS_PASSWORD``), whose host stays; a letters-only password of a ``grant ... on ... to
... identified by`` statement that reads as SQL, and of ``set password for <user> = <pw>``. Prose
stays as it is."""

from __future__ import annotations

import pytest

from shared.logs import scrub


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # 1. every password flag of the command
        ("redis-cli -a s3 --pass s4", "redis-cli -a *** --pass ***"),
        ("redis-cli -a s3 -a s4", "redis-cli -a *** -a ***"),
        ("redis-cli --pass s3 --pass s4", "redis-cli --pass *** --pass ***"),
        ("redis-cli --pass=s3 --pass=s4", "redis-cli --pass=*** --pass=***"),
        ("redis-cli --password=s3 --password s4", "redis-cli --password=*** --password ***"),
        ("redis-cli -h h -a s3 -p 1 --pass s4 ping", "redis-cli -h h -a *** -p 1 --pass *** ping"),
        ('redis-cli -a "s3" -a "s 4" ping', 'redis-cli -a "***" -a "***" ping'),
        ("redis-cli -a s3 --no-auth-warning -a s4", "redis-cli -a *** --no-auth-warning -a ***"),
        ("redis-cli -a s3,x -a s4", "redis-cli -a ***,x -a ***"),
        ("redis-cli -a --pass=s3cret", "redis-cli -a --pass=***"),
        ("redis-cli -a s3 -a s4 -a s5; redis-cli -a s6", "redis-cli -a *** -a *** -a ***; redis-cli -a ***"),
        # ... of that command only: another command's -a is its own
        ("redis-cli -a s3 ping; ls -a x", "redis-cli -a *** ping; ls -a x"),
        ("mysql -pA -pB db", "mysql -p*** -p*** db"),
        ("mysql -u root -p'A' -h db -pB", "mysql -u root -p'***' -h db -p***"),
        # 2. a password that starts with "-" is no flag; an option's argument is no password
        ("redis-cli -a -Xk9q ping", "redis-cli -a *** ping"),
        ("redis-cli --pass=-Xk9q ping", "redis-cli --pass=*** ping"),
        ("redis-cli -a -h host ping", "redis-cli -a -h host ***"),
        ("redis-cli -a -p s3cret", "redis-cli -a -p ***"),
        ("redis-cli -a --user=bob s3cret", "redis-cli -a --user=bob ***"),
        ("redis-cli -a --user bob -h h s3cret", "redis-cli -a --user bob -h h ***"),
        # 3. a letters-only password of a grant that reads as SQL, and of SET PASSWORD FOR
        ("grant all on db.* to bob identified by secret", "grant all on db.* to bob identified by ***"),
        ("grant all on db.* to bob identified by secret;", "grant all on db.* to bob identified by ***;"),
        ("grant all on db to bob identified by secret", "grant all on db to bob identified by ***"),
        (
            "grant select, insert on table db.t to bob identified by secret with grant option",
            "grant select, insert on table db.t to bob identified by *** with grant option",
        ),
        (
            "grant usage on *.* to 'bob'@'%' identified by secret",
            "grant usage on *.* to 'bob'@'%' identified by ***",
        ),
        (
            "grant read on the repo to bob@localhost identified by secret",
            "grant read on the repo to bob@localhost identified by ***",
        ),
        (
            "grant all on db.* to a identified by x1, b identified by secret",
            "grant all on db.* to a identified by ***, b identified by ***",
        ),
        ("set password for bob = hunter", "set password for bob = ***"),
        ("SET PASSWORD FOR 'u'@'h' = hunter;", "SET PASSWORD FOR 'u'@'h' = ***;"),
    ],
)
def test_secret_is_masked(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        # Read strictly, redis-cli takes "-h" for the password here; an option's name is public
        # and this is what an unset $REDIS_PASSWORD gives: the host stays readable.
        "redis-cli -a -h host",
        "redis-cli -a -h host -p 6379",
        "redis-cli --pass --no-auth-warning -u redis://h:6379",
        "the user identified by the system was removed",
        "grant all on the repo to users identified by email",
        "grant read on repo to users identified by email",
        "grant all on db.* to bob identified by :pw",
        "set password for bob = ?",
        "SET PASSWORD FOR u@h = PASSWORD('***')",
        "reset password for bob = done",
    ],
)
def test_ordinary_text_stays(text: str) -> None:
    assert scrub(text) == text
