"""Alert explanations: the window's most negative messages, and the terms that set the
window's negative messages apart from the baseline period's messages.

Terms are ranked by the z-score of their log-odds ratio with a Dirichlet prior
(Monroe, Colaresi and Quinn 2008, "Fightin' Words"): the plain log-odds ratio ranks a
word seen twice in the window and never before above a topic that fills the window,
while the z-score weighs the evidence by how often the word was seen."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import ScoredEventRow

_WORD = re.compile(r"[a-z][a-z'-]{2,}")
STOPWORDS = frozenset(
    "the and for with that this from are was were has have had but not you your our its it's into over after "
    "about than more says said will would could should can may new how why what who when where which their "
    "they them there been being out off per amid year years week weeks day days time just also all any".split()
)

# The explanation's example messages: a list of {id, text, negative_prob, event_time}.
MESSAGES = "top_messages"
# Set, to the reason, once the examples' texts are removed (the aggregator's retention
# removes them with the scored events they were quoted from); each text is then
# TEXT_REMOVED, so every reader that shows ``text`` still shows a string.
TEXTS_REMOVED = "texts_removed"
TEXT_REMOVED = "[text removed by retention]"
# The most messages read from the window, and from the baseline period.
MAX_ROWS = 5_000


def without_texts(explanation: dict[str, Any], reason: str = "retention") -> dict[str, Any]:
    """``explanation`` with the examples' texts replaced and the removal marked; the
    ids, times, scores, terms and statistics are kept."""
    stripped = explanation | {TEXTS_REMOVED: reason}
    messages = explanation.get(MESSAGES)
    if isinstance(messages, list):
        stripped[MESSAGES] = [
            m | {"text": TEXT_REMOVED} if isinstance(m, dict) and "text" in m else m for m in messages
        ]
    return stripped


def terms(texts: Iterable[str]) -> Counter[str]:
    c: Counter[str] = Counter()
    for t in texts:
        c.update(w for w in set(_WORD.findall(t.lower())) if w not in STOPWORDS and "[" not in w)
    return c


def distinguishing_terms(window: Counter[str], base: Counter[str], k: int, prior: float = 0.5) -> list[dict[str, Any]]:
    """Terms over-represented in the window, at least 2 occurrences, by the z-score of
    their smoothed log-odds ratio (``prior`` pseudo-count per term)."""
    nw, nb = sum(window.values()), sum(base.values())
    a0 = prior * (len(set(window) | set(base)) + 1)  # the vocabulary and one unseen term
    scored = []
    for term, cw in window.items():
        if cw < 2:
            continue
        cb = base.get(term, 0)
        delta = math.log((cw + prior) / (nw + a0 - cw - prior)) - math.log((cb + prior) / (nb + a0 - cb - prior))
        z = delta / math.sqrt(1 / (cw + prior) + 1 / (cb + prior))
        scored.append((z, term, cw, cb))
    scored.sort(reverse=True)
    return [{"term": t, "window": cw, "baseline": cb, "z": round(z, 2)} for z, t, cw, cb in scored[:k] if z > 0]


async def explain(
    session: AsyncSession,
    *,
    stream: str,
    entity: str,
    version: str,
    window: tuple[datetime, datetime],
    base: tuple[datetime, datetime],
    top_messages: int,
    top_terms: int,
) -> dict[str, Any]:
    def where(start: datetime, end: datetime) -> tuple[Any, ...]:
        return (
            ScoredEventRow.stream == stream,
            ScoredEventRow.entities.contains([entity]),
            ScoredEventRow.model_version == version,
            ScoredEventRow.event_time >= start,
            ScoredEventRow.event_time < end,
        )

    cols = (
        ScoredEventRow.id,
        ScoredEventRow.text,
        ScoredEventRow.negative_prob,
        ScoredEventRow.event_time,
        ScoredEventRow.sentiment,
    )
    # the window's most negative messages: the examples, and the window's side of the terms
    win_rows = (
        await session.execute(
            select(*cols).where(*where(*window)).order_by(ScoredEventRow.negative_prob.desc()).limit(MAX_ROWS)
        )
    ).all()
    # the baseline's side: a sample that represents the whole period, in the order of a
    # hash of the ids (the same sample on every read), never its most negative messages
    # (those made the topics common in the baseline look new once it held more than MAX_ROWS)
    base_texts = (
        await session.scalars(
            select(ScoredEventRow.text)
            .where(*where(*base))
            .order_by(func.md5(ScoredEventRow.id), ScoredEventRow.id)
            .limit(MAX_ROWS)
        )
    ).all()
    return {
        MESSAGES: [
            {
                "id": r.id,
                "text": r.text,
                "negative_prob": round(r.negative_prob, 4),
                "event_time": r.event_time.isoformat(),
            }
            for r in win_rows[:top_messages]
        ],
        "top_terms": distinguishing_terms(
            terms(r.text for r in win_rows if r.sentiment == "negative"), terms(base_texts), top_terms
        ),
    }
