"""Personal data redaction: emails, phone numbers and card numbers are replaced
before text is stored or logged."""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import re
import unicodedata
from collections.abc import Callable

# What :func:`redact` puts in place of personal data. Readers of stored text match them:
# entity tagging reads each as a boundary, and an alert's terms skip them (a headline
# quoting a hotline's number is not about "phone").
PLACEHOLDER = re.compile(r"\[(?:EMAIL|PHONE|CARD|IBAN)\]")

# Not anchored on the left, "[\w.+-]+@" would rescan a long run of such characters
# (a pasted token) from every start: quadratic. The look-behind makes it linear.
# An address in a URL may have its "@" and "+" percent-encoded ("?email=jane%2Btag%40example.com"):
# only the address is replaced, the rest of the URL is kept as written. Nor is a match
# started on the "2B" of a "%2B" (a long run of them would be rescanned from each).
# Japanese and Chinese text may write an address with the full-width at sign ("jane＠example.com",
# "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ") or the small one (U+FE6B), and its dots as full-width full
# stops. There "＠" also means "at ... each" ("1個＠100円", "1袋＠1.5kg"), so such an address is
# read strictly: its name and domain in ASCII or full-width letters, digits and ". _ + -" (the
# text around it is often CJK, glued to it: "お問い合わせはjane＠example.comまで"), and its domain
# ends in a dot and a top-level domain of letters. Not the ideographic full stop "。": it ends
# Japanese sentences ("…jane＠example。"). Its own look-behind keeps it linear too.
_WIDE_NAME = "A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a._+\\-\uff0b\uff0d\uff0e\uff3f"
_WIDE_LABEL = "A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\\-\uff0d"
_AT_SIGNS = "@\uff20\ufe6b"
EMAIL = re.compile(
    r"(?<![\w.+-])(?!(?<=%)2[Bb])(?:[\w.+-]|%2[Bb])+(?:@|%40)[\w-]+(?:\.[\w-]+)+"
    rf"|(?<![{_WIDE_NAME}])[{_WIDE_NAME}]+[{_AT_SIGNS}][{_WIDE_LABEL}]+(?:[.\uff0e][{_WIDE_LABEL}]+)*"
    rf"[.\uff0e][A-Za-z\uff21-\uff3a\uff41-\uff5a]{{2,63}}(?![{_WIDE_LABEL}])"
)
# Separators inside a number as people paste them: space, dash, and the no-break,
# narrow, thin and figure spaces, the ideographic space that Japanese and Chinese input
# methods type between full-width digit groups ("０９０\u3000１２３４\u3000５６７８"), the
# dashes and minus signs that web pages and word processors insert, and the full-width
# hyphen-minus of Japanese text ("03－1234－5678"). A tab is none: it is a cell boundary
# (a spreadsheet row pasted as text, "Revenue\t120\t135\t150\t170", is figures in cells,
# not a number), nor is a line break (figures one a line are a column of a table).
_SPACES = " \u00a0\u2007\u2009\u202f\u3000"
_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2212\uff0d"
_SEP = _SPACES + _DASHES
# A number dialled with its country code opens with "+", or with the full-width plus of
# Japanese and Chinese text ("＋44 20 7946 0958") or the small plus sign.
_PLUS = "+\uff0b\ufe62"
_INTERNATIONAL = ("00", *_PLUS)
# Japanese text also writes the katakana long vowel mark as a dash ("090ー1234ー5678"): a
# separator only between two digits, so a word ending in it ("データー2020") is never
# part of a number.
_LONG_VOWEL = r"(?<=\d)\u30fc(?=\d)"
# A run of digit groups, each separated by up to three separators ("4111 - 1111", two
# spaces) or by a single dot, slash or underscore ("4111.1111.1111.1111", "4111/1111/...",
# "4111_1111_..."). Card numbers are looked for inside it, group-aligned (see _cards): a
# card next to an expiry date, a CVV or a phone number is still found.
DIGIT_GROUPS = re.compile(rf"(?<!\d)\d+(?:(?:[{_SEP}]{{1,3}}|[./_]|\u30fc)\d+)*(?!\d)")
# International or national phone numbers: 7+ digits with separators, not the
# fraction or integer part of a decimal number ("33.0123456789").
# Bounded by ASCII letters, digits or "_" only ("order12345678" is a reference, not a
# phone number), so a number written straight after or before CJK text is found.
_NOT_ALNUM_BEFORE = r"(?<![A-Za-z_\d])"
_NOT_ALNUM_AFTER = r"(?![A-Za-z_\d])"
# An extension dialled after a number ("x123", "ext. 12", "extension 4", "#12"), with or
# without a space around its marker, bounded like the number ("0612345678x12abc" is a
# reference). A number may end where an extension begins: otherwise its letter would keep
# the whole number, or make the pattern back off to a shorter match that leaves its last
# digits ("[PHONE]-2671x1234").
# The extension is left out of the match, so only the number is judged (a date or an
# IPv4 address before "#1" is kept), and removed after a number that was redacted (see
# _PHONE_EXTENSION). A bounded look-ahead, it keeps every pattern linear.
# "内線" is the Japanese word ("03-1234-5678 内線 123"); Japanese text spaces it with the
# ideographic space. An extension may be bracketed, in ASCII or full-width brackets
# ("03-1234-5678(内線123)", "415-555-2671 (ext. 12)"): the brackets go with it.
_EXT_MARKED = rf"(?i:extension|ext\.?|x|#|内線)[{_SPACES}]?\d{{1,6}}"
_EXTENSION = (
    rf"[{_SPACES}]?(?:{_EXT_MARKED}{_NOT_ALNUM_AFTER}(?!\.\d)"
    rf"|[(\uff08][{_SPACES}]?{_EXT_MARKED}[{_SPACES}]?[)\uff09])"
)
_NUMBER_END = rf"(?:(?={_EXTENSION})|{_NOT_ALNUM_AFTER}(?!\.\d))"
# A number may open with its bracketed area code ("(415) 555-2671"): the bracket goes with
# it. A run glued to a letter on its right is matched whole ("glued", see _glued_phone):
# backing off to a shorter match would judge only its first groups ("[PHONE]-2671abc").
# So is a run before a dot and a digit ("decimal", see _decimal_phone): its last group may
# be a decimal's integer part ("1234567890.5"), or a number may end there ("...2671.3pm").
PHONE = re.compile(
    rf"{_NOT_ALNUM_BEFORE}(?<!\d\.)(?:(?:[{_PLUS}]|00)?\d|\((?=\d{{1,5}}\)))(?:[\d(){_SEP}]|{_LONG_VOWEL}){{6,}}\d"
    rf"(?:{_NUMBER_END}|(?P<glued>)(?=[A-Za-z_])|(?P<decimal>)(?=\.\d))"
)
# Dotted (415.555.2671, 01.23.45.67.89, +33 6.12.34.56.78) and slashed (030/1234567)
# numbers: at least two dots between short groups, or one slash, so a decimal is not one.
# Spaced after the slash or around it, as German numbers were written ("030/123 456", "030 /
# 123 456", "0171 / 123 45 67"), only a whole run after an area code dialled with its 0
# ("2019 / 2020 2021" is not one, nor the end of "+44 20 7946 0958/06 12 34 56 78"; a run
# of years after the slash is a date, "01/2020 2021", see _phone). A North American number
# may have its area code slashed ("415/555-2671"), three digits then seven in two groups,
# the last no year ("250/300 2020").
# A dotted number is not part of a longer dotted run ("1.192.168.100.200"), but may follow
# the dot that ends an abbreviation ("tel.415.555.2671", "Ph.020.7946.0958").
_AFTER_ABBREVIATION = r"(?:(?<!\.)|(?<=[A-Za-z]\.))"
_SLASHED_END = rf"(?:(?={_EXTENSION})|(?![A-Za-z_\d/])(?!\.\d))"
PHONE_DOTTED = re.compile(
    rf"(?<![A-Za-z_\d]){_AFTER_ABBREVIATION}"
    rf"(?:(?:[{_PLUS}]|00)\d{{1,3}}[ .\u00a0]?)?\(?\d{{1,4}}\)?(?:\.\d{{2,4}}){{2,5}}{_NUMBER_END}"
    rf"|(?<![A-Za-z_\d/.])(?:[{_PLUS}]|00)?\d{{2,5}}/\d{{4,9}}{_SLASHED_END}"
    rf"|(?<![A-Za-z_\d/.])(?<!\d[{_SEP}])0\d{{1,4}}[{_SPACES}]?/[{_SPACES}]?"
    rf"\d{{2,8}}(?:[{_SPACES}]\d{{2,4}}){{0,3}}(?![{_SEP}\u30fc]\d){_SLASHED_END}"
    rf"|(?<![A-Za-z_\d/.])(?<!\d[{_SEP}])[2-9]\d\d/\d{{3}}[{_SEP}](?!(?:19|20)\d\d)\d{{4}}{_SLASHED_END}"
)
# The extension of a phone number that was redacted goes with it.
_PHONE_EXTENSION = re.compile(rf"(?<=\[PHONE\]){_EXTENSION}")
# A dotted IPv4 address (192.168.100.200, a broker's or a database's) has the shape of
# a dotted phone number but is not one: four groups of 0-255, written without leading
# zeros (as Python's ipaddress requires), so a dialled national number such as
# 022.123.45.67 still counts as a phone number. PHONE_DOTTED only matches a whole
# digit-and-dot run, so one in a longer run (1.192.168.100.200) is not taken for an address.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
# "2020-03-12 10" or "12/03/2020 10" followed by ":30" is a date and time, not a phone number,
# with a "T" or any space that separates a number's groups between them (the ideographic
# space of "2024-01-15\u300010:30 開始" too: otherwise the date and hour read as a number).
# Only a real month (01-12) and day (01-31) make a date: "1234-56-78" is a phone number's
# groups, and "12-03-2020" may be written day or month first.
_MONTH = r"(?:0?[1-9]|1[0-2])"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_DATE = (
    rf"(?:\d{{4}}[-/.]{_MONTH}[-/.]{_DAY}"
    rf"|(?:{_DAY}[-/.]{_MONTH}|{_MONTH}[-/.]{_DAY})[-/.]\d{{4}})"
)
_DATE_HOUR = re.compile(rf"{_DATE}[T{_SPACES}]\d{{1,2}}")
# Nor is a date after a numbered list's marker ("(1) 2020-03-12", "2) 12-03-2020"): the
# marker's digits make it as long as a phone number. A marker is one or two digits, not
# starting with 0: a bracketed area code is "(030)", "(06)", "(0)" or three digits ("(800)").
_LIST_MARKER = re.compile(rf"\(?[1-9]\d?\)[{_SPACES}]*")
_WHOLE_DATE = re.compile(_DATE)
# Nor a run of plain years ("profits 2019 2020 2021", "1999-2000-2001"): every group four
# digits, 19xx or 20xx, and not dialled (no "+", "00" or bracket). A dialled number has a
# group of another length ("202-555-0143", "2025550143") or one that is no such year.
_YEARS = re.compile(rf"(?:19|20)\d\d(?:(?:[{_SEP}]|{_LONG_VOWEL})+(?:19|20)\d\d)+")
# Ids written in hex are kept whole, before any number is looked for in them: a UUID (any
# case; "12345678-1234-a234-8234-123456789abc" lost its first groups as a phone number), a
# W3C traceparent, and 32-, 40- and 64-digit hex ids (trace ids, git and sha256 digests),
# whose digit runs can pass as a card ("4111111111111111abcd...") or an IBAN. None of
# these shapes can be a phone or card number, and no IBAN is 32 characters with hex-letter
# country code. Bounded by ASCII letters and digits only ("evt_", "urn:uuid:" and braces
# are not part of the id); the look-behind keeps it linear in a long run of hex.
_HEX = "[0-9A-Fa-f]"
HEX_ID = re.compile(
    rf"(?<![0-9A-Za-z])(?:{_HEX}{{8}}(?:-{_HEX}{{4}}){{3}}-{_HEX}{{12}}"
    rf"|{_HEX}{{2}}-{_HEX}{{32}}-{_HEX}{{16}}-{_HEX}{{2}}"
    rf"|{_HEX}{{64}}|{_HEX}{{40}}|{_HEX}{{32}})(?![0-9A-Za-z])"
)
# IBAN candidates in any case, grouped by up to three separators as numbers are ("DE89  3704",
# narrow no-break spaces, dashes); only those that pass the ISO 13616 mod-97 check are replaced
# (so "FY20 LOSS HITS BANK" is not one).
IBAN = re.compile(
    rf"(?<![A-Za-z\d])[A-Za-z]{{2}}\d{{2}}(?:[{_SEP}]{{0,3}}[A-Za-z\d]{{4}}){{2,7}}"
    rf"(?:[{_SEP}]{{0,3}}[A-Za-z\d]{{1,3}})?(?![A-Za-z\d])"
)
_IBAN_SEP = re.compile(rf"[{_SEP}]+")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    """ISO 13616: 15-34 characters; moved to the end and read in base 36, it is 1 mod 97."""
    code = _IBAN_SEP.sub("", candidate).upper()
    if not 15 <= len(code) <= 34:
        return False
    return int("".join(str(int(ch, 36)) for ch in code[4:] + code[:4])) % 97 == 1


