from __future__ import annotations

import logging
import random
import re

import pytest
from pydantic import SecretStr

from shared.config import PostgresSettings
from shared.logs import RepeatFilter, configure, mask_url, mask_url_passwords, scrub


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeats_within_the_window_are_held_back_and_counted() -> None:
    clock = Clock()
    f = RepeatFilter(prefixes=("aiokafka",), window_s=30, clock=clock)
    first = record("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s", 1, "refused")
    assert f.filter(first)
    assert first.getMessage() == "Unable connect to node with id 1: refused"
    for i in range(500):
        clock.now = i * 0.05
        assert not f.filter(record("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s", 1, i))
    clock.now = 31.0
    later = record("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s", 1, "refused")
    assert f.filter(later)
    assert later.getMessage() == "Unable connect to node with id 1: refused [and 500 more like this in the last 31 s]"
    clock.now = 62.0
    quiet = record("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s", 1, "refused")
    assert f.filter(quiet)
    assert "more like this" not in quiet.getMessage()


def test_the_last_count_is_flushed_once_the_kind_goes_quiet() -> None:
    clock = Clock()
    f = RepeatFilter(prefixes=("aiokafka",), window_s=10, clock=clock)
    msg = "Unable connect to node with id %s: %s"
    assert f.filter(record("aiokafka", logging.ERROR, msg, 1, "first"))
    for i in range(1, 41):  # the outage ends 8 s in, inside the first window
        clock.now = i * 0.2
        assert not f.filter(record("aiokafka", logging.ERROR, msg, 1, f"try {i}"))
    clock.now = 19.0
    assert f.flush() == []  # not quiet for a whole window after its window ended yet
    clock.now = 20.0
    (summary,) = f.flush()
    expected = "Unable connect to node with id 1: try 40 [the last of 40 like this held back in 20 s]"
    assert summary.getMessage() == expected
    assert summary.levelno == logging.ERROR and summary.name == "aiokafka"
    assert f.filter(summary)  # flushed records pass as they are
    assert f.flush() == []  # reported once
    again = record("aiokafka", logging.ERROR, msg, 1, "next outage")
    assert f.filter(again) and "like this" not in again.getMessage()


def test_while_records_keep_coming_the_count_rides_on_the_next_one_shown() -> None:
    clock = Clock()
    f = RepeatFilter(prefixes=("aiokafka",), window_s=10, clock=clock)
    shown = []
    for i in range(300):  # 30 s of a steady storm, flushed as often as the thread would
        clock.now = i * 0.1
        r = record("aiokafka", logging.ERROR, "Unable to update metadata from %s", i)
        if f.filter(r):
            shown.append(r.getMessage())
        assert f.flush() == []
    assert len(shown) == 3 and shown[1].endswith("[and 99 more like this in the last 10 s]")


def test_kinds_are_counted_apart() -> None:
    f = RepeatFilter(prefixes=("aiokafka",), window_s=30, clock=Clock())
    assert f.filter(record("aiokafka", logging.ERROR, "Unable to update metadata from %s", [1]))
    assert f.filter(record("aiokafka.consumer.fetcher", logging.ERROR, "Unable to update metadata from %s", [1]))
    assert f.filter(record("aiokafka", logging.WARNING, "Unable to update metadata from %s", [1]))
    assert f.filter(record("aiokafka", logging.ERROR, "Failed fetch messages from %s: %s", 1, "x"))
    assert not f.filter(record("aiokafka", logging.ERROR, "Unable to update metadata from %s", [1]))


def test_other_loggers_and_info_records_always_pass() -> None:
    f = RepeatFilter(prefixes=("aiokafka",), window_s=30, clock=Clock())
    for _ in range(3):
        assert f.filter(record("services.classifier", logging.ERROR, "dead-lettering %s", "x"))
        assert f.filter(record("aiokafka", logging.INFO, "joined group"))
        assert f.filter(record("aiokafkaesque", logging.ERROR, "not ours"))


def test_the_table_of_kinds_stays_bounded() -> None:
    f = RepeatFilter(prefixes=("aiokafka",), window_s=30, clock=Clock())
    for i in range(RepeatFilter.MAX_KINDS * 3):
        assert f.filter(record("aiokafka", logging.ERROR, f"message {i}"))
    assert len(f._kinds) <= RepeatFilter.MAX_KINDS


def test_configured_logging_masks_collapses_and_follows_stderr(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("WARNING", "svc")
    kafka = logging.getLogger("aiokafka")
    for _ in range(50):
        kafka.error("Unable connect to node with id %s: %s", 1, "refused")
    logging.getLogger("services.x").warning("login for jane@example.com with postgresql://u:hunter2@db/x")
    logging.getLogger("services.x").info("not shown at WARNING")
    err = capsys.readouterr().err.splitlines()
    assert len([line for line in err if "Unable connect" in line]) == 1
    assert " ERROR svc aiokafka: Unable connect to node with id 1: refused" in err[0]
    assert "hunter2" not in err[1] and "jane@example.com" not in err[1] and "[EMAIL]" in err[1]
    assert len(err) == 2


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX", "https://hooks.slack.com/…"),
        ("https://bot:hunter2@alerts.example.com:8443/hook?token=t0ps3cret", "https://alerts.example.com/…"),
        ("http://[::1]:8080/hook#frag", "http://[::1]/…"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example/…"),
        ("https://[::1/unclosed?token=t0ps3cret", "…"),
    ],
)
def test_mask_url_keeps_scheme_and_host_only(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_the_api_masks_with_the_same_helper() -> None:
    from services.api import routes_rules

    assert routes_rules.mask_url is mask_url and routes_rules.MASK == "…"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "POST https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX failed",
            "POST https://hooks.slack.com/services/*** failed",
        ),
        (
            "GET https://alerts.example.com/hook?id=3&token=t0ps3cret&x=1 and ?API_KEY=abc#f",
            "GET https://alerts.example.com/hook?id=3&token=***&x=1 and ?API_KEY=***#f",
        ),
        ("'https://h.example/p?sig=s3cr3t' ok", "'https://h.example/p?sig=***' ok"),
        (
            '<a href="https://h.example/m?key=k3y&amp;token=t0k&amp;SIG=s1g&amp;x=1">',
            '<a href="https://h.example/m?key=***&amp;token=***&amp;SIG=***&amp;x=1">',
        ),
        (
            "?a=1&amp;access_token=t&amp;api_key=k&amp;secret=s",
            "?a=1&amp;access_token=***&amp;api_key=***&amp;secret=***",
        ),
        ("?a=1&amp;signature=s3cr3t", "?a=1&amp;signature=***"),
    ],
)
def test_scrub_masks_secrets_in_url_paths_and_queries(text: str, shown: str) -> None:
    assert scrub(text) == shown


