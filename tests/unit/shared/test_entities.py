from __future__ import annotations

import re
import unicodedata

import pytest

from shared import entities
from shared.entities import ALL, EntityMatcher, WatchedEntity

BP = WatchedEntity("BP", "BP plc", aliases=("British Petroleum",), tickers=("BP",), case_sensitive_aliases=("BP",))
TESLA = WatchedEntity("TSLA", "Tesla", aliases=("Tesla",), tickers=("TSLA",))
JL = WatchedEntity("JL", "John Lewis", aliases=("John Lewis", "John Lewis Partnership", "Waitrose"))
M = EntityMatcher([BP, TESLA, JL])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BP profits fall", ["BP", ALL]),
        ("bp is lowercase here", [ALL]),
        ("British petroleum and Tesla", ["BP", "TSLA", ALL]),
        ("$tsla rallies while $BP slips", ["TSLA", "BP", ALL]),
        ("Teslas everywhere", [ALL]),
        ("BPX is another company", [ALL]),
        ("John Lewis Partnership closes stores", ["JL", ALL]),
        ("John Lewis Partnerships are rare", ["JL", ALL]),  # longest alias fails the boundary
        ("JOHN LEWIS and waitrose", ["JL", ALL]),
        ("Waitrose and John Lewis", ["JL", ALL]),
        ("", [ALL]),
    ],
)
def test_tagging(text: str, expected: list[str]) -> None:
    assert M.tag(text) == expected


def test_invalid_keys_rejected() -> None:
    with pytest.raises(ValueError, match="invalid entity key"):
        WatchedEntity("_all", "reserved")
    with pytest.raises(ValueError, match="invalid entity key"):
        WatchedEntity("has space", "x")


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Acme\x00"},
        {"name": "Acme", "aliases": ("Acme\nCorp",)},
        {"name": "Acme", "tickers": ("AC\tM",)},
        {"name": "Acme", "case_sensitive_aliases": ("AC\x7f",)},
        {"name": "Acme", "group": "ind\x00"},
    ],
)
def test_control_characters_in_names_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"entity ACME: .* must not contain control characters"):
        WatchedEntity("ACME", **fields)  # type: ignore[arg-type]


WIDE = [
    BP,
    TESLA,
    JL,
    WatchedEntity("MS", "Marks & Spencer", aliases=("Marks & Spencer", "M&S", "Marks and Spencer", "Spencer")),
    WatchedEntity("LL", "Lloyds", aliases=("Lloyds", "Lloyds Banking Group", "Lloyd")),
    WatchedEntity(
        "AB", "A.B. Foods", aliases=("A.B. Foods", "AB Foods", "Associated British Foods"), tickers=("ABF.L",)
    ),
]
TEXTS = [
    "Marks & Spencer and M&S Food; Spencer alone",
    "XMarks & Spencer overlaps: Spencer still counts",
    "Lloyds Banking Groups, Lloyd's of London, Lloyds' results",
    "A.B. Foods up, AB Foodsy down, $ABF.L flat, associated british foods",
    "lloyds lloyd LLOYDS BANKING GROUP",
    "M&Sx M&S-run stores (Waitrose) [Tesla] 'BP'",
    "",
]


def _flat_alternation(words: object) -> str:
    assert isinstance(words, list)
    return "|".join(re.escape(w) for w in sorted({w for w in words if w.strip()}, key=len, reverse=True))


def test_trie_pattern_matches_like_a_longest_first_alternation(monkeypatch: pytest.MonkeyPatch) -> None:
    trie = EntityMatcher(WIDE)
    monkeypatch.setattr(entities, "_alternation", _flat_alternation)
    flat = EntityMatcher(WIDE)
    for text in TEXTS:
        assert trie.tag(text) == flat.tag(text), text
    assert trie.tag(TEXTS[0]) == ["MS", ALL]