def _ibans(match: re.Match[str]) -> str:
    """Replace the longest prefix of the candidate, whole groups, that is a valid IBAN
    (the pattern may take a following word of four letters as one more group)."""
    raw = match.group(0)
    ends = [m.start() for m in _IBAN_SEP.finditer(raw)] + [len(raw)]
    for end in reversed(ends):
        if _iban_ok(raw[:end]):
            return "[IBAN]" + raw[end:]
    return raw


# Payment card numbers start with 2-6 (Mastercard, Visa, Amex/Diners/JCB, Maestro,
# Discover/UnionPay) and are printed in groups of four (the last may be shorter) or,
# for 14-15 digit cards, 4-6-4 / 4-6-5. A single unbroken run of 13-19 digits counts too.
# Any decimal digit counts, full-width ones too ("４１１１ １１１１ …"): int() reads them all.
_CARD_FIRST = frozenset((2, 3, 4, 5, 6))


def _card_start(run: str, group: tuple[int, int]) -> bool:
    a, b = group
    return int(run[a]) in _CARD_FIRST and (b - a == 4 or 13 <= b - a <= 19)


def _card_shape(groups: list[tuple[int, int]]) -> bool:
    sizes = [b - a for a, b in groups]
    if len(sizes) == 1 or (sizes[:2] == [4, 6] and len(sizes) == 3 and sizes[2] in (4, 5)):
        return True
    return all(n == 4 for n in sizes[:-1]) and 1 <= sizes[-1] <= 4


