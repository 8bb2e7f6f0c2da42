"""What the review of the scrubber's CLI, Docker auth and ``credentials`` masks found: a
``mysql``/``redis-cli`` flag mask that ran past the end of the command (``;``, ``|``, ``&&``, a
sentence end) into another command's ``-p``/``-a``; a Docker ``"auth"`` mask that took short
words (``"none"``, ``"basic"``); ``aws_credentials: <secret>`` never masked while the fetch API's
``credentials=include`` was; an HTTP status code after a bare ``credentials:`` masked (``invalid
credentials: 401``) while ``credentials: admin:hunter2`` was not."""

from __future__ import annotations

import pytest

from shared.logs import scrub


@pytest.mark.parametrize(
    "text",
    [
        # 1. a mysql / redis-cli command ends at ";", "|", "&", a line end or a sentence end
        "mysql connection lost; retry with ssh -p2222 bastion",
        "mysql down | ssh -p2222 bastion",
        "mysql check failed && ssh -p2222 bastion",
        "mysql connection lost. Retry with ssh -p2222 bastion",
        "mysql connection lost, retry with ssh -p2222 bastion",
        "mysqldump failed: try ssh -p2222 bastion",
        '{"msg": "mysql connection lost\\nretry with ssh -p2222 bastion"}',
        "redis-cli ping; ssh -a secretive host",
        "redis-cli timed out. Retry with ssh -a forwarding host",
        # 2. a Docker "auth" value that is a word, not base64 of user:password
        '{"auth": "none"}',
        '{"auth": "basic"}',
        '{"auth": "token"}',
        '{"auth": "oauth2"}',
        '{"auth": "required"}',
        '{"auth": "Required"}',
        '{\\"auth\\": \\"none\\"}',
        # 3. the fetch API's credentials modes
        "credentials=include",
        "fetch ?mode=cors&credentials=omit&cache=no-store",
        "credentials=same-origin",
        '{credentials: "include"}',
        '{"credentials": "same-origin"}',
        # prose after a bare "credentials:" still stays
        "Invalid credentials: user not found",
        "Invalid credentials: User unknown.",
        # an HTTP status code after a bare "credentials:" stays too
        "invalid credentials: 401",
        "credentials: 401",
        "Invalid credentials: 401 Unauthorized",
        "login failed (invalid credentials: 403).",
    ],
)
def test_ordinary_text_stays(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # 1. the flag within the command is still masked; a pipe ends the value
        ("mysql -h db.example.com -u root -pS3c db; echo done", "mysql -h db.example.com -u root -p*** db; echo done"),
        ("mysql --host=db:3306 -uroot -pS3c", "mysql --host=db:3306 -uroot -p***"),
        ("redis-cli -h h -a pw ping; ssh -p22 x", "redis-cli -h h -a *** ping; ssh -p22 x"),
        ("redis-cli -a pw|grep PONG", "redis-cli -a ***|grep PONG"),
        # 2. Docker's registry auth, plain and JSON-escaped
        ('{"auths": {"r": {"auth": "dXNlcjpwYXNz"}}}', '{"auths": {"r": {"auth": "***"}}}'),
        (
            '{\\"auths\\": {\\"r\\": {\\"auth\\": \\"dXNlcjpwYXNz\\"}}}',
            '{\\"auths\\": {\\"r\\": {\\"auth\\": \\"***\\"}}}',
        ),
        ('{"auth": "YTpi"}', '{"auth": "***"}'),  # "a:b"
        ('{"auth": "dXNlcjpwYXNzMQ"}', '{"auth": "***"}'),  # "user:pass1", padding dropped
        ('{"auth": "c2stbGl2ZS0xMjM0NTY3OA=="}', '{"auth": "***"}'),  # no ":", not a word
        # 3. a credentials field in a YAML or config dump
        ("aws_credentials: AKIAxxxxSECRET", "aws_credentials: ***"),
        ("AWS_CREDENTIALS : abc123 region=eu", "AWS_CREDENTIALS : *** region=eu"),
        ("credentials: AKIAxxxxSECRET", "credentials: ***"),
        ("Invalid credentials: hunter2", "Invalid credentials: ***"),
        ("aws_credentials: user", "aws_credentials: ***"),
        ("credentials=includeX", "credentials=***"),
        ('{"credentials": "omitted-secret"}', '{"credentials": "***"}'),
        # only a status code stays: other numbers, a quoted, "=" or prefixed value, a word or number with more after ":"
        (
            "invalid credentials: 401, credentials: 123456 credentials: 600 credentials: 4010 credentials: 40",
            "invalid credentials: 401, credentials: *** credentials: *** credentials: *** credentials: ***",
        ),
        (
            'invalid credentials: 401 credentials=401 "credentials": "401" aws_credentials: 401',
            'invalid credentials: 401 credentials=*** "credentials": "***" aws_credentials: ***',
        ),
        ("invalid credentials: 401 credentials: 401:hunter2", "invalid credentials: 401 credentials: ***"),
        ("credentials: admin:hunter2", "credentials: ***"),
    ],
)
def test_secret_is_masked(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("mysql " + "a. " * 130_000 + "-pX", "mysql " + "a. " * 130_000 + "-pX"),
        ("mysql " + "a." * 200_000 + "a -pX", "mysql " + "a." * 200_000 + "a -p***"),
        ("redis-cli " + "\\" * 400_000 + " -a pw", "redis-cli " + "\\" * 400_000 + " -a ***"),
        ("credentials: " * 30_000, "credentials: " * 30_000),
        ("credentials: " + "a" * 400_000, "credentials: " + "a" * 400_000),
        ("credentials: 401 " * 30_000, "credentials: 401 " * 30_000),
        ("credentials: " + "admin:" * 70_000, "credentials: ***"),
        ('"auth": "' + "A" * 400_000 + '"', '"auth": "***"'),
    ],
)
def test_hostile_lines_are_scanned_once(text: str, shown: str) -> None:
    """Long runs of the changed patterns' prefixes; no wall time is asserted (see the report's
    timings), a pattern that backtracked here would run past the suite's limit."""
    assert scrub(text) == shown