def test_casefolded_aliases_match_their_own_spelling_and_other_cases() -> None:
    m = EntityMatcher(
        [
            WatchedEntity("STR", "Straße AG", aliases=("Straße AG",)),
            WatchedEntity("ISB", "İş Bankası", aliases=("İş Bankası",)),
            WatchedEntity("TSLA", "Tesla", aliases=("Tesla",)),
        ]
    )
    assert m.tag("Straße AG reports") == ["STR", ALL]
    assert m.tag("STRASSE AG reports") == ["STR", ALL]
    assert m.tag("strasse ag") == ["STR", ALL]
    assert m.tag("İş Bankası kâr") == ["ISB", ALL]
    assert m.tag("Straßen AG") == [ALL]  # still a word boundary
    # Positions are in the casefolded text: first mention still comes first.
    assert m.tag("Straße AG and Tesla") == ["STR", "TSLA", ALL]
    assert m.tag("Tesla and ßßßß Straße AG") == ["TSLA", "STR", ALL]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("रामायण का पाठ", [ALL]),  # राम + vowel sign: inside a word
        ("राम ने कहा", ["RAM", ALL]),
        ("श्रीराम", [ALL]),  # virama before: inside a word
        ("टाटा मोटर्स", [ALL]),
        ("टाट समूह", ["TAT", ALL]),
        ("cafe\u0301", [ALL]),  # decomposed: e + combining acute accent
        ("cafe open", ["CAFE", ALL]),
    ],
)
def test_combining_marks_are_part_of_words(text: str, expected: list[str]) -> None:
    m = EntityMatcher(
        [
            WatchedEntity("RAM", "Ram", aliases=("राम",)),
            WatchedEntity("TAT", "Tat", aliases=("टाट",)),
            WatchedEntity("CAFE", "Cafe", aliases=("cafe",)),
        ]
    )
    assert m.tag(text) == expected


UNSPACED = EntityMatcher(
    [
        WatchedEntity("TOYOTA", "Toyota", aliases=("トヨタ", "丰田")),
        WatchedEntity("SAMSUNG", "Samsung", aliases=("삼성", "Samsung")),
        WatchedEntity("PTT", "PTT", aliases=("ปตท",)),
        WatchedEntity("SONY", "Sony", aliases=("Sonyグループ", "Sony")),
    ]
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("トヨタ自動車が発表", ["TOYOTA", ALL]),
        ("新型トヨタ車", ["TOYOTA", ALL]),
        ("丰田汽车召回", ["TOYOTA", ALL]),
        ("삼성전자가 발표", ["SAMSUNG", ALL]),
        ("หุ้นปตทขึ้น", ["PTT", ALL]),
        ("Sonyグループの決算", ["SONY", ALL]),
        ("xSonyグループ", [ALL]),  # the Latin side still needs its word boundary
        ("Samsungs", [ALL]),
        ("Sony가", ["SONY", ALL]),  # a Korean particle on a Latin name: Hangul is a boundary for a Latin end
    ],
)
def test_unspaced_scripts_match_as_substrings(text: str, expected: list[str]) -> None:
    assert UNSPACED.tag(text) == expected