def _card_ends(run: str, groups: list[tuple[int, int]], kinds: list[str], i: int) -> list[int]:
    """The last groups of the card numbers that may start at group i, shortest first. Groups
    joined by a slash or an underscore are a card only all so joined ("4111/1111/1111/1111"):
    those join a date or a reference to a card's groups as often ("2742 4447_6458_4131").
    Nor is a span of several groups that are all years (19xx or 20xx) a card, Luhn-valid or
    not: "2015 2016 2017 2018" heads a table. No card number starts 19 or 20 (Mastercard's
    2-series is 2221-2720, Mir 2200-2204; the old enRoute 2014 had 15 digits, so its last
    group is no year; a single run of 13-19 digits is no year)."""
    ends, digits = [], ""
    for j in range(i, len(groups) if _card_start(run, groups[i]) else i):
        digits += run[groups[j][0] : groups[j][1]]
        if len(digits) > 19:
            break
        joined = set(kinds[i:j])
        if len(joined) > 1 and joined & {"/", "_"}:
            break
        if len(digits) >= 13 and _card_shape(groups[i : j + 1]) and _luhn_ok(digits):
            if all(_YEAR.fullmatch(str(int(run[a:b]))) for a, b in groups[i : j + 1]):
                continue  # in ASCII: full-width years too
            ends.append(j)
    return ends


@functools.lru_cache(maxsize=512)
def _gap_kind(gap: str) -> str:
    """How two digit groups are joined: by spaces (" "), or tightly by a dash, dot, slash or
    underscore (a long vowel mark counts as a dash)."""
    for kind in "-./_":
        if any(ch == kind or (kind == "-" and ch in _DASHES + "\u30fc") for ch in gap):
            return kind
    return " "


def _misfit(kinds: list[str], i: int, j: int) -> int:
    """How ill groups i to j fit a card: 2 where they are joined by separators of more than
    one kind, and 1 for each end where the group before or after is joined to them tightly
    (a dash, dot, slash or underscore): there they cut another number off ("2671 4111 1111
    1111" in "415-555-2671 4111 1111 1111 1111"). 0 for a card as printed."""
    mixed = len(set(kinds[i:j])) > 1
    left = i > 0 and kinds[i - 1] != " "
    right = j < len(kinds) and kinds[j] != " "
    return 2 * mixed + left + right


def _cards(match: re.Match[str]) -> str:
    """Replace every Luhn-valid 13-19 digit card number in a run of digit groups.

    The card must start and end on group boundaries ("4111 1111 1111 1111 12/26":
    the first four groups), so the digits of a long reference number are not combed
    for a span that happens to pass the Luhn check (one in ten does). A span of several
    groups must be laid out as cards are printed (see _card_shape). From each start the
    span that fits best (see _misfit), then the longest, is taken; a span that fits ill
    gives way to one starting inside it that fits better: "2671 4111 1111 1111" passes the
    Luhn check in "415-555-2671 4111 1111 1111 1111", but the card is the last four groups,
    and the phone number the first three."""
    run = match.group(0)
    found_groups = list(re.finditer(r"\d+", run))
    groups = [(g.start(), g.end()) for g in found_groups]
    if sum(b - a for a, b in groups) < 13 or not any(_card_start(run, group) for group in groups):
        return run
    kinds = [_gap_kind(run[a.end() : b.start()]) for a, b in itertools.pairwise(found_groups)]
    out, done, i = [], 0, 0
    while i < len(groups):
        ends = _card_ends(run, groups, kinds, i)
        if not ends:
            i += 1
            continue
        found = min(ends, key=lambda j: (_misfit(kinds, i, j), -j))
        misfit = _misfit(kinds, i, found)
        if misfit and any(
            _misfit(kinds, k, j) < misfit for k in range(i + 1, found + 1) for j in _card_ends(run, groups, kinds, k)
        ):
            i += 1  # a card that fits better starts further on
            continue
        out.append(run[done : groups[i][0]])
        out.append("[CARD]")
        done = groups[found][1]
        i = found + 1
    out.append(run[done:])
    return "".join(out)


def _phone(match: re.Match[str]) -> str:
    raw = match.group(0)
    if "[CARD]" in raw:
        return raw
    if _dates_or_years(raw, before_colon=match.string.startswith(":", match.end())):
        return raw
    slash = raw.rfind("/")
    if slash >= 0 and _YEARS.fullmatch(raw[slash + 1 :].strip(_SPACES)):
        return raw  # a month and years ("01/2020 2021")
    figures = _figures(raw)
    if figures == "figures":
        return raw
    digits = _digits(raw)
    if _phone_length_ok(digits, international=raw.startswith(_INTERNATIONAL)) and figures is None:
        return "[PHONE]"
    if digits > 15:  # several numbers in a row ("0612345678 0698765432")
        return _phones_in_run(raw)
    if figures == "counts":  # a number may stand next to counts ("1 8 800 330 37 00")
        return _phones_in_run(raw, alone=True)
    return raw


def _phone_or_glued(match: re.Match[str]) -> str:
    if match.group("decimal") is not None:
        return _decimal_phone(match)
    if match.group("glued") is None:
        return _phone(match)
    return _glued_phone(match.group(0))


