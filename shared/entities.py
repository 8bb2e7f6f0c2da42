"""Entity tagging: find watched entities in text.

Rules: aliases match on word boundaries and case-insensitively (by casefolding),
except the aliases listed as case-sensitive (short acronyms such as ``BP`` or ``BA``
that collide with ordinary words); combining marks count as letters, so an alias
never matches inside an Indic word. On a side where an alias starts or ends with a
character of a script written without spaces (Chinese, Japanese, Korean, Thai, Lao,
Khmer, Myanmar), no word boundary is needed: such aliases match as substrings. On a
side where it starts or ends with a letter or digit of another script (``Sony``), a
character of those scripts or an underscore is a boundary too (``Sony株式会社``,
``トヨタToyota``, ``Sony가``, ``Acme_Corp``), any other letter or digit is not
(``Sonya``, ``ACME2``).
Tickers match as cashtags (``$TSLA``), any case; as an alias, a cashtag may end at a
character of a script written without spaces (``$TSLA股价``). A text may tag several entities,
also through an alias they share; every text also counts under ``_all``.

Aliases and text are compared in Unicode normal form NFKC, so the same visible text
matches whichever way it was encoded: ``Nestlé`` with a precomposed é or with e and
a combining accent, full-width ``ＡＣＭＥ`` and ``＄ＴＳＬＡ`` (CJK feeds), half-width
``ﾄﾖﾀ``, ligatures (``ﬁnance``), Hangul in conjoining jamo. Symbols whose
compatibility form would be letters joined to the word beside them (``Acme™`` would
read ``AcmeTM``) are left as they are. Case-insensitive matching also makes dotted and
dotless i one letter (``İŞ BANKASI``, ``iş bankası``, ``İş Bankası``). Invisible format
characters are removed from aliases and text first (a soft hyphen U+00AD or a
zero-width space U+200B inside ``Acme``), except the direction marks and the like that
stand between words (:func:`_invisible`). Typographic apostrophes and hyphens are
compared as ASCII ones (``McDonald’s``, ``Rolls‑Royce``, ``Rolls–Royce``; not the em
dash), and a run of spaces as one space (``Tesco  Bank``, also with no-break or
ideographic spaces, which NFKC makes plain ones). A tab or a line break is not folded:
it stays a boundary that no alias spans (``Tesco`` ending one line and ``Bank of
England`` opening the next are two entities, not ``Tesco Bank``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import InitVar, dataclass, field
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, Field

ALL = "_all"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
"""The entity key pattern; check a key with :func:`is_key` (``fullmatch``), never ``match``:
Python's ``$`` also matches before a final newline, so ``match`` took ``"acme\\n"``, a key the
API (whose pattern engine reads ``$`` as the end of the text) cannot name. The pattern keeps
``^...$`` for that engine (pydantic's ``Field(pattern=...)``: :data:`EntityKey`)."""
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
LONE_SURROGATES = re.compile(r"[\ud800-\udfff]")
TICKER_PATTERN = re.compile(r"^\$?[A-Za-z](?:[A-Za-z0-9.]{0,8}[A-Za-z0-9])?$")


def no_control_chars(value: str) -> str:
    """``value`` unchanged; ``ValueError`` if it holds a control character (NUL cannot
    even be stored in PostgreSQL; the others have no place in a name)."""
    if CONTROL_CHARS.search(value):
        raise ValueError("must not contain control characters (NUL, tab, newline, ...)")
    return value


def no_lone_surrogates(value: str) -> str:
    """``value`` unchanged; ``ValueError`` if it holds a lone surrogate (JSON's ``"\\ud800"``):
    it is no character and has no UTF-8 form, so PostgreSQL refuses it (a rule's scope
    ended in a 500). Pydantic refuses it on its own only in fields it converts."""
    if LONE_SURROGATES.search(value):
        raise ValueError("must not contain a lone surrogate (\\ud800-\\udfff): it is not a character")
    return value


def cashtag_ticker(value: str) -> str:
    """``value`` unchanged; ``ValueError`` unless a cashtag can match it (``$`` is optional)."""
    if not TICKER_PATTERN.fullmatch(value):  # not match: "TSLA\n" is no ticker
        raise ValueError(
            "a ticker matches as a cashtag: a letter, then up to 9 letters, digits or dots, not ending in a dot"
            " (e.g. TSLA, BRK.B, ABF.L); tickers such as 7203 or RDS-A cannot match, list them as aliases"
        )
    return value


UNREACHABLE_KEYS = frozenset({".", ".."})
"""Keys the key pattern allows that no URL path can name: ``/v1/entities/./messages`` and
``/v1/entities/../messages`` are dot segments, which clients and servers remove. They are
refused for new entities; rows stored before are still listed and loaded (``stored=True``)."""


def is_key(key: str) -> bool:
    """Whether ``key`` is the whole of a key the pattern allows (``"acme\\n"`` is not)."""
    return KEY_PATTERN.fullmatch(key) is not None


def is_stored_key(key: str) -> bool:
    """Whether ``key`` may be a stored row's: a key (:func:`is_key`), or one followed by a
    newline, which the check let through before it used ``fullmatch``. Such rows still load,
    list, and can be removed by the CLI (``tonewatch entities remove $'acme\\n'``)."""
    return is_key(key.removesuffix("\n"))


def check_new_key(key: str) -> str:
    """``key`` unchanged; ``ValueError`` naming it unless a new entity may have it: the key
    pattern (the whole key: no final newline), not ``_all``, and not ``.`` or ``..``."""
    if not is_key(key) or key == ALL:
        raise ValueError(f"invalid entity key {key!r}: use 1-64 letters, digits, '_', '.', '-'")
    if key in UNREACHABLE_KEYS:
        raise ValueError(
            f"invalid entity key {key!r}: '.' and '..' cannot be named in a URL path (/v1/entities/{key}/...);"
            " use letters, digits, '_' or '-' too"
        )
    return key


EntityKey = Annotated[str, Field(pattern=KEY_PATTERN.pattern, description="Entity key, or _all.")]
PlainText = Annotated[str, AfterValidator(no_control_chars), AfterValidator(no_lone_surrogates)]


@dataclass(frozen=True)
class WatchedEntity:
    """A watched entity, checked as a new one is (:func:`check_new_key`); ``stored=True``
    for a row read back, whose key may predate a check (``.``) and still tags text.
    A new entity's blank group is no group (``None``)."""

    key: str
    name: str
    aliases: Sequence[str] = field(default_factory=tuple)
    tickers: Sequence[str] = field(default_factory=tuple)
    case_sensitive_aliases: Sequence[str] = field(default_factory=tuple)
    group: str | None = None
    stored: InitVar[bool] = False

    def __post_init__(self, stored: bool) -> None:
        # Surrounding whitespace would never match ("Tesla " needs a space after Tesla).
        strip = object.__setattr__
        strip(self, "name", self.name.strip())
        for attr in ("aliases", "tickers", "case_sensitive_aliases"):
            strip(self, attr, tuple(s for s in (t.strip() for t in getattr(self, attr)) if s))
        if self.group is not None:
            group = self.group.strip()  # blank is no group for a new entity; a row read back keeps its own
            strip(self, "group", group if group or stored else None)
        if stored:
            if not is_stored_key(self.key) or self.key == ALL:
                raise ValueError(f"invalid entity key {self.key!r}: use 1-64 letters, digits, '_', '.', '-'")
        else:
            check_new_key(self.key)
        names = (self.name, *self.aliases, *self.tickers, *self.case_sensitive_aliases, self.group or "")
        for text in names:
            try:
                no_control_chars(text)
            except ValueError as exc:
                raise ValueError(f"entity {self.key}: {text!r} {exc}") from None


# Combining marks (Unicode categories Mn, Mc, Me: Indic vowel signs and viramas, Thai tone
# marks, accents in decomposed text) belong to the word they sit in, but are not ``\w`` to
# Python's ``re``; the boundaries count them as letters, so "राम" does not match inside
# "रामायण". (The zero-width non-joiner and joiner, also inside words, are removed first:
# :func:`_invisible`.)
_MARK_PLANES = (range(0x20000), range(0xE0000, 0xE1000))  # no marks (nor format characters) elsewhere
_ASTRAL = "\\U00010000-\\U0010ffff"


def _class_bodies(cps: Iterable[int]) -> tuple[str, str]:
    """Character-class bodies (no brackets) of the code points ``cps``: those in the Basic
    Multilingual Plane, then those above it, as ranges."""
    ranges: list[list[int]] = []
    for cp in sorted(cps):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])

    def body(rs: list[list[int]]) -> str:
        return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in rs)

    return body([r for r in ranges if r[0] < 0x10000]), body([r for r in ranges if r[0] >= 0x10000])


