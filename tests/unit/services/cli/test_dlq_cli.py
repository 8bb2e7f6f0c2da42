"""``tonewatch dlq``: topic names under the environment's prefix, a redacted listing, and
the replay's selection (the replay itself: tests/unit/shared/test_dlq_ops.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from services.cli.dlq import DLQ_SOURCES, app, resolve_topic
from shared.events import DeadLetter
from shared.kafka import dlq_ops
from shared.topics import Topics

RAW = (
    b'{"id": "jane.doe@example.com", "text": "call me on +1 415 555 2671 or jane.doe@example.com, '
    b'card 4111 1111 1111 1111", "event_time": "yesterday"}'
)


def test_a_logical_name_takes_the_prefix_and_a_prefixed_one_is_taken_as_it_is() -> None:
    topics = Topics(prefix="staging.")
    assert resolve_topic("news.raw", topics) == "staging.news.raw"
    assert resolve_topic("staging.chat.raw", topics) == "staging.chat.raw"
    assert resolve_topic("text.scored", Topics()) == "text.scored"


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("prod.news.raw", "staging."),  # another environment's
        ("staging.news.raw", ""),  # another environment's, from the unprefixed one
        ("news.raw.dlq", ""),  # the DLQ, not its topic
        ("alerts", ""),  # nothing dead-letters it
    ],
)
def test_a_topic_of_another_environment_is_refused(name: str, prefix: str) -> None:
    with pytest.raises(typer.BadParameter, match="no topic of this environment"):
        resolve_topic(name, Topics(prefix=prefix))


def test_no_name_is_both_logical_and_prefixed() -> None:
    """A name is either a logical one or one prefixed, never both (which would be
    ambiguous): no logical name ends with another."""
    assert not [(a, b) for a in DLQ_SOURCES for b in DLQ_SOURCES if a != b and a.endswith(b)]


def _entry(value: bytes, reason: str = "event_time: bad") -> dlq_ops.DlqEntry:
    meta = DeadLetter(
        original_topic="p1.news.raw",
        partition=0,
        offset=7,
        error_class="ValidationError",
        reason=reason,
        service="classifier",
        time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return dlq_ops.DlqEntry(0, 3, b"jane.doe@example.com", value, meta, [], 1_000, 2)


def test_the_listing_reads_this_environments_dlq_and_shows_no_personal_data(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    async def list_entries(settings: Any, topic: str, limit: int) -> list[dlq_ops.DlqEntry]:
        asked.append(topic)
        return [_entry(RAW, reason="cannot decode: bad id 'jane.doe@example.com'"), _entry(b"x" * 180 + RAW)]

    monkeypatch.setattr(dlq_ops, "list_entries", list_entries)
    monkeypatch.setenv("TW_TOPICS__PREFIX", "p1.")
    as_json = CliRunner().invoke(app, ["list", "news.raw", "--json"])
    text = CliRunner().invoke(app, ["list", "news.raw"])
    assert asked == ["p1.news.raw", "p1.news.raw"]
    assert as_json.exit_code == 0 and text.exit_code == 0, as_json.output
    for out in (as_json.stdout, text.stdout):
        for raw in ("jane.doe", "example.com", "415", "2671", "4111", "1111"):
            assert raw not in out
    listed = json.loads(as_json.stdout)
    assert listed[0]["value_preview"].startswith('{"id": "[EMAIL]", "text": "call me on [PHONE] or [EMAIL]')
    assert len(listed[1]["value_preview"]) == 200  # an address cut at the preview's end is not left in part
    assert listed[0]["replays"] == 2
    assert "p1.news.raw.dlq[0]@3  p1.news.raw[0]@7" in text.stdout


def test_replay_passes_its_selection_and_names_what_it_left(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dlq_ops.Selection]] = []
    report = dlq_ops.ReplayReport(replayed=2)
    report.left.update({"ValidationError": 120})

    async def replay_report(settings: Any, topic: str, limit: int, select: dlq_ops.Selection) -> dlq_ops.ReplayReport:
        calls.append((topic, select))
        return report

    monkeypatch.setattr(dlq_ops, "replay_report", replay_report)
    monkeypatch.setenv("TW_TOPICS__PREFIX", "p1.")
    plain = CliRunner().invoke(app, ["replay", "news.raw"])
    assert plain.exit_code == 0, plain.output
    assert "left in p1.news.raw.dlq: 120 ValidationError" in plain.stderr
    named = CliRunner().invoke(
        app, ["replay", "p1.news.raw", "--error-class", "ValidationError", "--error-class", "E", "--force"]
    )
    assert named.exit_code == 0, named.output
    assert calls == [
        ("p1.news.raw", dlq_ops.Selection()),
        ("p1.news.raw", dlq_ops.Selection(frozenset({"ValidationError", "E"}), dlq_ops.MAX_REPLAYS, force=True)),
    ]
    refused = CliRunner().invoke(app, ["replay", "p2.news.raw"])
    assert refused.exit_code == 2 and calls[2:] == []


def test_replay_lists_records_over_the_replay_limit_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    over = dlq_ops.ReplayFailure("news.raw.dlq", 0, 4, "news.raw[0]@9", "E", "replayed 3 times already (limit 3)")

    async def replay_report(*args: Any) -> dlq_ops.ReplayReport:
        return dlq_ops.ReplayReport(over_limit=[over])

    monkeypatch.setattr(dlq_ops, "replay_report", replay_report)
    res = CliRunner().invoke(app, ["replay", "news.raw"])
    assert res.exit_code == 1
    assert "not replayed: news.raw.dlq[0]@4 (from news.raw[0]@9): E: replayed 3 times already" in res.stderr
    assert "--force" in res.stderr


@pytest.mark.parametrize(
    ("args", "refused_cmd", "over_cmd"),
    [
        ([], "tonewatch dlq replay news.raw --at 0@3", "tonewatch dlq replay news.raw --force --at 0@4"),
        (
            ["--max-replays", "5"],
            "tonewatch dlq replay news.raw --max-replays 5 --at 0@3",
            "tonewatch dlq replay news.raw --force --max-replays 5 --at 0@4",
        ),
        (
            ["--force", "--max-replays", "5"],
            "tonewatch dlq replay news.raw --force --max-replays 5 --at 0@3",
            "tonewatch dlq replay news.raw --force --max-replays 5 --at 0@4",
        ),
    ],
)
def test_the_suggested_at_command_keeps_the_replays_limit(
    monkeypatch: pytest.MonkeyPatch, args: list[str], refused_cmd: str, over_cmd: str
) -> None:
    """After ``dlq replay X --max-replays 5``, the printed --at command replays under that
    limit (under the default 3 a refused record replayed 3 or 4 times would be listed
    over the limit again), and keeps --force."""
    refused = dlq_ops.ReplayFailure("news.raw.dlq", 0, 3, "news.raw[0]@8", "MessageSizeTooLargeError", "too large")
    over = dlq_ops.ReplayFailure("news.raw.dlq", 0, 4, "news.raw[0]@9", "E", "replayed 5 times already (limit 5)")

    async def replay_report(*a: Any) -> dlq_ops.ReplayReport:
        return dlq_ops.ReplayReport(failed=[refused], over_limit=[over])

    monkeypatch.setattr(dlq_ops, "replay_report", replay_report)
    monkeypatch.delenv("TW_TOPICS__PREFIX", raising=False)
    res = CliRunner().invoke(app, ["replay", "news.raw", *args])
    assert res.exit_code == 1
    assert f"after raising the topic's limit, {refused_cmd} sends them" in res.stderr
    assert f"a later replay skips them; {over_cmd} sends them" in res.stderr