def _decimal_phone(match: re.Match[str]) -> str:
    """A run of digit groups before a dot and a digit. Its last group is read first as a
    decimal's integer part ("415 555 2671 12.5": a number, then 12.5), the groups before
    it judged on their own. Where those hold no number, a last group joined by a dash or a
    bracket is no decimal's: the run is judged whole ("415-555-2671.3pm"). A last group
    after spaces may be one ("99934570 61.3%"), and an unbroken run is ("1234567890.5")."""
    run = match.group(0)
    last = _LAST_GROUP.search(run)
    assert last is not None  # PHONE's run ends with a digit
    before = run[: last.start()].rstrip(_SEP + "()\u30fc")
    if not before:
        return run
    judged = PHONE.sub(_phone, before)
    if judged != before:
        return judged + run[len(before) :]
    if not run[len(before) : last.start()].strip(_SPACES):
        return run
    return _phone(match)


# The look-behind tries each group once: linear in a long run of groups.
_LAST_GROUP = re.compile(r"(?<!\d)\d+$")


def _glued_phone(run: str) -> str:
    """A run of digit groups glued to a letter on its right. Dialled with a country code
    ("+1-415-555-2671abc", "00 44 20 7946 0958abc") it is a phone number, judged whole. In
    any other run the group glued to the letters is a reference ("0612345678abc", the
    "2671" of "415-555-2671abc"), kept with them; the groups before it are judged on their
    own ("0612345678 0698765432abc", "415-555-2671-3pm", "(11) 91234-5678-2b")."""
    if run.startswith(tuple(_PLUS)) or (run.startswith("00") and any(ch in _SEP or ch == "\u30fc" for ch in run)):
        if _phone_length_ok(_digits(run), international=True):
            return "[PHONE]"
    last = _LAST_GROUP.search(run)
    assert last is not None  # PHONE's run ends with a digit
    return PHONE.sub(_phone, run[: last.start()]) + run[last.start() :]


def _dotted_phone_not_ipv4(match: re.Match[str]) -> str:
    if IPV4.fullmatch(match.group(0)):
        return match.group(0)
    return _phone(match)


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _dates_or_years(raw: str, *, before_colon: bool) -> bool:
    """A run of plain years, or a date (with its hour before ":30") after a list marker."""
    if _YEARS.fullmatch(raw):
        return True
    marker = _LIST_MARKER.match(raw)
    date = raw[marker.end() :] if marker else raw
    return _WHOLE_DATE.fullmatch(date) is not None or (before_colon and _DATE_HOUR.fullmatch(date) is not None)


def _phone_length_ok(digits: int, *, international: bool) -> bool:
    return 9 <= digits <= 15 or (international and 7 <= digits <= 15)


# Digits dialled with a trunk 0 or an international 00: a 0 or 00, then another digit.
_DIALLED_ZERO = re.compile(r"00?[1-9]")


def _figures(raw: str) -> str | None:
    """How a run of digit groups that is not dialled (no 0, plus or bracket before it, no
    dot in it) reads where it is no number: "figures" where it holds none, being round
    figures (see _ROUND: "100 200 300 400", "1 000 000 000"), thousands after one digit
    ("1 234 567 890"), years and single digits ("7 2019 2020 2021") or four or more
    figures in an arithmetic progression ("5 10 15 20 25", "1 2 3 4 5 6 7 8 9");
    "counts" where, in groups of up to four digits, it has two single digits or ends in one
    after a space ("4 8 15 16 23 42", "21-14 7-3", "415 555 2671 2", "1 8 800 330 37 00"),
    which a number may stand next to (see _phones_in_run); None otherwise. No number is
    grouped so; a number with one single digit first or inside is ("1 415 555 2671", "33 6
    12 34 56 78", "415-555-2671-2"). A run of zeros is not dialled ("1 000 000 000": "000
    000 000"); a dotted run is judged as before (an address may be a number: 91.123.45.67)."""
    if "." in raw or raw.startswith(("(", *_PLUS)):
        return None
    found = list(_GROUP.finditer(raw))
    groups = [_ascii_digits(group.group()) for group in found]
    if len(groups) < 2 or _DIALLED_ZERO.match("".join(groups[:3])):
        return None
    sizes = [len(group) for group in groups]
    rest = groups[1:] if sizes[0] == 1 else groups
    years = sum(1 for group in groups if _YEAR.fullmatch(group))
    if (
        (len(rest) >= 2 and all(_ROUND.fullmatch(group) for group in rest))
        or _THOUSANDS_AFTER_ONE.fullmatch(raw)
        or (years >= 2 and years + sizes.count(1) == len(groups))
        or _progression(groups)
    ):
        return "figures"
    before_last = raw[: found[-1].start()]
    if max(sizes) <= 4 and (sizes.count(1) >= 2 or (sizes[-1] == 1 and before_last.rstrip(_SPACES) != before_last)):
        return "counts"
    return None


# A round figure: tens ("10", "50") or hundreds and more ("300", "2000", "000"). A number's
# group seldom ends so ("560-540-4350" is a number).
_ROUND = re.compile(r"\d?0|\d+00")
_THOUSANDS_AFTER_ONE = re.compile(rf"\d(?:[{_SPACES}]\d{{3}}){{3,}}")


def _ascii_digits(group: str) -> str:
    """A group of decimal digits in any script ("４１５", "٤١٥") in ASCII, digit by digit:
    int() of the whole group is refused past 4,300 digits (ValueError), and a pasted run
    of digits may be longer; each is still a run that text may hold."""
    if group.isascii():
        return group
    return "".join(str(unicodedata.decimal(ch)) for ch in group)


# Longer than any group of digits in a number or among figures: no such group is read as a
# value (int() is refused past 4,300 digits, and slow long before).
_LONGEST_FIGURE = 64


def _progression(groups: list[str]) -> bool:
    """Four or more groups of figures (in ASCII), each the last plus the same step (not 0)."""
    if len(groups) < 4 or any(len(group) > _LONGEST_FIGURE for group in groups):
        return False
    values = [int(group) for group in groups]
    if values[1] == values[0]:
        return False
    step = values[1] - values[0]
    return all(b - a == step for a, b in itertools.pairwise(values))


_CHUNK = re.compile(rf"[^{_SPACES}]+")  # a run split at its spaces
_PIECE = re.compile(rf"[^{_DASHES}\u30fc]+")  # a chunk split at its dashes
_GROUP = re.compile(r"\d+")
_YEAR = re.compile(r"(?:19|20)\d\d")


