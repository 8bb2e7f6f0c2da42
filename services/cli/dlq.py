"""``tonewatch dlq``: inspect and replay dead letters."""

from __future__ import annotations

import asyncio
import json
import re

import typer

from shared.config import ServiceSettings
from shared.kafka import dlq_ops
from shared.redact import redact, redact_capped
from shared.topics import Topics

app = typer.Typer(help="Dead-letter queues.", no_args_is_help=True)

PREVIEW_CHARS = 200
LOGICAL = Topics()
DLQ_SOURCES = (LOGICAL.news_raw, LOGICAL.chat_raw, LOGICAL.text_scored)
"""The topics whose consumers dead-letter, by their logical (unprefixed) names."""


def resolve_topic(name: str, topics: Topics) -> str:
    """The topic of this environment (``TW_TOPICS__PREFIX``) that ``name`` means: a logical
    name is prefixed, as ``ingest`` names its topics; an already prefixed one is taken as
    it is. Anything else is refused (exit 2): its DLQ would be another environment's, and
    a replay would write into that environment. (No name is both: no logical name ends
    with another, so none is another one prefixed.)"""
    prefixed = dict(zip(DLQ_SOURCES, (topics.news_raw, topics.chat_raw, topics.text_scored), strict=True))
    if name in prefixed:
        return prefixed[name]
    if name in prefixed.values():
        return name
    raise typer.BadParameter(
        f"{name!r} is no topic of this environment (TW_TOPICS__PREFIX={topics.prefix!r}): "
        f"expected one of {', '.join(DLQ_SOURCES)}",
        param_hint="TOPIC",
    )


def _preview(value: bytes | None) -> str:
    """The start of a dead letter's original bytes, redacted: dead letters keep the raw
    record (emails, phone and card numbers included) for replay, the listing does not."""
    return redact_capped((value or b"").decode("utf-8", "replace"), PREVIEW_CHARS)[0]


def _as_json(e: dlq_ops.DlqEntry) -> dict[str, object]:
    meta = e.meta.model_dump(mode="json") if e.meta else None
    if meta is not None:
        meta["reason"] = redact(meta["reason"])
    return {
        "partition": e.partition,
        "offset": e.offset,
        "meta": meta,
        "replays": e.replays,
        "value_preview": _preview(e.value),
    }


@app.command("list")
def list_(
    topic: str = typer.Argument(..., help="Input topic, e.g. news.raw (reads news.raw.dlq under TW_TOPICS__PREFIX)."),
    limit: int = typer.Option(100, "--limit", min=1, help="Show at most this many dead letters."),
    as_json: bool = typer.Option(False, "--json", help="With a redacted preview of each original record."),
) -> None:
    """Show dead letters with their reasons."""
    settings = ServiceSettings()
    topic = resolve_topic(topic, settings.topics)
    entries = asyncio.run(dlq_ops.list_entries(settings.kafka, topic, limit))
    if as_json:
        typer.echo(json.dumps([_as_json(e) for e in entries]))
        return
    if not entries:
        typer.echo(f"no dead letters for {topic}")
    for e in entries:
        m = e.meta
        where = f"{m.original_topic}[{m.partition}]@{m.offset}" if m else "?"
        reason = f"{m.error_class}: {redact(m.reason)}" if m else "(no metadata)"
        typer.echo(f"{Topics.dlq(topic)}[{e.partition}]@{e.offset}  {where}  {m.service if m else '?'}  {reason}")


