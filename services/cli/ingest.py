"""``tonewatch ingest``: replay files and the demo data into the raw topics."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from services.ingest.replay import Pacing, ReplayReport, check_run, replay, run_stamp
from services.ingest.sources import (
    DEMO_NEWS_BACKFILL_S,
    FORMATS,
    Line,
    UnreadableFile,
    demo_chats,
    guardian_news,
    read_file,
)
from shared.config import ServiceSettings
from shared.events import Stream
from shared.kafka.clients import ensure_topics, make_producer

app = typer.Typer(help="Replay events into Kafka.", no_args_is_help=True)

STDIN = Path("/dev/stdin")
"""What ``ingest file -`` reads: standard input by the name ``/dev/stdin`` already had, so
that ``-`` is read the same way (a pipe as it arrives, JSONL unless ``--format csv``) and
the ids of lines without one derive from the same name, ``stdin``: a line sent once with
``-`` and again with ``/dev/stdin`` is counted once."""

# The demo replay's pacing options, shared by ``tonewatch ingest demo`` and ``tonewatch demo``.
NEWS_SPEEDUP = typer.Option(8640.0, help="Guardian headlines: one day of news per 10 s by default.")
NEWS_BACKFILL = typer.Option(
    DEMO_NEWS_BACKFILL_S, help="Seconds of the news replay already in the past at the start (sent at once)."
)


async def _replay(
    lines: Iterable[Line],
    stream: Stream,
    pacing: Pacing,
    label: str,
    total: int | None = None,
    run: int | None = None,
) -> ReplayReport:
    """Replay ``lines``; ``label`` names their source: the progress bar's label, and what
    the ids of lines without one derive from (a file's name)."""
    settings = ServiceSettings()
    await ensure_topics(settings.kafka, [settings.topics.raw(stream)])
    current = [make_producer(settings.kafka, client_id="ingest")]

    async def renew(old: AIOKafkaProducer) -> AIOKafkaProducer:
        """A new producer after the topic refused a record (see ``replay``'s ``renew``)."""
        await old.stop()
        current[0] = make_producer(settings.kafka, client_id="ingest")
        await current[0].start()
        return current[0]

    try:
        await current[0].start()
        with tqdm(total=total, desc=label, unit="ev", disable=None) as bar:
            return await replay(
                current[0],
                settings.topics,
                lines,
                stream,
                pacing,
                origin=label,
                progress=bar.update,
                run=run,
                renew=renew,
            )
    finally:
        await current[0].stop()


def _finish(report: ReplayReport, as_json: bool) -> None:
    if as_json:
        rejected = [{"line": n, "reason": r} for n, r in report.rejected]
        total = report.rejected_total
        skipped = [{"line": n, "reason": r} for n, r in report.skipped]
        out = {
            "produced": report.produced,
            "rejected": rejected,
            "rejected_total": total,
            "skipped": skipped,
            "skipped_total": report.skipped_total,
            "run": report.run,
        }
        typer.echo(json.dumps(out))
    else:
        typer.echo(f"produced {report.produced} events")
        if report.run is not None:
            typer.echo(f"run {report.run} (ids id@{report.run}; to resume this replay: --run {report.run})")
        for n, reason in report.skipped[:50]:
            typer.echo(f"line {n}: skipped: {reason}", err=True)
        if report.skipped_total > 50:
            typer.echo(f"... and {report.skipped_total - 50} more skipped lines", err=True)
        for n, reason in report.rejected[:50]:
            typer.echo(f"line {n}: rejected: {reason}", err=True)
        if report.rejected_total > 50:
            typer.echo(f"... and {report.rejected_total - 50} more rejected lines", err=True)
    if report.rejected_total:
        raise typer.Exit(1)


def _file_or_dash(value: str) -> str:
    """``path``'s checks, as Click's ``exists=True, dir_okay=False`` made them (same
    words), except for ``-``. Not typer's ``allow_dash``: it compares the path, converted to
    a ``Path``, with ``"-"``, which no ``Path`` equals; and a ``Path`` could not tell a file
    named ``-`` (``./-``) from it."""
    if value == "-":
        return value
    try:
        st = os.stat(value)
    except OSError:
        raise typer.BadParameter(f"file {value!r} does not exist.") from None
    if stat.S_ISDIR(st.st_mode):
        raise typer.BadParameter(f"file {value!r} is a directory.")
    if not os.access(value, os.R_OK):
        raise typer.BadParameter(f"file {value!r} is not readable.")
    return value


def _check_stdin() -> None:
    """Before ``-`` is read. Standard input closed (``<&-``): opening ``/dev/stdin`` ended
    in a FileNotFoundError traceback (exit 1); it is refused in one line (exit 2).
    A terminal: the read waited without a word; a hint on stderr says how to end it.
    File descriptor 0 is asked, not ``sys.stdin``: it is what ``/dev/stdin`` opens, and
    ``sys.stdin`` may be replaced (or ``None`` when it was closed at start)."""
    try:
        os.fstat(0)
    except OSError as exc:
        typer.echo("error: stdin: cannot read standard input (closed)", err=True)
        raise typer.Exit(2) from exc
    if os.isatty(0):
        typer.echo("reading events from standard input (a terminal): end with Ctrl-D", err=True)


@app.command("file")
def file_(
    path: str = typer.Argument(
        ...,
        callback=_file_or_dash,
        help="JSONL or CSV file; '-': standard input, read as /dev/stdin is (a file named '-': ./-).",
    ),
    stream: str = typer.Option(..., "--stream", help="news or chat"),
    rate: float | None = typer.Option(None, "--rate", help="Events per second (event times kept as given)."),
    speedup: float | None = typer.Option(None, "--speedup", help="Replay original time gaps X times faster."),
    backfill: float = typer.Option(
        0.0,
        "--backfill",
        help="With --speedup: start the replayed timeline this many seconds in the past; "
        "what lands before now is sent at once.",
    ),
    run: int | None = typer.Option(
        None,
        "--run",
        help="With --speedup: the stamp of an earlier run (its start in Unix ms, printed when it started), "
        "to resume it without counting twice what it sent.",
    ),
    complete: bool = typer.Option(
        False,
        "--complete",
        help="The file is finished: send its last line even without a line ending (by default it is held "
        "back, as the end of a file still being written).",
    ),
    fmt: str = typer.Option(
        "auto",
        "--format",
        help="auto, jsonl or csv. auto: CSV for a name ending in .csv, JSONL otherwise; a pipe "
        "(<(cat f.csv) is /dev/fd/63, - or /dev/stdin) has no such name and is read as JSONL unless --format csv.",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Replay a file. Invalid lines are reported (exit 1); a file that cannot be read at
    all (UTF-16, compressed, a CSV header without a ``text`` column) is refused (exit 2).
    A line without an id gets one derived from the file's name, its line number and its
    content: running the same file again (after a crash, say) sends the same ids, and the
    pipeline counts them once. ``-`` reads standard input, as ``/dev/stdin`` does (the
    ids of its lines without one derive from the name ``stdin``).

    With --speedup every id gets this run's stamp (``id@<start in Unix ms>``), so a
    replay of the same file is counted again; the stamp is printed at the start and
    ``--run STAMP`` reuses it, to resume a replay cut short."""
    if stream not in ("news", "chat"):
        typer.echo(f"error: --stream must be news or chat, not {stream!r}", err=True)
        raise typer.Exit(2)
    try:
        pacing = Pacing(rate, speedup, backfill)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if fmt not in FORMATS:
        typer.echo(f"error: --format must be {', '.join(FORMATS)}, not {fmt!r}", err=True)
        raise typer.Exit(2)
    if run is not None and speedup is None:
        typer.echo("error: --run needs --speedup (without it ids carry no run stamp)", err=True)
        raise typer.Exit(2)
    if run is not None:
        try:
            check_run(run, datetime.now(UTC))
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    if path == "-":
        _check_stdin()
    source = STDIN if path == "-" else Path(path)
    try:
        # streamed, except with --speedup (ordered by event time first)
        lines = read_file(source, complete=complete, fmt=fmt)
    except UnreadableFile as exc:
        typer.echo(f"error: {source.name}: {exc}", err=True)
        raise typer.Exit(2) from exc
    if speedup is not None:
        run = run_stamp(datetime.now(UTC)) if run is None else run
        typer.echo(f"run {run}: ids are stamped id@{run}; to resume this replay if cut short: --run {run}", err=True)
    _finish(asyncio.run(_replay(lines, stream, pacing, source.name, run=run)), as_json)  # type: ignore[arg-type]


def demo_lines(limit: int | None) -> tuple[list[Line], list[Line]]:
    news = guardian_news()[:limit] if limit else guardian_news()
    chats: list[dict[str, Any]] = demo_chats()
    return [Line(i + 1, d) for i, d in enumerate(news)], [Line(i + 1, d) for i, d in enumerate(chats)]


@app.command("demo")
def demo(
    news_speedup: float = NEWS_SPEEDUP,
    news_backfill: float = NEWS_BACKFILL,
    chat_rate: float = typer.Option(2.0, help="Demo chat messages per second."),
    limit: int | None = typer.Option(None, min=1, help="Only the first N headlines."),
) -> None:
    """Replay the demo data: Guardian business headlines and authored bank chats.

    The ids carry this run's stamp (``guardian-7@<start in Unix ms>``): every run counts."""
    news, chats = demo_lines(limit)
    try:  # both before anything starts: a bad --chat-rate raised inside gather, the news replay left running
        news_pacing = Pacing(speedup=news_speedup, backfill_s=news_backfill)
        chat_pacing = Pacing(rate=chat_rate)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc

    run = run_stamp(datetime.now(UTC))  # the demo's ids are fixed; their times are this run's

    async def both() -> tuple[ReplayReport, ReplayReport]:
        return await asyncio.gather(
            _replay(news, "news", news_pacing, "news", len(news), run),
            _replay(chats, "chat", chat_pacing, "chat", len(chats), run),
        )

    a, b = asyncio.run(both())
    typer.echo(f"demo replay done: {a.produced} headlines, {b.produced} chat messages")