def test_a_url_password_without_a_user_is_masked() -> None:
    """``redis://:pw@host`` (Redis takes a password alone) kept its password."""
    assert scrub("redis://:s3cr3tpw@cache:6379/0") == "redis://:***@cache:6379/0"


def test_log_lines_keep_ipv4_addresses_and_still_hide_personal_data() -> None:
    """Operators need the broker's and the database's addresses; a dotted address is
    not a phone number. Phone numbers, cards and emails in the same line still go."""
    line = scrub(
        "kafka 192.168.100.200:19092 unreachable; postgresql://tw:s3cret@172.16.254.100:5432/tw; "
        "caller 555.123.4567 or +1.555.123.4567, card 4111 1111 1111 1111, jo@example.com"
    )
    assert line == (
        "kafka 192.168.100.200:19092 unreachable; postgresql://tw:***@172.16.254.100:5432/tw; "
        "caller [PHONE] or [PHONE], card [CARD], [EMAIL]"
    )


def test_configured_logging_shows_the_broker_address(root_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure("WARNING", "svc")
    logging.getLogger("services.x").warning(
        "broker %s:%d unreachable, caller %s", "192.168.100.200", 19092, "555.123.4567"
    )
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("services.x: broker 192.168.100.200:19092 unreachable, caller [PHONE]")


def test_a_logged_traceback_is_scrubbed_too(root_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    """The message line was masked and the traceback under it printed the same secrets
    as they were: every unexpected 500 and crash logs one (SQLAlchemy's ``[parameters: ...]``)."""
    configure("INFO", "svc")
    secrets = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX postgresql://u:hunter2@db/x"
    key = "tw_abcd1234_" + "K" * 32
    try:
        raise RuntimeError(f"{secrets} {key} jane@example.com")
    except RuntimeError as exc:
        logging.getLogger("services.x").exception("request failed: %s", exc, stack_info=True)
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err and "Stack (most recent call last):" in err
    for secret in ("XXXXsecretXXXX", "hunter2", key, "jane@example.com"):
        assert secret not in err
    assert "RuntimeError: https://hooks.slack.com/services/*** postgresql://u:***@db/x tw_abcd1234_*** [EMAIL]" in err


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+asyncpg://tw:p@ssw0rd@db/tw", "postgresql+asyncpg://tw:***@db/tw"),
        ("postgresql://tw:p@ss@w0rd@db:5432/tw?ssl=1#x", "postgresql://tw:***@db:5432/tw?ssl=1#x"),
        ("redis://:p@ss@cache/0", "redis://:***@cache/0"),
    ],
)
def test_a_raw_at_sign_in_a_url_password_is_masked_as_the_settings_mask_it(url: str, masked: str) -> None:
    """``tw:p@ssw0rd@db`` showed ``tw:***@ssw0rd@db``: the mask stopped at the first "@"."""
    assert scrub(url) == masked == PostgresSettings(url=SecretStr(url)).redacted_url()


def test_the_url_mask_stops_at_the_authority_and_keeps_a_raw_slash_of_the_password_masked() -> None:
    assert scrub("https://u:pw@host/p?to=a@b.example") == "https://u:***@host/p?to=[EMAIL]"
    assert scrub("postgresql://u:ab/c+d=@db/x") == "postgresql://u:***@db/x"


# The pattern that masked the whole text in one pass (quadratic on a run of "://a:").
_WHOLE_TEXT_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]+(?:@[^@\s/?#]*)*)(@)")


def test_url_passwords_are_masked_as_the_whole_text_pattern_masked_them() -> None:
    """The linear scan runs the pattern on each whitespace-free run up to its last "@":
    it masks what the one pass over the whole text masked, no more and no less."""
    rng = random.Random(20261130)
    pieces = ["://", ":", "/", "@", "?", "#", " ", "\n", "\u2028", "a", "b", "x:y@", "://u:p@h/"]
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        assert mask_url_passwords(text) == _WHOLE_TEXT_PASSWORD.sub(r"\1***\3", text), text


def test_url_password_masking_takes_linear_time() -> None:
    """``"://a:" * 80_000`` (400 KB) took 647 s (100 KB: 39 s); it now takes hundredths of a
    second. No wall time is asserted: a quadratic scan runs past the suite's per-test limit."""
    run = "://a:" * 80_000
    assert mask_url_passwords(run) == run
    assert mask_url_passwords(f"{run} ://u:pw@db {run}") == f"{run} ://u:***@db {run}"