@cache
def _marks() -> tuple[str, str]:
    """Character-class bodies (no brackets) of the combining marks: those in the Basic
    Multilingual Plane, then those above it. ``re`` tests BMP classes with one table
    lookup but ranges above the BMP one by one, so those go in a class of their own,
    looked at only when the character is not in the BMP."""
    return _class_bodies(
        cp for plane in _MARK_PLANES for cp in plane if unicodedata.category(chr(cp)) in ("Mn", "Mc", "Me")
    )


# Format characters that stand between words rather than inside one, and stay (as
# non-word characters, they are boundaries): the bidirectional marks, embeddings and
# isolates that set off a run of another direction ("\u2067Acme\u2069" in Arabic or
# Hebrew text; removed, "Acme" would join the word before it), the invisible
# mathematical operators (U+2063 is INVISIBLE SEPARATOR), the interlinear annotation
# marks (between a base text and its annotation).
_SEPARATING_FORMATS = (
    (0x061C, 0x061C),  # Arabic letter mark
    (0x200E, 0x200F),  # left-to-right, right-to-left mark
    (0x202A, 0x202E),  # embeddings, overrides, pop
    (0x2061, 0x2064),  # function application, invisible times, separator, plus
    (0x2066, 0x2069),  # isolates, pop
    (0xFFF9, 0xFFFB),  # interlinear annotation anchor, separator, terminator
)