def _phone_spans(run: str, chunks: list[tuple[int, int, int]], i: int) -> list[tuple[int, int]]:
    """The spans of whole chunks from chunk i that have a phone number's length, as (last
    chunk, digits). A span of several chunks must start like a dialled number (0, + or a
    bracket), so a list of years or amounts ("2018 2019 2020 2021 2022") is none; nor may a
    span be a run of years, a numbered date ("1999-2000-2001", "(1) 2020-03-12") or figures
    ("1-2-3-4-5-6-7-8-9", see _figures)."""
    start = chunks[i][0]
    dialled = run[start] in "0(" + _PLUS
    international = run.startswith(_INTERNATIONAL, start)
    spans, digits = [], 0
    for j in range(i, min(len(chunks), i + 9) if dialled else i + 1):
        if j > i and run[chunks[j][0]] in "(" + _PLUS:
            break  # the next number begins
        digits += chunks[j][2]
        if digits > 15:
            break
        span = run[start : chunks[j][1]]
        if (
            _phone_length_ok(digits, international=international)
            and not _dates_or_years(span, before_colon=False)
            and _figures(span) is None
        ):
            spans.append((j, digits))
    return spans


def _phones_in_run(run: str, *, alone: bool = False) -> str:
    """Replace phone numbers in a run too long to be one, aligned on its spaces: the spans
    of whole chunks (see _phone_spans) that together cover the most digits. Taking the
    longest span from the first chunk would leave the end of the next number when the
    first is shorter ("(415) 555-2671 06 12 34 56 78": "[PHONE] 34 56 78"). Where those
    leave digits, the run may be phone numbers side by side that are not dialled (see
    _side_by_side): they are replaced when they make up the whole run, or the whole run but
    years and short figures, where that covers more digits ("2020 2021 415 555 2671",
    "415 555 2671 2", see _among_figures). So does a run of counts (see _figures) of up to
    fifteen digits, which would be one number if it stood "alone"."""
    chunks = _chunks(run)
    phone_spans = [_phone_spans(run, chunks, i) for i in range(len(chunks))]
    covered, spans = _most_digits(phone_spans)
    if covered < sum(digits for _, _, digits in chunks):
        memo: dict[int, list[tuple[int, int, bool]]] = {}

        def number_spans(i: int) -> list[tuple[int, int, bool]]:  # see _number_spans, each once
            if i not in memo:
                memo[i] = _number_spans(run, chunks, i, phone_spans[i])
            return memo[i]

        side_by_side = _side_by_side(run, chunks, number_spans)
        if side_by_side:
            spans = side_by_side
        else:
            among, among_spans = _among_figures(run, chunks, number_spans, alone=alone)
            if among > covered:
                spans = among_spans
    out, done = [], 0
    for first, last in spans:
        out += [run[done : chunks[first][0]], "[PHONE]"]
        done = chunks[last][1]
    out.append(run[done:])
    return "".join(out)


def _chunks(run: str) -> list[tuple[int, int, int]]:
    """The run's chunks between spaces, as (start, end, digits); one too long to be a number
    is split at its dashes too ("0612345678-0612345678", "415-555-2671—415-555-2672")."""
    chunks = []
    for chunk in _CHUNK.finditer(run):
        digits = _digits(chunk.group())
        if digits <= 15:
            chunks.append((chunk.start(), chunk.end(), digits))
            continue
        for piece in _PIECE.finditer(chunk.group()):
            start = chunk.start() + piece.start()
            chunks.append((start, start + len(piece.group()), _digits(piece.group())))
    return chunks


def _most_digits(phone_spans: list[list[tuple[int, int]]]) -> tuple[int, list[tuple[int, int]]]:
    """The digits covered, and the spans (first chunk, last chunk) of _phone_spans that
    cover the most."""
    # covered[i]: the most digits phone numbers cover in chunks i and after; last[i]: the
    # last chunk of the span from chunk i in that choice, -1 where chunk i is in none.
    covered = [0] * (len(phone_spans) + 1)
    last = [-1] * len(phone_spans)
    for i in range(len(phone_spans) - 1, -1, -1):
        covered[i] = covered[i + 1]
        for j, digits in phone_spans[i]:
            if digits + covered[j + 1] >= covered[i]:  # on a tie, the span from here, the longest
                covered[i], last[i] = digits + covered[j + 1], j
    spans, i = [], 0
    while i < len(phone_spans):
        if last[i] < 0:
            i += 1
            continue
        spans.append((i, last[i]))
        i = last[i] + 1
    return covered[0], spans


def _side_by_side(
    run: str, chunks: list[tuple[int, int, int]], number_spans: Callable[[int], list[tuple[int, int, bool]]]
) -> list[tuple[int, int]]:
    """The run read as phone numbers side by side, every chunk in one: the spans (first
    chunk, last chunk), or none where it cannot be read so. Besides the spans of
    _phone_spans, a number may be written without its trunk prefix ("2125550143 415 555
    2671", "98765 43210 98765 43211", see _grouped_number), or be a local number after one
    dialled with 0, + or a bracket ("020 7946 0958 7946 0959"). A list of figures or years
    is none of these ("shares 1000 2000 3000 4000 5000")."""
    # came[i][after]: where chunks before i can be so read, the first chunk of the span
    # that ends before i and the "after" of that chunk; "after" tells whether the span
    # before was a whole dialled number (a local number may follow only such a one).
    came: list[list[tuple[int, int] | None]] = [[None, None] for _ in range(len(chunks) + 1)]
    came[0][0], reached = (-1, 0), 0
    for i in range(len(chunks)):
        if i > reached:
            return []  # no reading reaches chunk i
        dialled = run[chunks[i][0]] in "0(" + _PLUS
        for j, digits, local in number_spans(i):
            for after in (1,) if local else (0, 1):
                if came[i][after] is not None:
                    came[j + 1][int(dialled and not local and digits >= 9)] = (i, after)
                    reached = max(reached, j + 1)
    end, spans = len(chunks), []
    after = 0 if came[end][0] is not None else 1
    while end > 0:
        step = came[end][after]
        if step is None:
            return []
        spans.append((step[0], end - 1))
        end, after = step
    return spans[::-1]


