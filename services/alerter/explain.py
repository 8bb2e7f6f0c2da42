"""Alert explanations: the window's most negative messages, and the terms that set the
window's negative messages apart from the baseline period's messages.

Terms are ranked by the z-score of their log-odds ratio with a Dirichlet prior
(Monroe, Colaresi and Quinn 2008, "Fightin' Words"): the plain log-odds ratio ranks a
word seen twice in the window and never before above a topic that fills the window,
while the z-score weighs the evidence by how often the word was seen."""

from __future__ import annotations

import functools
import math
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import Entity, ScoredEventRow
from shared.redact import PLACEHOLDER

# Apostrophes and hyphens as typed and as word processors write them, read as "'" and "-"
# (so "ACME’s" and "ACME's" are one term).
_JOINERS = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u2010": "-", "\u2011": "-"})
# The shortest term: English words of one or two letters are all function words.
_MIN_TERM = 3
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


@functools.cache
def _word() -> re.Pattern[str]:
    """A word in any script: letters and the combining marks written with them (the vowel
    signs of Devanagari or Thai, a decomposed accent), joined by an apostrophe or hyphen
    ("x-ray", "acme's"); never digits ("COVID-19" is "covid"). ``[^\\W\\d_]`` alone is
    letters only: "Übernahme" was "bernahme" with ``[a-z]``, and Hindi words would fall
    apart at their vowel signs. Text without spaces (Chinese, Japanese) gives its runs
    between punctuation, unsegmented. Built on first use: finding the marks reads every
    code point (about 0.2 s)."""
    marks, start = [], None
    for code in range(sys.maxunicode + 2):
        is_mark = code <= sys.maxunicode and unicodedata.category(chr(code)).startswith("M")
        if is_mark and start is None:
            start = code
        elif not is_mark and start is not None:
            marks.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
            start = None
    # letters, then marks and letters: the common run of letters matched by one class
    part = rf"[^\W\d_]+(?:[{''.join(marks)}]+[^\W\d_]*)*"
    return re.compile(rf"{part}(?:['-]{part})*")


def words(text: str) -> list[str]:
    """The candidate terms of one text: its words (see :func:`_word`), case-folded, of
    at least ``_MIN_TERM`` characters and no stopword. Redaction's placeholders are
    no words ("call [PHONE]" is not about phones)."""
    text = PLACEHOLDER.sub(" ", text)
    if not text.isascii():  # ASCII is NFC already, and holds no typographic joiner
        text = unicodedata.normalize("NFC", text).translate(_JOINERS)
    return [w for w in _word().findall(text.casefold()) if len(w) >= _MIN_TERM and w not in STOPWORDS]


def terms(texts: Iterable[str]) -> Counter[str]:
    """In how many of the texts each term occurs."""
    c: Counter[str] = Counter()
    for t in texts:
        c.update(set(words(t)))
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
        scored.append((round(z, 2), term, cw, cb))
    # the strongest first; ties (as shown: z to two places) by mentions in the window,
    # then alphabetically (a plain reverse sort listed them from z to a)
    scored.sort(key=lambda s: (-s[0], -s[2], s[1]))
    return [{"term": t, "window": cw, "baseline": cb, "z": z} for z, t, cw, cb in scored[:k] if z > 0]


_TEXT_WORD = re.compile(r"\w+")
R = TypeVar("R")
# How much more negative (negative_prob) a copy of a text must be than another text to
# go before it among the examples.
COPY_LEAD = 0.2


def same_text(text: str) -> str:
    """What copies of one message share: syndicated headlines differ in case, spacing,
    punctuation and compatibility forms (full-width letters), not in their words. A text
    without words (emoji, punctuation) is compared whole: all of them read "" otherwise,
    and distinct chats ("😡😡😡", "💀") counted as copies of each other."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_TEXT_WORD.findall(folded)) or " ".join(folded.split())


def examples(rows: Sequence[R], n: int, text: Callable[[R], str], score: Callable[[R], float]) -> list[R]:
    """``n`` of ``rows`` (the most negative first) as the alert's examples, one per text
    (see :func:`same_text`) before any copy: the copies of a syndicated headline took
    every slot, and hid the window's other stories.

    A copy still goes before a text less negative than it by more than ``COPY_LEAD``
    (a mild negative, "shares slip in quiet trading", is no example of the surge), and
    copies fill the slots the window's texts leave; otherwise the order is the rows'."""
    seen: set[str] = set()
    ranked = []
    for i, row in enumerate(rows):
        key = same_text(text(row))
        copy = key in seen
        seen.add(key)
        rank = round(score(row) - COPY_LEAD if copy else score(row), 9)  # 0.9 - 0.2 is 0.7, not 0.7000000000000001
        ranked.append((-rank, copy, i, row))
    ranked.sort(key=lambda r: r[:3])
    return [row for *_, row in ranked[:n]]


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
    # the entity's own names are in its every message, before and in the window: never the story
    window_texts = [r.text for r in win_rows if r.sentiment == "negative"]
    window_terms, base_terms = terms(window_texts), terms(base_texts)
    drop_names(window_terms, len(window_texts), base_terms, len(base_texts), await _own_terms(session, entity))
    return {
        MESSAGES: [
            {
                "id": r.id,
                "text": r.text,
                "negative_prob": round(r.negative_prob, 4),
                "event_time": r.event_time.isoformat(),
            }
            for r in examples(win_rows, top_messages, lambda r: str(r.text), lambda r: float(r.negative_prob))
        ],
        "top_terms": distinguishing_terms(window_terms, base_terms, top_terms),
    }


def drop_names(window: Counter[str], n_window: int, base: Counter[str], n_base: int, names: set[str]) -> None:
    """Take out of both counts the words of the entity's names (``names``) that most messages
    of the period use (of the window's, with no period): they are there because of the name.
    One that few use may be the story ("banking" of Lloyds Banking Group in "Lloyds banking app
    outage"). ``n_window`` and ``n_base``: how many texts were counted."""
    counts, n = (base, n_base) if n_base else (window, n_window)
    for term in names:
        if counts[term] * 2 >= n:
            window.pop(term, None)
            base.pop(term, None)


async def _own_terms(session: AsyncSession, entity: str) -> set[str]:
    """The words of the entity's key, name, aliases and tickers ("virgin", "atlantic" for an
    alert on Virgin Atlantic): listed among the distinguishing terms when the window held fewer
    messages than the baseline, though in its every message they say nothing of why it fired."""
    row = await session.get(Entity, entity)
    names = [entity]
    if row is not None:
        names += [row.name, *row.aliases, *row.case_sensitive_aliases, *row.tickers]
    return {w for name in names if isinstance(name, str) for w in words(name)}