@cache
def _invisible() -> re.Pattern[str]:
    """The format characters (Unicode category Cf) removed from aliases and text before
    they are compared, all but :data:`_SEPARATING_FORMATS`: the soft hyphen, the zero-width
    space, non-joiner and joiner, the word joiner, the byte order mark, tag characters
    and the like. They are invisible inside a word ("Acme" with a soft hyphen after "Ac"
    reads "Acme"), yet no word characters to ``re``: left in, the word would not match.
    Removing even the zero-width space (a line-break chance, at times between words)
    joins "Acme", U+200B, "Corp" into one word; it is far more often pasted or slipped
    into one (inside "ACME" to get past a filter)."""
    separating = {cp for lo, hi in _SEPARATING_FORMATS for cp in range(lo, hi + 1)}
    bmp, astral = _class_bodies(
        cp for plane in _MARK_PLANES for cp in plane if unicodedata.category(chr(cp)) == "Cf" and cp not in separating
    )
    return re.compile(f"[{bmp}{astral}]+")  # one class: re scans for it without trying each position


def _visible(text: str) -> str:
    """``text`` without the invisible characters of :func:`_invisible`. Those are not
    printable, so printable text (most of it) is returned after one quick check."""
    return text if text.isprintable() else _invisible().sub("", text)