@app.command("replay")
def replay(
    topic: str = typer.Argument(..., help="Input topic whose DLQ to re-inject (under TW_TOPICS__PREFIX)."),
    limit: int = typer.Option(
        1_000_000,
        "--limit",
        min=1,
        help="Replay at most this many dead letters of the selected classes (sent, refused or over "
        "--max-replays); those of other classes passed over are not counted.",
    ),
    error_class: list[str] = typer.Option(
        [],
        "--error-class",
        help="Replay only this class (tw.error_class; repeatable), from its own position. Without it, every "
        f"class but {', '.join(sorted(dlq_ops.PERMANENT_ERROR_CLASSES))}, which fail again however often sent.",
    ),
    max_replays: int = typer.Option(
        dlq_ops.MAX_REPLAYS, "--max-replays", min=1, help="Skip records replayed this many times already."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Also replay records over --max-replays (those not yet passed by this replay's group; "
        "--at sends one a replay listed).",
    ),
    at: list[str] = typer.Option(
        [],
        "--at",
        help="Replay only the dead letter at PARTITION@OFFSET of the DLQ (repeatable; whatever its class, "
        "and whether or not a replay passed it): one listed as 'not replayed: news.raw.dlq[0]@3' is --at 0@3.",
    ),
) -> None:
    """Re-inject dead letters into their original topic (after fixing the cause). Exits 1
    when the topic refused some for good (too large, say), or some were replayed
    --max-replays times already: they are listed, stay in the DLQ, and a later replay
    does not retry them. Also exits 1 when some were replayed but their commit failed
    because the replay group rebalanced them away (another replay of the same DLQ
    running at once, and this one too slow to let go): they are listed, and a replay
    that gets their partition sends them again. ``--at`` sends the dead letters named,
    commits nothing (each run sends them again), and exits 1 when one is not found."""
    settings = ServiceSettings()
    topic = resolve_topic(topic, settings.topics)
    places = [_place(p) for p in at]
    if places and error_class:
        raise typer.BadParameter("--at names the dead letters to replay: no --error-class with it", param_hint="--at")
    select = dlq_ops.Selection(frozenset(error_class), max_replays, force)
    if places:
        report = asyncio.run(dlq_ops.replay_places(settings.kafka, topic, places, select))
    else:
        report = asyncio.run(dlq_ops.replay_report(settings.kafka, topic, limit, select))
    typer.echo(f"re-injected {report.replayed} records into {topic}")
    _report_left(report, topic)
    _report_not_replayed(report, topic, select)
    if report.uncommitted:
        for u in report.uncommitted:
            typer.echo(f"replayed, not committed: {u.place} ({u.count} offsets): {u.reason}", err=True)
        typer.echo(
            f"the replay group rebalanced before those commits: {sum(u.count for u in report.uncommitted)} "
            f"offsets of {Topics.dlq(topic)} may be replayed again by the replay that got their partition "
            "(one replay of a DLQ at a time avoids it)",
            err=True,
        )
    if report.failed or report.over_limit or report.uncommitted:
        raise typer.Exit(1)


_PLACE = re.compile(r"(0|[1-9][0-9]{0,9})@(0|[1-9][0-9]{0,18})")


def _place(value: str) -> tuple[int, int]:
    match = _PLACE.fullmatch(value.strip())
    if match is None:
        raise typer.BadParameter(f"{value!r}: expected PARTITION@OFFSET, e.g. 0@3", param_hint="--at")
    return int(match.group(1)), int(match.group(2))


AT_SHOWN = 20
"""Places a suggested ``--at`` command names at most (all are listed above it)."""


def _at_command(
    topic: str, failures: list[dlq_ops.ReplayFailure], select: dlq_ops.Selection, *, force: bool = False
) -> str:
    """The command that sends the dead letters of ``failures`` (those of its first
    :data:`AT_SHOWN`, and says so when there are more) under the replay's own limit: its
    ``--force`` (or ``force``) and a ``--max-replays`` other than the default (without them
    the command would list a record over the default limit again). ``--error-class`` and
    ``--limit`` do not apply to ``--at``."""
    options = " --force" if force or select.force else ""
    if select.max_replays != dlq_ops.MAX_REPLAYS:
        options += f" --max-replays {select.max_replays}"
    ats = " ".join(f"--at {f.partition}@{f.offset}" for f in failures[:AT_SHOWN])
    more = f" (and an --at for each of the other {len(failures) - AT_SHOWN} listed)" if len(failures) > AT_SHOWN else ""
    return f"tonewatch dlq replay {topic}{options} {ats}{more}"


def _report_left(report: dlq_ops.ReplayReport, topic: str) -> None:
    for cls, n in sorted(report.left.items()):
        typer.echo(
            f"left in {Topics.dlq(topic)}: {n} {cls} (fails again however often replayed; "
            f"--error-class {cls} replays them, after a fix that accepts them)",
            err=True,
        )


def _report_not_replayed(report: dlq_ops.ReplayReport, topic: str, select: dlq_ops.Selection) -> None:
    for f in report.failed + report.over_limit:
        origin = f" (from {f.original})" if f.original else ""
        typer.echo(f"not replayed: {f.place}{origin}: {f.error_class}: {f.reason}", err=True)
    missing = [f for f in report.failed if f.error_class == dlq_ops.NOT_FOUND]
    refused = [f for f in report.failed if f.error_class != dlq_ops.NOT_FOUND]
    if missing:
        typer.echo(f"not in {Topics.dlq(topic)}: {len(missing)} (see tonewatch dlq list {topic})", err=True)
    if refused:
        typer.echo(
            f"refused by {topic}: {len(refused)}, left in {Topics.dlq(topic)} (a later replay skips them; "
            f"after raising the topic's limit, {_at_command(topic, refused, select)} sends them; "
            "see README, Replay the DLQ)",
            err=True,
        )
    if report.over_limit:
        typer.echo(
            f"replayed --max-replays times already: {len(report.over_limit)}, left in {Topics.dlq(topic)} "
            f"(a later replay skips them; {_at_command(topic, report.over_limit, select, force=True)} sends them; "
            "see README, Replay the DLQ)",
            err=True,
        )