def _among_figures(
    run: str,
    chunks: list[tuple[int, int, int]],
    number_spans: Callable[[int], list[tuple[int, int, bool]]],
    *,
    alone: bool,
) -> tuple[int, list[tuple[int, int]]]:
    """The run read as _side_by_side reads it, but where a chunk may also be a figure in no
    number: a year or a run of years, or a figure of up to three digits. Of such readings,
    the one that covers the most digits with numbers, as (digits, spans); (0, []) where
    none reaches the end of the run. Any other chunk must be in a number, as in
    _side_by_side, so that no number is read into a list of figures ("FTSE 100 7500 7520
    7480": "100 7500 7520" is none). In a run of counts short enough to be one number
    ("alone"), a number may also be the chunks that start or end it, where they would be
    one standing alone ("8 800 330 37 00" in "1 8 800 330 37 00")."""
    # most[i][after]: the most digits numbers cover in chunks before i, in a reading that
    # reaches chunk i (-1: none does), "after" as in _side_by_side; came[i][after]: the step
    # to it, (chunk, after, whether the chunks between are a number).
    most = [[-1, -1] for _ in range(len(chunks) + 1)]
    came: list[list[tuple[int, int, bool] | None]] = [[None, None] for _ in range(len(chunks) + 1)]
    most[0][0], reached = 0, 0
    for i, (start, end, digits) in enumerate(chunks):
        if i > reached:
            return 0, []  # no reading reaches chunk i
        if most[i][0] < 0 and most[i][1] < 0:
            continue  # inside a number of every reading
        chunk = run[start:end]
        if _YEARS.fullmatch(chunk) or _YEAR.fullmatch(chunk) or (digits <= 3 and _figure_chunk(chunk)):
            for after in (0, 1):
                if most[i][after] > most[i + 1][0]:
                    most[i + 1][0], came[i + 1][0] = most[i][after], (i, after, False)
                    reached = max(reached, i + 1)
        dialled = run[start] in "0(" + _PLUS
        candidates = number_spans(i)
        if alone:
            candidates = candidates + _alone_spans(run, chunks, i)
        for j, span_digits, local in candidates:
            then = int(dialled and not local and span_digits >= 9)
            for after in (1,) if local else (0, 1):
                if most[i][after] >= 0 and most[i][after] + span_digits > most[j + 1][then]:
                    most[j + 1][then], came[j + 1][then] = most[i][after] + span_digits, (i, after, True)
                    reached = max(reached, j + 1)
    end = len(chunks)
    after = 0 if most[end][0] >= most[end][1] else 1
    covered, spans = most[end][after], []
    if covered <= 0:
        return 0, []
    while end > 0:
        step = came[end][after]
        assert step is not None
        if step[2]:
            spans.append((step[0], end - 1))
        end, after = step[0], step[1]
    return covered, spans[::-1]


def _figure_chunk(chunk: str) -> bool:
    """Whether a chunk of up to three digits may be a figure in no number: not where it
    begins one, dialled (0, plus, a bracketed area code: "+44", "020", "(415)"); a list
    marker may be bracketed ("(1)")."""
    return not chunk.startswith(("0", *_PLUS)) and not (chunk.startswith("(") and _digits(chunk) > 2)


def _alone_spans(run: str, chunks: list[tuple[int, int, int]], i: int) -> list[tuple[int, int, bool]]:
    """The spans from chunk i that start or end the run and would be a number standing alone
    (see _phone), with a group of three digits or more (a list of small figures holds none:
    "8 15 16 23 42" in "4 8 15 16 23 42"), as _number_spans gives them. Nine chunks at most,
    as _phone_spans: chunks without digits ("(", "-") would make a span as long as the run."""
    if 0 < i < len(chunks) - 9:
        return []
    spans, digits = [], 0
    for j in range(i, min(len(chunks), i + 9)):
        digits += chunks[j][2]
        if digits > 15:
            break
        if i > 0 and j < len(chunks) - 1:
            continue
        span = run[chunks[i][0] : chunks[j][1]]
        if (
            _phone_length_ok(digits, international=span.startswith(_INTERNATIONAL))
            and not _dates_or_years(span, before_colon=False)
            and _figures(span) is None
            and _LONG_GROUP.search(span)
        ):
            spans.append((j, digits, False))
    return spans


_LONG_GROUP = re.compile(r"\d{3}")


def _number_spans(
    run: str, chunks: list[tuple[int, int, int]], i: int, phone_spans: list[tuple[int, int]]
) -> list[tuple[int, int, bool]]:
    """The spans from chunk i that _side_by_side may read as a number, as (last chunk,
    digits, whether it is a local number): those of _phone_spans (not a dialled one of 7 or
    8 digits, which would cut a longer one in two: "+44 20 7946" and "0958 2019"), then
    those _grouped_number reads as one."""
    spans = [(j, digits, False) for j, digits in phone_spans if digits >= 9]
    start, digits = chunks[i][0], 0
    for j in range(i, min(len(chunks), i + 4)):
        if j > i and run[chunks[j][0]] in "(" + _PLUS:
            break  # the next number begins
        digits += chunks[j][2]
        if digits > 15:
            break
        span = run[start : chunks[j][1]]
        shape = _grouped_number(span, digits)
        if shape is not None and not _dates_or_years(span, before_colon=False):
            spans.append((j, digits, shape == "local"))
    return spans


def _grouped_number(span: str, digits: int) -> str | None:
    """How a span of digit groups reads: "number" for one written without its trunk prefix,
    grouped as numbers are printed: two to four groups of two to five digits, the last of
    four or five ("415 555 2671", "98765 43210", "20 7946 0958"), not all of four
    ("1000 2000 3000" are figures); "local" for a local number, 7 or 8 digits in two groups
    ending in four ("555 2672", "7946 0959"); None otherwise: for one starting with 0 (that
    is dialled), for round figures ("34000 34500", every group ending in 0), and for one
    that starts or ends with a year ("2020 020 7946", "23456 2020")."""
    if not 7 <= digits <= 15:
        return None
    groups = _GROUP.findall(span)
    sizes = [len(group) for group in groups]
    if groups[0].startswith("0") or all(group.endswith("0") for group in groups):
        return None
    if any(_YEAR.fullmatch(group) for group in (groups[0], groups[-1])):
        return None
    if digits <= 8:
        return "local" if sizes in ([3, 4], [4, 4]) else None
    if 2 <= len(sizes) <= 4 and all(2 <= n <= 5 for n in sizes):
        return "number" if sizes[-1] >= 4 and set(sizes) != {4} else None
    return None


# Every pattern above needs an at sign or a digit; most texts have neither.
_MAYBE_PERSONAL = re.compile(rf"[{_AT_SIGNS}\d]")

# Raw JSON (a dead letter's preview, a logged payload) may write any character as a
# \uXXXX escape: "jane\u0040example.com", "\u0034\u0031\u0035-555-2671", or the no-break
# space of "415\u00a0555\u00a02671" (json.dumps escapes all non-ASCII); a logged repr of
# its bytes doubles the backslash. Each run of text between quotes and other escapes is
# redacted once more as it reads decoded, and a short escape ("\n") is a boundary there,
# not a letter glued to the number after it. The look-behinds keep a long run of
# backslashes linear (each escape is tried from its first backslash only).
_ESCAPED_RUN = re.compile(r'(?P<short>(?<!\\)\\+[bfnrt])|(?:[^"\\\r\n]|(?<!\\)\\+u[0-9A-Fa-f]{4})+')
_UNICODE_ESCAPE = re.compile(r"\\+u(d[89ab][0-9a-f]{2})\\+u(d[c-f][0-9a-f]{2})|\\+u([0-9a-f]{4})", re.IGNORECASE)
# Not decoded: a quote or backslash (the text would read as other JSON), controls, lone
# surrogates and line separators. Each reads as a quote while the run is redacted (a
# boundary no pattern crosses, and a character no run holds), then is put back as written.
_KEEP_ESCAPED = frozenset(("Cc", "Cs", "Zl", "Zp"))
_QUOTE = re.compile('"')