# Scripts written without spaces between words (or, for Hangul, with particles attached):
# Han, Hiragana, Katakana, Hangul, Thai, Lao, Myanmar, Khmer. An alias starting (ending)
# with one of these characters needs no word boundary on that side: it matches inside a
# run of text ("トヨタ" in "トヨタ自動車が発表"), as a substring; and next to an alias's
# edge in another script, one of them is a boundary ("Sony" in "Sony株式会社").
_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0x2E80, 0x2FDF),  # CJK and Kangxi radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3038, 0x303B),
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended-A
    (0xA9E0, 0xA9FF),  # Myanmar extended-B
    (0xAA60, 0xAA7F),  # Myanmar extended-A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo extended-B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFFDC),  # halfwidth Katakana and Hangul
    (0x1B000, 0x1B16F),  # Kana supplement and extended
    (0x20000, 0x323AF),  # CJK extensions B-H, compatibility supplement
)
_UNSPACED = "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in _UNSPACED_RANGES)
# A cashtag: ``$`` then a letter, then letters, digits or dots. Digit-first ("$7203")
# would be a dollar amount, a hyphen ("$RDS-A") most often a compound ("$TSLA-linked").
# It ends at a word boundary or, as an alias does, where a character of a script written
# without spaces follows ("$TSLA股价大跌", "$TSLA가").
CASHTAG = re.compile(rf"\$([A-Za-z][A-Za-z0-9.]{{0,9}})(?:\b|(?=[{_UNSPACED}]))")


def unspaced(ch: str) -> bool:
    """Whether ``ch`` belongs to a script written without spaces between words."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _UNSPACED_RANGES)


_WORD = re.compile(r"\w")


@cache
def _joining_symbols() -> re.Pattern[str]:
    """The symbols NFKC would turn into letters or digits joined to the word beside them:
    ``™`` (``TM``), ``№``, ``℃``, circled and squared letters, ``㎏``. They are no word
    characters, so ``Acme™`` has the word ``Acme``; normalised, ``AcmeTM`` would not.
    Compatibility forms in scripts written without spaces (Kangxi radicals, ``㍿``) need
    no boundary and are normalised, and so is punctuation (``＿`` is ``_``)."""
    ranges: list[list[int]] = []
    for plane in _MARK_PLANES:  # no compatibility decompositions elsewhere
        for cp in plane:
            ch = chr(cp)
            if not unicodedata.category(ch).startswith("S") or not unicodedata.decomposition(ch).startswith("<"):
                continue
            form = unicodedata.normalize("NFKC", ch)
            if not any(_WORD.match(c) and not unspaced(c) for c in (form[0], form[-1])):
                continue
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    # as ranges: re tests a character above the BMP against each range of a class in turn
    return re.compile("([" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "])")


# Typographic forms that news copy (word processors, "smart" punctuation) writes where an
# alias has plain ASCII: the right and left single quotation marks, the modifier letter
# apostrophe and the prime for an apostrophe ("McDonald’s"), and the hyphen, non-breaking
# hyphen, figure dash, en dash and minus sign for a hyphen ("Rolls‑Royce"). The en dash
# is folded too: it joins compound names in some house styles ("Rolls–Royce"), and,
# being a boundary as a hyphen is, it makes no alias match where it did not already
# match in the other spelling. The em dash is not: it sets a clause off ("Tesco—Bank
# results" is not "Tesco-Bank").
_APOSTROPHES = re.compile("[\u2018\u2019\u02bc\u2032]")
_HYPHENS = re.compile("[\u2010-\u2013\u2212]")


def normalize(text: str) -> str:
    """``text`` without the invisible characters of :func:`_invisible`, in NFKC, except the
    symbols of :func:`_joining_symbols` (kept as they are), typographic apostrophes and
    hyphens made ASCII ones (see :data:`_APOSTROPHES`), each run of spaces one space and
    none at either end ("Tesco  Bank"). NFKC has already made the no-break, ideographic and
    other spaces plain ones. Tabs and line breaks are kept: a headline's lines and a
    table's cells are separate phrases ("Tesco\nBank of England" names two entities),
    so no alias may match across them.

    Linear in ``len(text)``: ASCII holds no invisible characters, is in NFKC and holds no
    typographic forms; only its runs of spaces are looked at."""
    if not text.isascii():
        text = _HYPHENS.sub("-", _APOSTROPHES.sub("'", _nfkc(_visible(text))))
    if "  " in text:
        text = _SPACE_RUN.sub(" ", text)
    return text.strip(" ")


_SPACE_RUN = re.compile(" {2,}")


def _nfkc(text: str) -> str:
    """``text`` in NFKC, except the symbols of :func:`_joining_symbols` (kept as they are).

    Linear in ``len(text)``: text already in NFKC (all ASCII is) holds none of those
    symbols and is returned after a quick check; other text is normalised at once when
    it holds none either, else split on them and normalised part by part (a symbol is
    a starter no mark composes with, so that is normalising the whole)."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text
    symbols = _joining_symbols()
    if symbols.search(text) is None:
        return unicodedata.normalize("NFKC", text)
    parts = symbols.split(text)  # text, symbol, text, symbol, ..., text
    parts[::2] = [unicodedata.normalize("NFKC", part) for part in parts[::2]]
    return "".join(parts)