LATIN_EDGES = EntityMatcher(
    [
        WatchedEntity("ACME", "Acme", aliases=("ACME",)),
        WatchedEntity("SONY", "Sony", aliases=("Sony",)),
        WatchedEntity("TOYOTA", "Toyota", aliases=("Toyota",)),
        WatchedEntity("PTT", "PTT", aliases=("PTT",)),
        WatchedEntity("BP", "BP plc", case_sensitive_aliases=("BP",)),
        WatchedEntity("TAT", "Tat", aliases=("टाट",)),
    ]
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sony㍿", ["SONY", ALL]),  # ㍿ is 株式会社 in NFKC
        ("Sony株式会社の決算", ["SONY", ALL]),
        ("トヨタToyotaの新車", ["TOYOTA", ALL]),
        ("新型Toyota", ["TOYOTA", ALL]),
        ("株価BP急落", ["BP", ALL]),  # case-sensitive aliases too
        ("Sonyが発表", ["SONY", ALL]),
        ("Sony가 발표", ["SONY", ALL]),
        ("หุ้นPTTขึ้น", ["PTT", ALL]),
        ("ที่PTT", ["PTT", ALL]),  # a Thai tone mark before: it sits on the Thai letter
        ("टाट株", ["TAT", ALL]),  # a Devanagari end is a spaced-script end too
        ("Acme＿Corp", ["ACME", ALL]),  # the full-width low line is "_" in NFKC
        ("Acme_Corp", ["ACME", ALL]),
        ("#acme_news", ["ACME", ALL]),
        ("Sony_Toyota", ["SONY", "TOYOTA", ALL]),
    ],
)
def test_a_spaced_script_edge_has_a_boundary_at_an_unspaced_script_or_underscore(
    text: str, expected: list[str]
) -> None:
    assert LATIN_EDGES.tag(text) == expected


def test_a_spaced_script_edge_still_needs_a_boundary_against_its_own_letters_and_digits() -> None:
    expected = {
        "Sony株式会社": ["SONY", ALL],
        "xSony株式会社": [ALL],
        "Sonya": [ALL],
        "Acmeology": [ALL],
        "ACME2": [ALL],
        "2ACME": [ALL],
        "ACME2株": [ALL],
        "株2ACME": [ALL],
        "$ACME": [ALL],  # an alias, not a cashtag
        "BPX株": [ALL],
        "Acme\u0301": [ALL],  # an accent on its last letter
        "कीAcme": [ALL],  # a Devanagari vowel sign before
    }
    assert {text: LATIN_EDGES.tag(text) for text in expected} == expected


def test_a_shared_alias_tags_every_entity_that_has_it() -> None:
    m = EntityMatcher(
        [
            WatchedEntity("apple", "Apple Inc.", aliases=("Apple",)),
            WatchedEntity("apple-rec", "Apple Records", aliases=("apple", "Apple Records")),
            WatchedEntity("AAPL", "Apple (ticker)", tickers=("AAPL",), case_sensitive_aliases=("APPL",)),
            WatchedEntity("AAPL2", "Apple (ticker, again)", tickers=("$aapl",), case_sensitive_aliases=("APPL",)),
        ]
    )
    assert m.tag("Apple sues") == ["apple", "apple-rec", ALL]
    assert m.tag("Apple Records signs") == ["apple-rec", ALL]
    assert m.tag("APPL and $AAPL") == ["AAPL", "AAPL2", ALL]


def test_surrounding_whitespace_is_stripped() -> None:
    e = WatchedEntity(
        "TSLA", " Tesla ", aliases=("Tesla ", " ", "\u00a0Tesla Inc"), tickers=(" TSLA",), group=" autos "
    )
    assert (e.name, e.aliases, e.tickers, e.group) == ("Tesla", ("Tesla", "Tesla Inc"), ("TSLA",), "autos")
    assert EntityMatcher([e]).tag("Tesla rises, $TSLA too") == ["TSLA", ALL]


@pytest.mark.parametrize("ticker", ["TSLA", "$TSLA", "BRK.B", "ABF.L", "A", "X123456789"])
def test_matchable_tickers_accepted(ticker: str) -> None:
    assert entities.cashtag_ticker(ticker) == ticker
    m = EntityMatcher([WatchedEntity("K", "k", tickers=(ticker,))])
    assert m.tag(f"${ticker.lstrip('$')} moves") == ["K", ALL]


@pytest.mark.parametrize("ticker", ["RDS-A", "7203", "ABF.", "", "TOOLONGTICKER", "$", "T SLA"])
def test_tickers_a_cashtag_cannot_match_rejected(ticker: str) -> None:
    with pytest.raises(ValueError, match="cashtag"):
        entities.cashtag_ticker(ticker)


