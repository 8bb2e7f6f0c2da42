"""Redaction of text a reviewer found unsafe or missed: runs of digits longer than Python
reads as one int (4,300 digits), which made redaction raise (the classifier dead-lettered
the event, the log scrubber printed the line unredacted); addresses written with the
full-width or small at sign; and zero-width characters inside a number or an address."""

from __future__ import annotations

import pytest

from shared.logs import scrub
from shared.redact import id_holds_personal_data, pseudonymise, redact, redact_capped

_SCRIPTS = {
    "ascii": "0123456789",
    "full-width": "０１２３４５６７８９",
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "devanagari": "०१२३४५६७८९",
}


def _run(digits: str, n: int) -> str:
    return "".join(digits[(i * 7 + 3) % 10] for i in range(n))


@pytest.mark.parametrize("script", _SCRIPTS)
@pytest.mark.parametrize("n", [4_301, 5_000, 50_000])
@pytest.mark.parametrize("layout", ["{}", "Ref {} shares up", "1 {} 2 3 4", "{} {} {} {}", "{}-{}", "{}.5"])
def test_a_run_of_digits_longer_than_an_int_reads_passes_through(script: str, n: int, layout: str) -> None:
    run = _run(_SCRIPTS[script], n)
    text = layout.format(*[run] * layout.count("{}"))
    assert redact(text) == text
    assert redact(text, keep_ipv4=True) == text
    assert redact_capped(text, 4000)[0] == text[:3999] + "…"
    assert not id_holds_personal_data(text)


def test_personal_data_next_to_a_long_run_is_still_redacted() -> None:
    text = "card 4111 1111 1111 1111 mail jane@example.com ref " + "7" * 4301
    assert redact(text) == "card [CARD] mail [EMAIL] ref " + "7" * 4301
    assert redact('{"text": "' + text + '"}') == '{"text": "card [CARD] mail [EMAIL] ref ' + "7" * 4301 + '"}'


def test_the_log_scrubber_redacts_a_line_with_a_long_run() -> None:
    line = scrub("dead-lettering news.raw[0]@5: mail jane@example.com ref " + "7" * 4301)
    assert "jane@example.com" not in line
    assert "[EMAIL]" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe\uff20example.com today", "write to [EMAIL] today"),
        ("ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "[EMAIL]"),
        ("ＪＡＮＥ＠ＥＸＡＭＰＬＥ．ＣＯＭ", "[EMAIL]"),
        ("jane\ufe6bexample.com", "[EMAIL]"),
        ("お問い合わせはjane＠example.co.jpまでどうぞ", "お問い合わせは[EMAIL]までどうぞ"),
        ("jane@example．com", "[EMAIL]"),
        ("mail jane＠163.com", "mail [EMAIL]"),
    ],
)
def test_an_address_with_a_full_width_or_small_at_sign_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1個＠100円",  # "at 100 yen each"
        "単価1個＠100円．次に",
        "1袋＠1.5kg です",
        "x 1＠1.5kg",
        "price＠10.00 each",
        "jane＠example。次の方",  # the ideographic full stop ends a sentence
        "＠＠＠ ＠jane",
    ],
)
def test_an_at_sign_that_means_each_is_no_address(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("415\u200b555\u200b2671", "[PHONE]"),
        ("call 415\u200c-555-\u200d2671 now", "call [PHONE] now"),
        ("41\u200b11 1111 1111 1111", "[CARD]"),
        ("4111\u2060 1111 1111 1111", "[CARD]"),
        ("jane\u200b@example.com", "[EMAIL]"),
        ("mail ja\ufeffne@exam\u200bple.com today", "mail [EMAIL] today"),
        ("jane\u200b＠example.com", "[EMAIL]"),
        ("+44\u200b20\u200b7946\u200b0958", "[PHONE]"),
        ("(415)\u200b 555-2671", "[PHONE]"),
        # invisible characters outside what is replaced are kept where they were
        ("call\u200b415 555 2671\u200b.", "call\u200b[PHONE]\u200b."),
        ("say \u200c4\u200d15 555 2671 \u200dthanks", "say \u200c[PHONE] \u200dthanks"),
        # written as JSON escapes
        ('{"text": "415\\u200b555\\u200b2671"}', '{"text": "[PHONE]"}'),
    ],
)
def test_zero_width_characters_inside_personal_data_are_read_as_nothing(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "می\u200cخواهم ۲ تا",  # Persian: the non-joiner inside a word
        "👨\u200d👩\u200d👧 3 kids, 2 cats",  # an emoji sequence
        "order\u200b12345678 shipped",
        "2019\u200b 2020\u200b 2021",
        "@jane\u200b\u200b and @bob",
        "\u200b1" * 20,
    ],
)
def test_zero_width_characters_are_kept_where_nothing_is_replaced(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    "value",
    ["jane＠example.com", "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "jane\u200b@example.com", "415\u200b-555-2671"],
)
def test_an_id_holding_such_personal_data_is_pseudonymised(value: str) -> None:
    assert id_holds_personal_data(value)
    assert pseudonymise(value, b"k").startswith("pii-")


@pytest.mark.parametrize("value", ["1個＠100円", "evt\u200b-42", "order-\u200b1234"])
def test_other_ids_are_kept(value: str) -> None:
    assert not id_holds_personal_data(value)
    assert pseudonymise(value, b"k") == value


@pytest.mark.parametrize(
    "unit",
    ["a＠", "a＠b．", "a.b＠c．d．", "a＠bb．", "\u200b1", "1\u200b ", "a\u200b@", "7", "７", "٧ ", "1\u200b-", "＠1."],
)
def test_long_adversarial_runs_are_read_once(unit: str) -> None:
    """100 KB of each, no personal data: read in one pass, not once from every start (a
    quadratic pattern would take minutes)."""
    text = unit * (100_000 // len(unit))
    assert redact(text) == text