def fold(text: str) -> str:
    """The form in which case-insensitive aliases and the text are compared: normalised,
    casefolded, dotted and dotless i made one, normalised again (casefolding can undo
    NFKC: "ǰ" folds to j + combining caron).

    Turkish and Azerbaijani case İ/i and I/ı, every other language I/i; casefolding
    follows the latter (İ -> i + combining dot above, ı unchanged), so "İŞ BANKASI",
    "iş bankası" and "İş Bankası" would fold three ways. A case-insensitive alias
    cannot know which casing a headline used: i with a combining dot above is i, and
    ı is i. Other letters keep their marks (``IS BANKASI`` is another spelling)."""
    return _fold_normalized(normalize(text))


def _fold_normalized(text: str) -> str:
    """:func:`fold` of ``text`` already normalised."""
    folded = text.casefold()
    if "\u0307" in folded:
        folded = folded.replace("i\u0307", "i")
    if "\u0131" in folded:  # ı
        folded = folded.replace("\u0131", "i")
    return _nfkc(folded)  # casefolding makes no invisible characters


def _folded_positions(text: str, positions: Iterable[int]) -> dict[int, int]:
    """Where each of ``positions`` in normalised ``text`` falls in ``fold(text)``: the
    stretches between them are folded in turn, so all of it takes one pass over the
    text. The positions are where matches start, never inside a letter and its marks,
    so the stretches fold as they would inside the whole text."""
    if text.isascii():  # casefolding ASCII keeps every position
        return {p: p for p in positions}
    at = done = 0
    where: dict[int, int] = {}
    for p in sorted(set(positions)):
        done += len(_fold_normalized(text[at:p]))
        at = p
        where[p] = done
    return where