NORMAL_FORMS = EntityMatcher(
    [
        WatchedEntity("NESN", "Nestlé", aliases=("Nestlé",)),  # precomposed é
        WatchedEntity("LOREAL", "L'Oréal", aliases=(unicodedata.normalize("NFD", "L'Oréal"),)),  # e + accent
        WatchedEntity("ACME", "Acme", aliases=("ACME",), tickers=("ACME",)),
        WatchedEntity("TSLA", "Tesla", aliases=("Tesla",), tickers=("TSLA",)),
        WatchedEntity("BP", "BP plc", case_sensitive_aliases=("BP",)),
        WatchedEntity("SONY", "Sony", case_sensitive_aliases=("ＳＯＮＹ",)),  # an alias in full width
        WatchedEntity("GF", "Global Finance", aliases=("Global Finance",)),
        WatchedEntity("TOYOTA", "Toyota", aliases=("トヨタ",)),
        WatchedEntity("SAMSUNG", "Samsung", aliases=("삼성",)),
        WatchedEntity("ZEE", "Zee", aliases=("\u095bी",)),  # precomposed ज़ (a composition exclusion)
    ]
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Nestle\u0301 profits rise", ["NESN", ALL]),  # decomposed text, precomposed alias
        ("L'Oréal shares", ["LOREAL", ALL]),  # precomposed text, decomposed alias
        ("ＡＣＭＥ、新製品を発表", ["ACME", ALL]),  # full width
        ("ａｃｍｅ and ＴＥＳＬＡ", ["ACME", "TSLA", ALL]),
        ("＄ＴＳＬＡ、＄ａｃｍｅ 急落", ["TSLA", "ACME", ALL]),  # full-width cashtags
        ("ＢＰ profits fall", ["BP", ALL]),
        ("ｂｐ is still lowercase", [ALL]),  # a case-sensitive alias stays case-sensitive
        ("SONY beats forecasts", ["SONY", ALL]),
        ("Global ﬁnance weekly", ["GF", ALL]),  # the fi ligature
        ("ﾄﾖﾀ自動車", ["TOYOTA", ALL]),  # half-width katakana
        (unicodedata.normalize("NFD", "삼성전자가 발표"), ["SAMSUNG", ALL]),  # conjoining jamo
        ("ज\u093cी न्यूज़", ["ZEE", ALL]),  # ज + nukta
        ("ＡＣＭＥｓ rally", [ALL]),  # word boundaries still apply after normalising
        ("Nestle profits", [ALL]),  # an accent is not a case: another spelling
    ],
)
def test_aliases_and_text_match_in_any_normal_form(text: str, expected: list[str]) -> None:
    assert NORMAL_FORMS.tag(text) == expected


@pytest.mark.parametrize("form", ["NFC", "NFD", "NFKC", "NFKD"])
@pytest.mark.parametrize(
    "text", ["Nestlé and L'Oréal", "ＡＣＭＥ vs ＢＰ", "삼성전자, ﾄﾖﾀ", "ज़ी न्यूज़", "İŞ BANKASI, Straße AG"]
)
def test_tags_do_not_depend_on_the_texts_normal_form(form: str, text: str) -> None:
    m = EntityMatcher(
        [
            *NORMAL_FORMS.entities.values(),
            WatchedEntity("ISB", "İş Bankası", aliases=("İş Bankası",)),
            WatchedEntity("STR", "Straße AG", aliases=("Straße AG",)),
        ]
    )
    assert len(m.tag(text)) > 1
    assert m.tag(unicodedata.normalize(form, text)) == m.tag(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Acme™ shares jump", ["ACME", ALL]),  # not "AcmeTM"
        ("™ACME", ["ACME", ALL]),
        ("ACME℠, up 3℃", ["ACME", ALL]),
        ("Ｔｅｓｌａ＿ＡＣＭＥ", ["TSLA", "ACME", ALL]),  # punctuation is normalised: "＿" is "_", a boundary
    ],
)
def test_symbols_whose_compatibility_form_is_letters_keep_word_boundaries(text: str, expected: list[str]) -> None:
    assert NORMAL_FORMS.tag(text) == expected


