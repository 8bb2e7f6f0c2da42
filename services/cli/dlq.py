"""``tonewatch dlq``: inspect and replay dead letters."""

from __future__ import annotations

import asyncio
import json

import typer

from shared.config import ServiceSettings
from shared.kafka import dlq_ops
from shared.topics import Topics

app = typer.Typer(help="Dead-letter queues.", no_args_is_help=True)


@app.command("list")
def list_(
    topic: str = typer.Argument(..., help="Input topic, e.g. news.raw (reads news.raw.dlq)."),
    limit: int = typer.Option(100, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show dead letters with their reasons."""
    entries = asyncio.run(dlq_ops.list_entries(ServiceSettings().kafka, topic, limit))
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "partition": e.partition,
                        "offset": e.offset,
                        "meta": e.meta.model_dump(mode="json") if e.meta else None,
                        "value_preview": (e.value or b"")[:200].decode("utf-8", "replace"),
                    }
                    for e in entries
                ]
            )
        )
        return
    if not entries:
        typer.echo(f"no dead letters for {topic}")
    for e in entries:
        m = e.meta
        where = f"{m.original_topic}[{m.partition}]@{m.offset}" if m else "?"
        reason = f"{m.error_class}: {m.reason}" if m else "(no metadata)"
        typer.echo(f"{Topics.dlq(topic)}[{e.partition}]@{e.offset}  {where}  {m.service if m else '?'}  {reason}")


@app.command("replay")
def replay(
    topic: str = typer.Argument(..., help="Input topic whose DLQ to re-inject."),
    limit: int = typer.Option(1_000_000, "--limit"),
) -> None:
    """Re-inject dead letters into their original topic (after fixing the cause). Exits 1
    when the topic refused some for good (too large, say): they are listed, stay in the
    DLQ, and a later replay does not retry them. Also exits 1 when some were replayed but
    their commit failed because the replay group rebalanced them away (another replay of
    the same DLQ running at once, and this one too slow to let go): they are listed, and
    a replay that gets their partition sends them again."""
    report = asyncio.run(dlq_ops.replay_report(ServiceSettings().kafka, topic, limit))
    typer.echo(f"re-injected {report.replayed} records into {topic}")
    if report.failed:
        for f in report.failed:
            origin = f" (from {f.original})" if f.original else ""
            typer.echo(f"not replayed: {f.place}{origin}: {f.error_class}: {f.reason}", err=True)
        typer.echo(
            f"refused by {topic}: {len(report.failed)}, left in {Topics.dlq(topic)} "
            "(a later replay skips them; see README, Replay the DLQ)",
            err=True,
        )
    if report.uncommitted:
        for u in report.uncommitted:
            typer.echo(f"replayed, not committed: {u.place} ({u.count} offsets): {u.reason}", err=True)
        typer.echo(
            f"the replay group rebalanced before those commits: {sum(u.count for u in report.uncommitted)} "
            f"offsets of {Topics.dlq(topic)} may be replayed again by the replay that got their partition "
            "(one replay of a DLQ at a time avoids it)",
            err=True,
        )
    if report.failed or report.uncommitted:
        raise typer.Exit(1)