def _pattern(words: Iterable[str]) -> str:
    """A pattern matching any of ``words`` with the boundaries each needs, longest first.

    A word starting with a character of a spaced script (a Latin letter, a digit) needs
    no letter or digit of a spaced script (nor ``$``, nor a combining mark of one) just
    before it, one ending in such a character none just after it: an underscore or a
    character of an unspaced script is a boundary (``Sony株式会社``, ``トヨタToyota``,
    ``Acme_Corp``), as are spaces and punctuation. A word starting or ending in an
    unspaced script needs nothing before it, and after it only no combining mark (a
    match never cuts a letter from its vowel sign). The closing check looks back at the
    last character matched, so backtracking into the alternation still falls back to a
    shorter word when the longer one fails."""
    words = {w for w in words if w.strip()}
    bmp, astral = _marks()
    spaced_word = f"[^\\W_{_UNSPACED}]"  # a letter or digit of a spaced script
    mark_before = f"(?:(?<=[{_UNSPACED}])|(?<![{bmp}])(?<!(?=[{_ASTRAL}])[{astral}]))"
    mark_after = f"(?![{bmp}])(?!(?=[{_ASTRAL}])[{astral}])"
    spaced_start = [w for w in words if not unspaced(w[0])]
    unspaced_start = [w for w in words if unspaced(w[0])]
    starts = []
    if spaced_start:
        # cheapest checks first (tried at every position): a first letter of a word, no
        # ASCII letter, digit or $ before it; then the full boundary
        firsts = "".join(sorted({re.escape(w[0]) for w in spaced_start}))
        before = f"(?=[{firsts}])(?<![0-9A-Za-z$])(?<!{spaced_word}){mark_before}"
        starts.append(f"{before}(?:{_alternation(spaced_start)})")
    if unspaced_start:
        starts.append(f"(?:{_alternation(unspaced_start)})")
    end = f"(?:(?<=[{_UNSPACED}])|(?<![{_UNSPACED}])(?!{spaced_word})){mark_after}"
    return f"(?:{'|'.join(starts)}){end}"


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
    """Compiled matcher over a watchlist.

    Aliases and text are normalised (:func:`normalize`: invisible characters removed,
    NFKC). Case-insensitive aliases are folded (:func:`fold`) and matched against the
    folded text (``re.IGNORECASE`` does not casefold: "STRASSE" would miss "Straße",
    "Straße" itself would miss its casefolded pattern); case-sensitive aliases and
    cashtags are matched against the normalised text. ``tag`` reports keys only, no
    offsets or matched text: positions only order entities by first mention, so they
    are compared in one text, never in the text as received (removing invisible
    characters shortens it). Normalising keeps the order of the text (however it
    changes lengths: ﷺ is 18 characters in NFKC), and folding it changes lengths too
    (ß -> ss), so positions in the normalised text are carried over into the folded
    text (:func:`_folded_positions`)."""

    def __init__(self, entities: Iterable[WatchedEntity]) -> None:
        self.entities = {e.key: e for e in entities}
        self._insensitive: dict[str, list[str]] = {}
        self._sensitive: dict[str, list[str]] = {}
        self._tickers: dict[str, list[str]] = {}
        for e in self.entities.values():
            # stripped again: invisible characters may have stood outside the spaces
            sensitive = {normalize(a).strip() for a in e.case_sensitive_aliases}
            for alias in (*e.aliases, *e.case_sensitive_aliases):
                form = normalize(alias).strip()
                if not form:  # nothing but invisible characters: an empty alias would match anywhere
                    continue
                if form in sensitive:
                    table = self._sensitive
                else:
                    table, form = self._insensitive, _fold_normalized(form)
                keys = table.setdefault(form, [])
                if e.key not in keys:
                    keys.append(e.key)
            for ticker in e.tickers:
                keys = self._tickers.setdefault(normalize(ticker).upper().lstrip("$"), [])
                if e.key not in keys:
                    keys.append(e.key)
        self._re_i = re.compile(_pattern(self._insensitive)) if self._insensitive else None
        self._re_s = re.compile(_pattern(self._sensitive)) if self._sensitive else None
        self._re_t = CASHTAG

    def tag(self, text: str) -> list[str]:
        """Entity keys found in ``text`` (in order of first mention), then ``_all``."""
        text = normalize(text)
        folded_at: dict[str, int] = {}  # first mention, in the folded text
        exact_at: dict[str, int] = {}  # first mention, in the normalised text
        if self._re_i is not None:
            for m in self._re_i.finditer(_fold_normalized(text)):
                for key in self._insensitive.get(m.group(0)) or ():
                    folded_at.setdefault(key, m.start())
        matches = []
        if self._re_s is not None:
            matches += [(m.start(), self._sensitive.get(m.group(0))) for m in self._re_s.finditer(text)]
        matches += [(m.start(), self._tickers.get(m.group(1).upper())) for m in self._re_t.finditer(text)]
        for at, keys in matches:
            for key in keys or ():
                exact_at[key] = min(at, exact_at.get(key, at))
        if folded_at and exact_at:
            where = _folded_positions(text, exact_at.values())
            exact_at = {key: where[at] for key, at in exact_at.items()}
        found = dict(folded_at)
        for key, at in exact_at.items():
            found[key] = min(at, found.get(key, at))
        return [*sorted(found, key=found.__getitem__), ALL]