@pytest.mark.parametrize("text", ["İş Bankası kâr", "İŞ BANKASI HİSSELERİ", "iş bankası", "IŞ BANKASI", "Iş Bankası"])
def test_dotted_and_dotless_i_are_one_letter_case_insensitively(text: str) -> None:
    m = EntityMatcher(
        [
            WatchedEntity("ISB", "İş Bankası", aliases=("İş Bankası",)),
            WatchedEntity("ISIK", "Işık Holding", aliases=("Işık Holding",)),
        ]
    )
    assert m.tag(text) == ["ISB", ALL]
    assert m.tag(f"{text.upper()}, IŞIK HOLDİNG") == ["ISB", "ISIK", ALL]


def test_other_turkish_spellings_and_case_sensitive_aliases_stay_apart() -> None:
    m = EntityMatcher(
        [
            WatchedEntity("ISB", "İş Bankası", aliases=("İş Bankası",)),
            WatchedEntity("ISCTR", "İşbank (code)", case_sensitive_aliases=("İŞCTR",)),
        ]
    )
    assert m.tag("IS BANKASI") == [ALL]  # s is not ş: list an ASCII spelling as an alias of its own
    assert m.tag("İş Bankasıyla") == [ALL]  # still a word boundary
    assert m.tag("İŞCTR") == ["ISCTR", ALL]
    assert m.tag("IŞCTR") == [ALL]  # case-sensitive: not folded


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # positions are compared in one text however much folding or NFKC grew the text before
        ("ßßßßßßßß Tesla BP", ["TSLA", "BP", ALL]),
        ("\ufdfa Tesla, BP", ["TSLA", "BP", ALL]),  # one character, 18 once normalised
        ("\ufdfa BP, Tesla", ["BP", "TSLA", ALL]),
        ("İİİİİİİİ Tesla $ACME", ["TSLA", "ACME", ALL]),
        # an entity's first mention is its earliest, of whichever kind
        ("BP and Tesla, then British Petroleum", ["BP", "TSLA", ALL]),
        ("$ACME, Tesla, then Acme", ["ACME", "TSLA", ALL]),
    ],
)
def test_entities_are_ordered_by_first_mention_across_kinds_of_match(text: str, expected: list[str]) -> None:
    m = EntityMatcher(
        [
            WatchedEntity("BP", "BP plc", aliases=("British Petroleum",), case_sensitive_aliases=("BP",)),
            WatchedEntity("TSLA", "Tesla", aliases=("Tesla",)),
            WatchedEntity("ACME", "Acme", aliases=("Acme",), tickers=("ACME",)),
        ]
    )
    assert m.tag(text) == expected


