"""The log scrubber masks the API-key headers and fields of other services (``X-API-Key``,
``X-Auth-Token``, GitLab's ``Private-Token``, ...), cookies, the parameter lists of Digest,
AWS and OAuth 1.0 Authorization values, and bare JSON Web Tokens (all were logged whole),
and keeps ordinary text about keys, cookies and tokens as it is."""

from __future__ import annotations

import logging

import pytest

from shared.logs import configure, scrub

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnX2FiYy1ERUY"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("X-API-Key: abc123def456", "X-API-Key: ***"),
        ("x-api-key: abc123 rest", "x-api-key: *** rest"),
        ("X-Api-Key:k3y", "X-Api-Key:***"),
        ("Api-Key: sekret", "Api-Key: ***"),
        ("X-Auth-Token: t0k", "X-Auth-Token: ***"),
        ("X-Access-Token: t0k", "X-Access-Token: ***"),
        ("PRIVATE-TOKEN: glpat-abcdef123", "PRIVATE-TOKEN: ***"),
        ("Private-Token: glpat-abcdef123", "Private-Token: ***"),
        ("X-RapidAPI-Key: 1f2e3d", "X-RapidAPI-Key: ***"),
        ("oauth_token=abc&x=1", "oauth_token=***&x=1"),
        ('{"x-api-key": "abc123", "b": 1}', '{"x-api-key": "***", "b": 1}'),
        ("{'X-API-Key': 'k3y', 'Accept': '*/*'}", "{'X-API-Key': '***', 'Accept': '*/*'}"),
        ("[(b'x-api-key', b'abc'), (b'host', b'x')]", "[(b'x-api-key', b'***'), (b'host', b'x')]"),
        (
            r"send: b'GET / HTTP/1.1\r\nHost: x\r\nX-Auth-Token: zzz\r\n\r\n'",
            r"send: b'GET / HTTP/1.1\r\nHost: x\r\nX-Auth-Token: ***\r\n\r\n'",
        ),
        ("api_key=abc123 sent", "api_key=*** sent"),
        (
            '{"access_token": "ya29.abc", "refresh_token": "1//xyz", "token_type": "Bearer"}',
            '{"access_token": "***", "refresh_token": "***", "token_type": "Bearer"}',
        ),
        ("aws_access_key_id=AKIA123 aws_secret_access_key=xyz", "aws_access_key_id=AKIA123 aws_secret_access_key=***"),
        ("GET /x?x-api-key=abc#frag", "GET /x?x-api-key=***#frag"),
    ],
)
def test_api_key_headers_and_fields_are_masked_and_the_name_kept(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Cookie: session=abc123; other=def456", "Cookie: session=***; other=***"),
        ("Cookie: session=abc123; other=def456 sent to host", "Cookie: session=***; other=*** sent to host"),
        ("Set-Cookie: sid=abc; Path=/; HttpOnly", "Set-Cookie: sid=***; Path=/; HttpOnly"),
        (
            "Set-Cookie: sid=abc; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/; Secure; HttpOnly",
            "Set-Cookie: sid=***; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/; Secure; HttpOnly",
        ),
        # A folded Set-Cookie (requests joins them with ", "): each cookie goes.
        (
            "{'Set-Cookie': 'sid=abc; expires=Wed, 21-Oct-2026 07:28:00 GMT; Max-Age=60; path=/; HttpOnly, o=xyz'}",
            "{'Set-Cookie': 'sid=***; expires=Wed, 21-Oct-2026 07:28:00 GMT; Max-Age=60; path=/; HttpOnly, o=***'}",
        ),
        # A request's cookies have no attributes: a cookie named like one goes too.
        ("Cookie: path=abc; domain=xyz", "Cookie: path=***; domain=***"),
        # The first pair of a Set-Cookie is the cookie, whatever its name.
        ("Set-Cookie: path=abc; Path=/", "Set-Cookie: path=***; Path=/"),
        ("Cookie: abc123", "Cookie: ***"),
        ('{"cookie": "a=b"}', '{"cookie": "a=***"}'),
        ("[(b'cookie', b'a=b; c=d')]", "[(b'cookie', b'a=***; c=***')]"),
        (r"Host: x\r\nCookie: a=b; c=d\r\n", r"Host: x\r\nCookie: a=***; c=***\r\n"),
        # An Expires that is no date is read as a cookie value: nothing after it is kept whole.
        ("Set-Cookie: a=1; Expires=Wed, b=secret", "Set-Cookie: a=***; Expires=Wed, b=***"),
    ],
)
def test_cookie_values_are_masked_and_names_and_attributes_kept(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            'Authorization: Digest username="x", realm="r", nonce="n1", uri="/", response="abc", cnonce="c1", '
            "nc=00000001, qop=auth then",
            "Authorization: Digest *** then",
        ),
        (
            '{"Authorization": "Digest username=\\"x\\", realm=\\"r, s\\", response=\\"abc\\""}',
            '{"Authorization": "Digest ***"}',
        ),
        ("{'Authorization': 'Digest username=\"x\", response=\"abc\"'}", "{'Authorization': 'Digest ***'}"),
        (
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6 200",
            "Authorization: AWS4-HMAC-SHA256 *** 200",
        ),
        ("Authorization: AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", "Authorization: AWS ***"),
        ('Authorization: OAuth oauth_consumer_key="xkjd", oauth_signature="sig"', "Authorization: OAuth ***"),
        ('Authorization: Hawk id="dh37", ts="1353832234", mac="6R4rV5"', "Authorization: Hawk ***"),
        ("Authorization: SharedKey acct:c2lnbmF0dXJl", "Authorization: SharedKey ***"),
    ],
)
def test_parameter_list_authorization_values_are_masked_whole(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"got {JWT} from idp", "got *** from idp"),
        (f'"id_token":"{JWT}"', '"id_token":"***"'),
        (f"?next=%22{JWT}%22", "?next=%22***%22"),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. alg none", "*** alg none"),
        # JWE: five parts.
        ("eyJhbGciOiJkaXIifQ..aXY.Y2lwaGVy.dGFn end", "*** end"),
    ],
)
def test_bare_json_web_tokens_are_masked(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "an API key is required (Authorization: Bearer <key> or X-API-Key)",
        "X-API-Key: missing",
        "x-api-key: invalid, key revoked",
        "X-API-Key header missing",
        "api key rotated",
        "fields ['api_key', 'name']",
        "Settings(api_key=SecretStr('**********'), x=1)",
        "api_key == expected",
        "cookie jar emptied",
        "cookie: missing",
        "cookies: 3 set",
        "token bucket refilled, version 1.2.3 and 10.0.1",
        "Authorization: denied for user 7",
        "eyJhbGciOiJIUzI1NiJ9 alone is a header, no token",
        "see file eyJhbGciOiJIUzI1NiJ9.json",
    ],
)
def test_ordinary_text_about_keys_cookies_and_tokens_stays(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "a-" * 200_000,
        "a" * 400_000 + "-key: x",
        "\\na_" * 100_000,
        "api_key" * 50_000,
        "eyJ" + "a" * 400_000,
        "%41eyJaaaaa" * 40_000,
    ],
)
def test_hostile_lines_without_a_secret_are_kept_whole(text: str) -> None:
    """Long runs of the new patterns' prefixes: nothing to mask. No wall time is asserted
    (the bench times scrub()); a pattern that backtracked here would run past the suite's
    per-test limit."""
    assert scrub(text) == text


