"""Secrets the log scrubber let through in clear: MySQL/MariaDB passwords in statements, every
element after the first of a secret field's list or tuple, Redis AUTH and config passwords,
command-line password flags, PEM private keys, service-prefixed tokens (GitHub, Stripe, Slack,
...), presigned-URL signatures and Azure account keys. Ordinary text (counts of tokens, Kafka
record keys, prose about passwords) stays as it is."""

from __future__ import annotations

import logging

import pytest

from shared.logs import configure, scrub


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("CREATE USER 'u'@'h' IDENTIFIED BY 'secret'", "CREATE USER 'u'@'h' IDENTIFIED BY '***'"),
        ("ALTER USER 'u'@'%' IDENTIFIED BY \"secret\" ;", "ALTER USER 'u'@'%' IDENTIFIED BY \"***\" ;"),
        ("alter user u identified by 'it''s\\'x' done", "alter user u identified by '***' done"),
        (
            "CREATE USER 'u'@'h' IDENTIFIED WITH mysql_native_password BY 'x9'",
            "CREATE USER 'u'@'h' IDENTIFIED WITH mysql_native_password BY '***'",
        ),
        (
            "IDENTIFIED WITH 'caching_sha2_password' AS '$A$005$abc'",
            "IDENTIFIED WITH 'caching_sha2_password' AS '***'",
        ),
        ("IDENTIFIED BY PASSWORD '*94BDCEBE19083CE2'", "IDENTIFIED BY PASSWORD '***'"),
        ("IDENTIFIED VIA ed25519 USING PASSWORD('pw')", "IDENTIFIED VIA ed25519 USING PASSWORD('***')"),
        ("GRANT ALL ON *.* TO 'u'@'h' IDENTIFIED BY 'secret'", "GRANT ALL ON *.* TO 'u'@'h' IDENTIFIED BY '***'"),
        ("SET PASSWORD FOR 'u'@'h' = 'x9'", "SET PASSWORD FOR 'u'@'h' = '***'"),
        ("SET PASSWORD FOR u@h = PASSWORD('x9')", "SET PASSWORD FOR u@h = PASSWORD('***')"),
        ("SET PASSWORD = 'x'", "SET PASSWORD = '***'"),
        (
            "ALTER USER u IDENTIFIED BY 'new' REPLACE 'old' RETAIN CURRENT PASSWORD",
            "ALTER USER u IDENTIFIED BY '***' REPLACE '***' RETAIN CURRENT PASSWORD",
        ),
        (
            "CREATE USER a IDENTIFIED BY 'p1', b IDENTIFIED BY 'p2'",
            "CREATE USER a IDENTIFIED BY '***', b IDENTIFIED BY '***'",
        ),
    ],
)
def test_mysql_passwords_in_statements_are_masked(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('{"password": ["a", "b"]}', '{"password": ["***", "***"]}'),
        ("{'password': ['a1', 'b2', 'c3']}", "{'password': ['***', '***', '***']}"),
        (
            'headers=[("Authorization", ["Bearer a", "Bearer b"])]',
            'headers=[("Authorization", ["Bearer ***", "Bearer ***"])]',
        ),
        ("{'Authorization': ['Basic YWJj', 'xyz']}", "{'Authorization': ['Basic ***', '***']}"),
        ("api_key=['k1', 'k2']", "api_key=['***', '***']"),
        ("api_key=[k1, k2]", "api_key=[***, ***]"),
        ("{'api_key': ['k1', 'k2'], 'name': 'x'}", "{'api_key': ['***', '***'], 'name': 'x'}"),
        ("{'token': ('t1', 't2')}", "{'token': ('***', '***')}"),
        ("('x-api-key', ['a', 'b'])", "('x-api-key', ['***', '***'])"),
        ("(b'x-api-key', [b'a', b'b'])", "(b'x-api-key', [b'***', b'***'])"),
        ('{\\"password\\": [\\"a\\", \\"b\\"]}', '{\\"password\\": [\\"***\\", \\"***\\"]}'),
        ("password=['x\\'y', \"it's\"] end", "password=['***', \"***\"] end"),
        ('{"password": ["a", "b', '{"password": ["***", "***'),  # cut short
        ("auth=('user', 's3cret')", "auth=('user', '***')"),
        ("{'auth': ('user', 'pw')}", "{'auth': ('user', '***')}"),
    ],
)
def test_every_element_of_a_secret_list_is_masked(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "Command # 1 (AUTH default s3cret) of pipeline caused error: WRONGPASS",
            "Command # 1 (AUTH default ***) of pipeline caused error: WRONGPASS",
        ),
        ("Command # 1 (AUTH s3cret) of pipeline caused error", "Command # 1 (AUTH ***) of pipeline caused error"),
        ("requirepass s3cret", "requirepass ***"),
        ("CONFIG SET masterauth s3cret", "CONFIG SET masterauth ***"),
        ("pg_dump --password=s3cret -h db", "pg_dump --password=*** -h db"),
        ("run --api-key abc123 --verbose", "run --api-key *** --verbose"),
        (
            "Command '['pg_dump', '--password', 's3cret']' returned non-zero exit status 1.",
            "Command '['pg_dump', '--password', '***']' returned non-zero exit status 1.",
        ),
        ("['--token=abc123']", "['--token=***']"),
    ],
)
def test_redis_and_command_line_passwords_are_masked(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\nab+/cd==\n-----END RSA PRIVATE KEY-----\nnext",
            "-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----\nnext",
        ),
        (
            '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQ\\n-----END PRIVATE KEY-----\\n"}',
            '{"private_key": "***"}',
        ),
        (
            "key -----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNz\\n-----END OPENSSH PRIVATE KEY-----",
            "key -----BEGIN OPENSSH PRIVATE KEY-----***-----END OPENSSH PRIVATE KEY-----",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,AB12\n\nMIIE\n"
            "-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----",
        ),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF\n=abc\n-----END PGP PRIVATE KEY BLOCK-----",
            "-----BEGIN PGP PRIVATE KEY BLOCK-----***-----END PGP PRIVATE KEY BLOCK-----",
        ),
        ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI", "-----BEGIN EC PRIVATE KEY-----***"),  # cut short
    ],
)
def test_private_keys_are_masked(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("using ghp_abcdefghijklmnopqrstuvwxyz0123456789", "using ghp_***"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF", "github_pat_***"),
        ("glpat-abcdefghij1234567890 ok", "glpat-*** ok"),
        ("stripe sk_live_51Habcdefghijklmnopqrstuvwx", "stripe sk_live_***"),
        ("rk_test_51Habcdefghijklmnop", "rk_test_***"),
        ("whsec_abcdefghijklmnopqrstuvwxyz012345", "whsec_***"),
        ("slack xoxb-1234567890-1234567890123-abcdefghijklmnopqrstuvwx", "slack xoxb-***"),
        ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "hf_***"),
        ("openai sk-proj-abcdefghijklmnopqrstuvwxyz0123456789", "openai sk-***"),
        ("key=AKIAIOSFODNN7EXAMPLE,", "key=AKIA***,"),
        ("AIzaSyD-abcdefghijklmnopqrstuvwxyz12345", "AIza***"),
        (
            "GET https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F2013&X-Amz-Signature=aeeed9bb&X-Amz-Date=1",
            "GET https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F2013&X-Amz-Signature=***&X-Amz-Date=1",
        ),
        (
            "https://storage.googleapis.com/b/o?X-Goog-Signature=abcdef0123&X-Goog-Expires=60",
            "https://storage.googleapis.com/b/o?X-Goog-Signature=***&X-Goog-Expires=60",
        ),
        (
            "DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=abc123+/==;EndpointSuffix=core.windows.net",
            "DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=***;EndpointSuffix=core.windows.net",
        ),
    ],
)
def test_service_tokens_signatures_and_account_keys_are_masked(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "tokens: 512",
        "max_tokens=512",
        "max_tokens=[512, 256]",
        "token bucket refilled",
        "record key=b'ACME' offset=3 partition=1",
        "IDENTIFIED BY the admin",
        "IDENTIFIED BY %s",
        "SET PASSWORD requires privileges",
        "REPLACE INTO t VALUES ('a')",
        "['api_key', 'name']",
        "tokens=['a', 'b']",
        "password=[missing]",
        "token: (see below)",
        "{'token': []}",
        '{"auth": ["read", "write"]}',
        "error: (errno 111)",
        "AUTH failed for user 7",
        "AUTH OK",
        "requirepass is set",
        "--password is required",
        "--password-file /etc/pw --token-file /etc/t",
        "ghp_short sk-learn-compatible-tokenizer-models task-abcdefghijklmnopqrstuvwxyz0123",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
        "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F2013&X-Amz-Date=20130524T000000Z",
    ],
)
def test_ordinary_text_stays(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("IDENTIFIED BY " * 40_000, "IDENTIFIED BY " * 40_000),
        ("SET PASSWORD FOR " + "a" * 400_000, "SET PASSWORD FOR " + "a" * 400_000),
        ("-----BEGIN " + "A " * 200_000, "-----BEGIN " + "A " * 200_000),
        ("ghp_" + "a" * 400_000 + "_", "ghp_" + "a" * 400_000 + "_"),
        ("sk-" + "a" * 400_000, "sk-" + "a" * 400_000),
        ("--a-" * 100_000, "--a-" * 100_000),
        ("password=[]" * 40_000, "password=[]" * 40_000),
        ("('x-api-key', [)" * 30_000, "('x-api-key', [)" * 30_000),
        ("password=[" * 40_000, "password=[***[" * 20_000),
        ("{'password': [" + "'a', " * 80_000 + "]}", "{'password': [" + "'***', " * 80_000 + "]}"),
        ("password=[" + "a, " * 130_000 + "]", "password=[" + "***, " * 130_000 + "]"),
        ("-----BEGIN PRIVATE KEY-----" + "a-" * 200_000, "-----BEGIN PRIVATE KEY-----***"),
        ("IDENTIFIED BY '" + "a''" * 130_000, "IDENTIFIED BY '***"),
    ],
)
def test_hostile_lines_are_scanned_once(text: str, shown: str) -> None:
    """Long runs of the new patterns' prefixes and long values. No wall time is asserted (the
    bench times scrub()); a pattern that backtracked here would run past the suite's limit."""
    assert scrub(text) == shown


def test_configured_logging_masks_every_element_of_a_logged_list(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("WARNING", "svc")
    config = {"bootstrap": "kafka:9092", "sasl_plain_password": ["old-pw", "new-pw"]}
    logging.getLogger("services.x").warning("rotating, config %s", config)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("rotating, config {'bootstrap': 'kafka:9092', 'sasl_plain_password': ['***', '***']}")