def test_normalising_and_ordering_take_one_pass_over_a_long_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Linear in the text: folded once for matching and at most once more to place the
    case-sensitive matches, not once per match."""
    keys = [f"K{i}" for i in range(200)]
    m = EntityMatcher(
        [
            WatchedEntity("TSLA", "Tesla", aliases=("Tesla",)),
            *(WatchedEntity(k, k, case_sensitive_aliases=(f"Z{k}",)) for k in keys),
        ]
    )
    text = "Straße Tesla " + " ".join(f"Z{k} ß" for k in keys) * 20
    folded: list[int] = []
    real = entities._fold_normalized
    monkeypatch.setattr(entities, "_fold_normalized", lambda s: folded.append(len(s)) or real(s))
    assert m.tag(text) == ["TSLA", *keys, ALL]
    assert sum(folded) <= 2 * len(text)


INVISIBLE = EntityMatcher(
    [
        WatchedEntity("ACME", "Acme", aliases=("ACME",)),
        WatchedEntity("TSLA", "Tesla", aliases=("Tesla",)),
        WatchedEntity("BP", "BP plc", case_sensitive_aliases=("BP",)),
        WatchedEntity("TOYOTA", "Toyota", aliases=("トヨタ",)),
        WatchedEntity("RAM", "Ram", aliases=("राम",)),
    ]
)


@pytest.mark.parametrize(
    "char",
    [
        "\u00ad",  # soft hyphen
        "\u200b",  # zero-width space
        "\u200c",  # zero-width non-joiner
        "\u200d",  # zero-width joiner
        "\u2060",  # word joiner
        "\ufeff",  # byte order mark, zero-width no-break space
        "\u180e",  # Mongolian vowel separator
        "\U000e0041",  # tag latin capital letter a
    ],
)
def test_invisible_format_characters_inside_a_name_are_ignored(char: str) -> None:
    assert INVISIBLE.tag(f"Ac{char}me shares slump") == ["ACME", ALL]
    assert INVISIBLE.tag(f"A{char}{char}C{char}M{char}E") == ["ACME", ALL]
    assert INVISIBLE.tag(f"{char}B{char}P{char} profits") == ["BP", ALL]
    assert INVISIBLE.tag(f"ト{char}ヨタ自動車") == ["TOYOTA", ALL]
    assert INVISIBLE.tag(f"Ac{char}meology, Tesla{char}s") == [ALL]  # still whole words


def test_invisible_format_characters_in_an_alias_are_ignored() -> None:
    m = EntityMatcher(
        [WatchedEntity("ACME", "Acme", aliases=("Ac\u00adme\u200b",), case_sensitive_aliases=("A\u2060C",))]
    )
    assert m.tag("Acme shares slump") == ["ACME", ALL]
    assert m.tag("AC rises") == ["ACME", ALL]


def test_an_alias_of_nothing_but_invisible_characters_matches_nothing() -> None:
    m = EntityMatcher(
        [
            WatchedEntity("X", "x", aliases=("\u200b",), case_sensitive_aliases=("\u00a0\u00ad\u00a0",)),
            WatchedEntity("TSLA", "Tesla", aliases=("Tesla\u00a0\u2060",)),  # a no-break space inside: stripped
        ]
    )
    assert m.tag("a \u200b b \u00ad c") == [ALL]
    assert m.tag("Tesla rises") == ["TSLA", ALL]


@pytest.mark.parametrize(
    "text",
    [
        "\u05d1\u2067Ac\u00adme\u2069",  # a right-to-left isolate around a Latin name in Hebrew
        "\u0634\u202aAC\u200bME\u202c",  # a left-to-right embedding in Arabic
        "\u05d1\u200eAc\u00adme",  # a left-to-right mark
        "\u0634\u061cAc\u00adme",  # an Arabic letter mark
        "x\u2063Ac\u00adme",  # INVISIBLE SEPARATOR
    ],
)
def test_format_characters_that_stand_between_words_stay_boundaries(text: str) -> None:
    assert INVISIBLE.tag(text) == ["ACME", ALL]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\u200b" * 40 + "Tesla then B\u00adP", ["TSLA", "BP", ALL]),
        ("B\u00adP, \u00ad" * 3 + "ßß Tesla", ["BP", "TSLA", ALL]),
        ("Tesla\u00ad, " + "\u200b" * 40 + "A\u200bCME", ["TSLA", "ACME", ALL]),
        ("\u200dराम ने B\u00adP", ["RAM", "BP", ALL]),
    ],
)
def test_first_mention_order_holds_with_invisible_characters_removed(text: str, expected: list[str]) -> None:
    assert INVISIBLE.tag(text) == expected


def test_a_zero_width_joiner_does_not_split_an_indic_word() -> None:
    assert INVISIBLE.tag("राम\u200dायण, Ac\u00adme") == ["ACME", ALL]  # removed, not a boundary