def test_hostile_runs_of_the_new_prefixes_are_masked_in_one_pass() -> None:
    assert scrub("x-api-key: " * 40_000) == "x-api-key: *** " * 20_000
    assert scrub("Set-Cookie: " + "a; " * 100_000) == "Set-Cookie: " + "***; " * 100_000
    assert scrub("Authorization: Digest " + "a" * 400_000) == "Authorization: Digest ***"
    assert scrub("Authorization: Digest " + "a=b, " * 80_000) == "Authorization: Digest ***, "
    assert scrub("Authorization: Digest a=" + "\\" * 400_000) == "Authorization: Digest ***" + "\\" * 400_000
    assert scrub("eyJaaaaaaaa" + "." * 400_000) == "***" + "." * (400_000 - 4)
    assert scrub("cookie: expires=Wed, 21 Oct " * 15_000) == "cookie: expires=***, *** Oct " * 15_000


def test_configured_logging_masks_a_logged_header_dict(root_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure("WARNING", "svc")
    headers = {"X-API-Key": "k3y-123", "Cookie": "sid=abc; theme=dark", "X-Trace": JWT}
    logging.getLogger("services.x").warning("POST failed, headers %s", headers)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("headers {'X-API-Key': '***', 'Cookie': 'sid=***; theme=***', 'X-Trace': '***'}")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('{"password": "hunter2", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ("{'db_password': 'hunter2'}", "{'db_password': '***'}"),
        ("password=hunter2 user=bob", "password=*** user=bob"),
        ("TW_POSTGRES__PASSWORD=s3cret", "TW_POSTGRES__PASSWORD=***"),
        ("Passphrase: correct-horse", "Passphrase: ***"),
    ],
)
def test_password_fields_are_masked_and_the_name_kept(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    "text",
    ["password: missing", "the password is wrong", "passwordless login", "intent=password_reset", "Password-Reset: 1"],
)
def test_talk_about_passwords_stays(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('{"password": "p@ss word", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ('X-Api-Key: "abcd 1234" sent', 'X-Api-Key: "***" sent'),
        ('{"password":"a\\"b,c", "u": 1}', '{"password":"***", "u": 1}'),
        ("{'api_key': 'ab cd', 'x': 'y'}", "{'api_key': '***', 'x': 'y'}"),
        ('password="unterminated secret', 'password="***'),
    ],
)
def test_a_quoted_value_is_masked_whole(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize("text", ['"password": "missing"', '{"password": ""}', '"token_count": "5"'])
def test_a_quoted_prose_or_empty_value_stays(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # An unquoted value outside a URL's query: a "#" is part of it.
        ("password=abc#def user=bob", "password=*** user=bob"),
        # JSON inside a JSON string: the quotes around the name and the value are escaped.
        ('body="{\\"password\\": \\"hunter2\\"}"', 'body="{\\"password\\": \\"***\\"}"'),
        ('{\\"api_key\\":\\"abc123\\"}', '{\\"api_key\\":\\"***\\"}'),
        (
            '{\\"password\\": \\"a\\\\\\"b c\\", \\"user\\": \\"bob\\"}',
            '{\\"password\\": \\"***\\", \\"user\\": \\"bob\\"}',
        ),
        ('{\\\\\\"token\\\\\\": \\\\\\"abc def\\\\\\"} ok', '{\\\\\\"token\\\\\\": \\\\\\"***\\\\\\"} ok'),
        ('{\\"token\\": 123456}', '{\\"token\\": ***}'),
        # Header tuples and lists with str values.
        ('[("X-API-Key", "abcd1234efgh")]', '[("X-API-Key", "***")]'),
        ("[('x-api-key', 'abcd 1234'), ('host', 'x')]", "[('x-api-key', '***'), ('host', 'x')]"),
        ('{"x-api-key": ["abcd1234"]}', '{"x-api-key": ["***"]}'),
        ("{'x-api-key': [b'abcd1234']}", "{'x-api-key': [b'***']}"),
    ],
)
def test_hash_escaped_json_and_header_tuple_values_are_masked(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('{"token": "abc123", "n": 1}', '{"token": "***", "n": 1}'),
        ("secret=xyz sent", "secret=*** sent"),
        ("token: 123456", "token: ***"),
        ("webhook_secret=abc123", "webhook_secret=***"),
        ("signing_secret: abc123", "signing_secret: ***"),
        ("TW_ALERTER_WEBHOOK_SECRET=abcdefghijklmnop", "TW_ALERTER_WEBHOOK_SECRET=***"),
        ("{'pseudonym_key': 'k3y k3y'}", "{'pseudonym_key': '***'}"),
        ("TW_CLASSIFIER_PSEUDONYM_KEY=abcdefghijklmnop", "TW_CLASSIFIER_PSEUDONYM_KEY=***"),
        ("Server=db;Uid=tw;Pwd=s3cret;", "Server=db;Uid=tw;Pwd=***;"),
        ("GET /login?user=a&pass=abc123&x=1", "GET /login?user=a&pass=***&x=1"),
        ("GET /login?user=a&pwd=abc123", "GET /login?user=a&pwd=***"),
        ("ALTER ROLE tw PASSWORD 'secret'", "ALTER ROLE tw PASSWORD '***'"),
        ("CREATE USER u WITH ENCRYPTED PASSWORD 'it''s a secret';", "CREATE USER u WITH ENCRYPTED PASSWORD '***';"),
    ],
)
def test_bare_token_and_secret_and_other_secret_names_are_masked(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "token bucket refilled",
        "intent=password_reset",
        "secret santa",
        "the secret is out",
        "tokens: 512",
        "max_tokens=512",
        '{"max_tokens": 512, "token_type": "Bearer", "token_count": 5}',
        '{"secret": true, "password": null}',
        "secrets: 3 loaded",
        "ALTER ROLE tw PASSWORD NULL",
        "pass 2 of 3",
        "fields ['api_key', 'name']",
        "TW_CLASSIFIER_PSEUDONYM_KEY is the development default in production",
        '{\\"password\\": \\"\\"}',
    ],
)
def test_ordinary_text_about_tokens_secrets_and_passwords_stays(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # An empty JSON-escaped value each time: nothing to mask.
        ('\\"password\\": \\"' * 30_000, '\\"password\\": \\"' * 30_000),
        # Each tuple's value is the "(" of the next one.
        ('("x-api-key", "' * 30_000, '("x-api-key", "' + '***"x-api-key", "' * 29_999),
        ("PASSWORD '" * 40_000, "PASSWORD '***'" * 20_000),
        # Unterminated: masked to the end of the line.
        ('"token": "' + "\\" * 400_000, '"token": "***'),
        ('\\"token\\": \\"' + "\\" * 400_000, '\\"token\\": \\"***'),
        ("token" * 80_000, "token" * 80_000),
        ("a_" * 200_000 + "secret", "a_" * 200_000 + "secret"),
    ],
)
def test_hostile_runs_of_the_escaped_tuple_and_sql_forms_end_in_one_pass(text: str, shown: str) -> None:
    """No wall time is asserted (the bench times scrub()); a backtracking pattern here would
    run past the suite's per-test limit."""
    assert scrub(text) == shown
