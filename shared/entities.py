"""Entity tagging: find watched entities in text.

Rules: aliases match on word boundaries and case-insensitively, except the
aliases listed as case-sensitive (short acronyms such as ``BP`` or ``BA`` that
collide with ordinary words); tickers match as cashtags (``$TSLA``), any case.
A text may tag several entities; every text also counts under ``_all``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator, Field

ALL = "_all"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def no_control_chars(value: str) -> str:
    """``value`` unchanged; ``ValueError`` if it holds a control character (NUL cannot
    even be stored in PostgreSQL; the others have no place in a name)."""
    if CONTROL_CHARS.search(value):
        raise ValueError("must not contain control characters (NUL, tab, newline, ...)")
    return value


EntityKey = Annotated[str, Field(pattern=KEY_PATTERN.pattern, description="Entity key, or _all.")]
PlainText = Annotated[str, AfterValidator(no_control_chars)]


@dataclass(frozen=True)
class WatchedEntity:
    key: str
    name: str
    aliases: Sequence[str] = field(default_factory=tuple)
    tickers: Sequence[str] = field(default_factory=tuple)
    case_sensitive_aliases: Sequence[str] = field(default_factory=tuple)
    group: str | None = None

    def __post_init__(self) -> None:
        if not KEY_PATTERN.match(self.key) or self.key == ALL:
            raise ValueError(f"invalid entity key {self.key!r}: use 1-64 letters, digits, '_', '.', '-'")
        names = (self.name, *self.aliases, *self.tickers, *self.case_sensitive_aliases, self.group or "")
        for text in names:
            try:
                no_control_chars(text)
            except ValueError as exc:
                raise ValueError(f"entity {self.key}: {text!r} {exc}") from None


def _alternation(words: Iterable[str]) -> str:
    """One pattern matching any of ``words``, longest first at each position.

    Built as a character trie (``Tesco(?: Bank)?``) rather than a flat ``a|b|c``:
    Python's ``re`` then follows one branch per character instead of trying every
    alias at every position (tagging was the classifier's costliest step after the
    model). Greedy optional tails keep "John Lewis Partnership" winning over "John
    Lewis", and backtracking still falls back to the shorter alias when the longer one
    fails the word boundary."""
    trie: dict[str, Any] = {}
    for word in {w for w in words if w.strip()}:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # end of a word
    return _trie_pattern(trie)


def _trie_pattern(node: dict[str, Any]) -> str:
    branches = [re.escape(ch) + _trie_pattern(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    return f"(?:{body})?" if "" in node else body


class EntityMatcher:
    """Compiled matcher over a watchlist."""

    def __init__(self, entities: Iterable[WatchedEntity]) -> None:
        self.entities = {e.key: e for e in entities}
        self._insensitive: dict[str, str] = {}
        self._sensitive: dict[str, str] = {}
        self._tickers: dict[str, str] = {}
        for e in self.entities.values():
            sensitive = set(e.case_sensitive_aliases)
            for alias in (*e.aliases, *e.case_sensitive_aliases):
                if alias in sensitive:
                    self._sensitive[alias] = e.key
                else:
                    self._insensitive[alias.casefold()] = e.key
            for ticker in e.tickers:
                self._tickers[ticker.upper().lstrip("$")] = e.key
        b_open, b_close = r"(?<![\w$])", r"(?![\w])"
        self._re_i = (
            re.compile(f"{b_open}(?:{_alternation(self._insensitive)}){b_close}", re.IGNORECASE)
            if self._insensitive
            else None
        )
        self._re_s = re.compile(f"{b_open}(?:{_alternation(self._sensitive)}){b_close}") if self._sensitive else None
        self._re_t = re.compile(r"\$([A-Za-z][A-Za-z0-9.]{0,9})\b")

    def tag(self, text: str) -> list[str]:
        """Entity keys found in ``text`` (in order of first mention), then ``_all``."""
        found: dict[str, int] = {}
        if self._re_i is not None:
            for m in self._re_i.finditer(text):
                key = self._insensitive.get(m.group(0).casefold())
                if key is not None:
                    found.setdefault(key, m.start())
        if self._re_s is not None:
            for m in self._re_s.finditer(text):
                found.setdefault(self._sensitive[m.group(0)], m.start())
        for m in self._re_t.finditer(text):
            key = self._tickers.get(m.group(1).upper())
            if key is not None:
                found.setdefault(key, m.start())
        return [*sorted(found, key=found.__getitem__), ALL]