def _decode_escapes(run: str) -> tuple[str, list[str]]:
    """The run as it reads, and the escapes it keeps (each read as a quote), in order."""
    kept: list[str] = []

    def one(match: re.Match[str]) -> str:
        high, low, single = match.groups()
        if high is not None:  # a surrogate pair: one character outside the BMP
            return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + int(low, 16) - 0xDC00)
        ch = chr(int(single, 16))
        if ch in '"\\' or unicodedata.category(ch) in _KEEP_ESCAPED:
            kept.append(match.group(0))
            return '"'
        return ch

    return _UNICODE_ESCAPE.sub(one, run), kept


def _redact_escaped(match: re.Match[str], keep_ipv4: bool) -> str:
    """A run between quotes and escapes, redacted as it reads decoded; returned as it was
    when that finds nothing (only a run with personal data is shown decoded)."""
    run = match.group(0)
    if match.group("short") is not None:
        return run
    decoded, kept = _decode_escapes(run)
    redacted = _redact_plain(decoded, keep_ipv4)
    if redacted == decoded:
        return run
    put_back = iter(kept)
    return _QUOTE.sub(lambda _: next(put_back), redacted)


def redact(text: str, *, keep_ipv4: bool = False) -> str:
    """Replace emails, card numbers (Luhn-valid), IBANs and phone numbers, with their
    extension ("415-555-2671x123" becomes "[PHONE]"), also where written as JSON escapes
    ("jane\\u0040example.com"), with a full-width at sign ("jane＠example.com") or with
    zero-width characters inside ("415\\u200b555\\u200b2671"). A run of digits too long to
    be a number passes through, however long.

    ``keep_ipv4`` (the log scrubber's choice) keeps a dotted IPv4 address that would
    otherwise be taken for a phone number: operators need broker and database
    addresses. Stored text does not keep them, since a phone number can be written
    as one (91.123.45.67, Spanish)."""
    if _MAYBE_PERSONAL.search(text) is None:
        return text
    if "\\" in text:
        text = _ESCAPED_RUN.sub(lambda m: _redact_escaped(m, keep_ipv4), text)
    return _redact_plain(text, keep_ipv4)


def _redact_plain(text: str, keep_ipv4: bool) -> str:
    """Redact text as it reads: where it holds invisible characters inside a number or an
    address (see _invisible_runs), they are read as nothing, and the whole of what was
    replaced, invisible characters included, goes; any other is put back where it was."""
    runs = _invisible_runs(text)
    if not runs:
        return _redact_read(_Read(text), keep_ipv4).text
    visible, at = _without(text, runs)
    read = _redact_read(_Read(visible, list(range(len(visible)))), keep_ipv4)
    if read.text == visible:
        return text
    return _put_back(text, at, read)


def _redact_read(read: _Read, keep_ipv4: bool) -> _Read:
    """Emails first (an address may hold a hex id), then numbers in the text between hex ids."""
    read = read.sub(EMAIL, lambda _: "[EMAIL]")
    parts, done = [], 0
    for hex_id in HEX_ID.finditer(read.text):
        parts += [_redact_numbers(read.part(done, hex_id.start()), keep_ipv4), read.part(hex_id.start(), hex_id.end())]
        done = hex_id.end()
    parts.append(_redact_numbers(read.part(done, len(read.text)), keep_ipv4))
    return _Read.joined(parts)


def _redact_numbers(read: _Read, keep_ipv4: bool) -> _Read:
    read = read.sub(IBAN, _ibans)
    read = read.sub(DIGIT_GROUPS, _cards)
    read = read.sub(PHONE_DOTTED, _dotted_phone_not_ipv4 if keep_ipv4 else _phone)
    read = read.sub(PHONE, _phone_or_glued)
    return read.sub(_PHONE_EXTENSION, lambda _: "")


# Zero-width characters (space, non-joiner, joiner, word joiner, byte order mark) show
# nothing: "415\u200b555\u200b2671" reads as 4155552671, "jane\u200b@example.com" as an
# address. They are read as nothing between two of a number's characters (digits,
# separators, brackets: "(415)\u200b 555-2671"), and inside a word that holds an at
# sign, in ASCII or full-width letters (see _WIDE_NAME).
# Not between a letter and a digit outside such a word: "call\u200b415 555 2671" is a
# number after a word ("call415 555 2671" would be a reference), and the non-joiner of
# Persian words or the joiner of emoji sequences is kept wherever nothing is replaced.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_NUMBER_CHAR = rf"[\d{_SEP}{_PLUS}()./_\u30fc]"
_INVISIBLE_IN_NUMBER = re.compile(rf"(?<={_NUMBER_CHAR})[{_INVISIBLE}]+(?={_NUMBER_CHAR})")
_ADDRESS_WORD = re.compile(rf"[{_WIDE_NAME}{_AT_SIGNS}%{_INVISIBLE}]+")
_AT_SIGN = re.compile(rf"[{_AT_SIGNS}]|%40")
_ANY_INVISIBLE = re.compile(rf"[{_INVISIBLE}]")
_INVISIBLE_INSIDE = re.compile(rf"(?<![{_INVISIBLE}])[{_INVISIBLE}]+(?![{_INVISIBLE}])")


def _invisible_runs(text: str) -> list[tuple[int, int]]:
    """The runs of zero-width characters that are read as nothing, as (start, end), in order."""
    if _ANY_INVISIBLE.search(text) is None:
        return []
    runs = {match.span() for match in _INVISIBLE_IN_NUMBER.finditer(text)}
    for word in _ADDRESS_WORD.finditer(text):
        start, end = word.span()
        if _AT_SIGN.search(text, start, end) and _ANY_INVISIBLE.search(text, start, end):
            runs.update(
                match.span()
                for match in _INVISIBLE_INSIDE.finditer(text, start, end)
                if start < match.start() and match.end() < end  # inside the word, not at its ends
            )
    return sorted(runs)


def _without(text: str, runs: list[tuple[int, int]]) -> tuple[str, list[int]]:
    """The text without the runs, and the index in the text of each character left."""
    parts, done = [], 0
    at: list[int] = []
    for start, end in runs:
        parts.append(text[done:start])
        at.extend(range(done, start))
        done = end
    parts.append(text[done:])
    at.extend(range(done, len(text)))
    return "".join(parts), at


class _Read:
    """Text being redacted and, where invisible characters were taken out of it, the index
    of each of its characters in the text so read (``src``): -1 for one that redaction
    wrote. A match that is rewritten is written anew whole (what it keeps too), so the
    invisible characters inside it go with it."""

    __slots__ = ("src", "text")

    def __init__(self, text: str, src: list[int] | None = None) -> None:
        self.text, self.src = text, src

    def sub(self, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> _Read:
        if self.src is None:
            return _Read(pattern.sub(repl, self.text))
        text, src, parts, done = self.text, self.src, [], 0
        new_src: list[int] = []
        for match in pattern.finditer(text):
            written = repl(match)
            if written == match.group(0):
                continue
            parts += [text[done : match.start()], written]
            new_src += src[done : match.start()]
            new_src += [-1] * len(written)
            done = match.end()
        parts.append(text[done:])
        new_src += src[done:]
        return _Read("".join(parts), new_src)

    def part(self, start: int, end: int) -> _Read:
        return _Read(self.text[start:end], None if self.src is None else self.src[start:end])

    @staticmethod
    def joined(parts: list[_Read]) -> _Read:
        text = "".join(part.text for part in parts)
        if any(part.src is None for part in parts):
            return _Read(text)
        return _Read(text, [i for part in parts for i in part.src or ()])


def _put_back(text: str, at: list[int], read: _Read) -> str:
    """The redacted text with the invisible characters put back between characters of the
    text that redaction kept side by side, and next to what was replaced, outside it
    ("call\\u200b415 555 2671\\u200b." keeps both: neither is part of the number)."""
    written, src = read.text, read.src
    assert src is not None
    out, i = [], 0
    while i < len(written):
        j = i + 1
        if src[i] < 0:
            while j < len(written) and src[j] < 0:
                j += 1
            out.append(written[i:j])
            i = j
            continue
        while j < len(written) and src[j] == src[j - 1] + 1:
            j += 1
        first, last = src[i], src[j - 1]
        if i > 0 and first > 0:  # after what was replaced (or removed)
            out.append(text[at[first - 1] + 1 : at[first]])
        out.append(text[at[first] : at[last] + 1])
        if j < len(written) and last + 1 < len(at):  # before what was replaced
            out.append(text[at[last] + 1 : at[last + 1]])
        i = j
    return "".join(out)


# Longer than any personal-data match that matters (an email address has at most 254),
# even written as JSON escapes of six characters each.
_LONGEST_MATCH = 6 * 320


def redact_capped(text: str, limit: int) -> tuple[str, bool]:
    """Redact, then cap to ``limit`` characters; returns (text, truncated)."""
    return cap(redacted_head(text, limit), limit)  # truncated whenever the prefix was shorter than the text


def redacted_head(text: str, limit: int) -> str:
    """The redacted form of a prefix of ``text`` that holds the first ``limit`` characters
    of the whole text's redacted form, and more where the text has more: what
    :func:`redact_capped` caps. The character after the cap (kept here) says whether the
    cap cut a word (see the classifier's entity tagging).

    Only a prefix is redacted, but one long enough that its redacted form runs at least
    ``_LONGEST_MATCH`` characters past the cap: a number or address cut at the prefix's
    end then lies wholly in the part that is dropped. (Redaction shortens text, so a
    fixed prefix could leave such a cut inside the part that is kept.)"""
    end = 2 * limit + _LONGEST_MATCH
    while True:
        redacted = redact(text[:end])
        if end >= len(text) or len(redacted) >= limit + _LONGEST_MATCH:
            return redacted
        end *= 2


def cap(text: str, limit: int) -> tuple[str, bool]:
    """Cap text for storage; returns (text, truncated)."""
    if len(text) <= limit:
        return text, False
    return text[: limit - 1] + "…", True


# Phone numbers in identifiers (a chat keyed by the customer's number, as SMS and WhatsApp
# gateways do). Ids are short (at most 128 characters), and stricter than text: a number
# counts when a messaging scheme names it ("whatsapp:+447911123456", "tel:07911123456"),
# when it is dialled with its country code ("conv-+44 7911 123456"), or when the whole id is
# a number written with separators ("415-555-2671", "(415) 555-2671", "07911 123456").
# A bare run of digits ("447911123456", "1234567890") is kept: an order number or a
# timestamp as often as a phone number.
_ID_NUMBER = rf"[(]?\d(?:[{_SEP}.()]{{0,2}}\d){{6,14}}(?!\d)"
_ID_PHONE_SCHEME = re.compile(
    rf"(?i)(?<![a-z])(?:tel|sms|mms|whatsapp|wa|phone|mobile|msisdn|viber|signal|callto|fax)"
    rf"[:=/_\-]+[{_PLUS}]?{_ID_NUMBER}"
)
_ID_INTERNATIONAL = re.compile(rf"(?<!\w)[{_PLUS}]{_ID_NUMBER}")
_ID_NUMBER_ONLY = re.compile(rf"[{_PLUS}]?[\d{_SEP}.()/]+")


def _id_holds_phone(value: str) -> bool:
    if _ID_PHONE_SCHEME.search(value) or _ID_INTERNATIONAL.search(value):
        return True
    whole = value.strip()
    if _ID_NUMBER_ONLY.fullmatch(whole) is None or whole.isdigit():
        return False
    return 9 <= sum(ch.isdigit() for ch in whole) <= 15  # 9+: a date ("2026-11-30") has 8


def id_holds_personal_data(value: str) -> bool:
    """Whether an identifier holds an email address, a phone number (see ``_id_holds_phone``),
    a payment card number or an IBAN (found as in text: Luhn- and mod-97-checked), read as
    text is: with a full-width or small at sign, zero-width characters read as nothing
    ("jane\\u200b@example.com", see _invisible_runs)."""
    runs = _invisible_runs(value)
    if runs:
        value = _without(value, runs)[0]
    if _AT_SIGN.search(value) and EMAIL.search(value) is not None:  # %40: a URL-encoded "@"
        return True
    if not any(ch.isdigit() for ch in value):
        return False
    return _id_holds_phone(value) or DIGIT_GROUPS.sub(_cards, value) != value or IBAN.sub(_ibans, value) != value


def pseudonymise(value: str, key: bytes) -> str:
    """An identifier (event id, conversation id) that holds personal data (an email address,
    a phone, card or IBAN number: :func:`id_holds_personal_data`), replaced by a stable
    pseudonym ``pii-<HMAC-SHA256(key, value), 32 hex digits>``: the same id always gives the
    same pseudonym, so ledgers, deduplication and conversations still work, but the number
    or address is not stored. Any other id is returned as it is (order numbers, timestamps
    and bare runs of digits are kept)."""
    if not id_holds_personal_data(value):
        return value
    return "pii-" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]
