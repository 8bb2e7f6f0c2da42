from __future__ import annotations

import pytest

from shared.logs import scrub
from shared.redact import cap, redact, redact_capped


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe@example.com please", "write to [EMAIL] please"),
        ("call +44 7700 900123 now", "call [PHONE] now"),
        ("call 07700 900456", "call [PHONE]"),
        ("card 4111 1111 1111 1111 lost", "card [CARD] lost"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("iban ES91 2100 0418 4502 0005 1332 ok", "iban [IBAN] ok"),
        ("tel:07700900123", "tel:[PHONE]"),
        ("my number is 07700 900123: call me", "my number is [PHONE]: call me"),
        ("call 555 123 4567,555 987 6543", "call [PHONE],[PHONE]"),
        ("ring 0123456789.", "ring [PHONE]."),
        ("john.doe+tag@mail.example.co.uk wrote", "[EMAIL] wrote"),
    ],
)
def test_personal_data_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "FTSE 100 up 2.5% in 2020",
        "profit of 1,234,567 pounds",
        "2019-2020 results",
        "order 12345678",
        "runtime=33.0123456789",  # a decimal fraction, as in library log lines
        "ratio 1234567890.5",
        "paid on 2020-03-12 10:30:45 and again 2020-03-13T09:15Z",
    ],
)
def test_ordinary_numbers_are_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a card pasted with its expiry, CVV or a count next to it: the whole digit run
        # fails the Luhn check, the card inside it does not
        ("my card is 4111 1111 1111 1111 12/26 cvv 123", "my card is [CARD] 12/26 cvv 123"),
        ("4111111111111111 12/26", "[CARD] 12/26"),
        ("4111 1111 1111 1111 123", "[CARD] 123"),
        ("card 378282246310005 0926", "card [CARD] 0926"),
        ("the 3 4111 1111 1111 1111 card", "the 3 [CARD] card"),
        ("call 07700 900123 4111 1111 1111 1111", "call [PHONE] [CARD]"),
        ("4111\u00a01111\u00a01111\u00a01111", "[CARD]"),  # no-break spaces
    ],
)
def test_a_card_next_to_other_digits_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "call 415.555.2671",
        "+1.415.555.2671",
        "01.23.45.67.89",
        "+33 6.12.34.56.78",
        "030/1234567",
        "0171/1234567",
        "+44\u00a020\u00a07946\u00a00958",  # no-break spaces, as web pages paste them
        "+44\u202f20\u202f7946\u202f0958",  # narrow no-break spaces
        "415\u2013555\u20132671",  # en dashes
    ],
)
def test_dotted_slashed_and_unicode_spaced_phone_numbers_are_redacted(text: str) -> None:
    out = redact(text)
    assert "[PHONE]" in out and not any(ch.isdigit() for ch in out), out


@pytest.mark.parametrize(
    "text",
    ["12/03/2020 10:30", "2019/2020 results", "version 1.2.3", "12.03.2020", "shares 3.5 4.5 5.5 6.5", "ip 10.0.0.1"],
)
def test_dates_versions_and_decimals_are_not_phone_numbers(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kafka at 192.168.100.200:19092 unreachable", "kafka at 192.168.100.200:19092 unreachable"),
        ("db 172.16.254.100, cache 255.255.255.255.", "db 172.16.254.100, cache 255.255.255.255."),
        ("route 10.20.130.240/24 via 1.168.100.200", "route 10.20.130.240/24 via 1.168.100.200"),
        ("server 192.168.100.200 caller 555.123.4567", "server 192.168.100.200 caller [PHONE]"),
        ("from 10.1.2.3 and 192.168.100.200: call +1.555.123.4567", "from 10.1.2.3 and 192.168.100.200: call [PHONE]"),
        ("192.168.100.200 card 4111 1111 1111 1111 mail jo@example.com", "192.168.100.200 card [CARD] mail [EMAIL]"),
        # not an address: part of a longer run, a group over 255, a leading zero (dialled)
        ("192.168.100.200 1.192.168.100.200 256.168.100.200 022.123.45.67", "192.168.100.200 [PHONE] [PHONE] [PHONE]"),
    ],
)
def test_ipv4_addresses_are_not_phone_numbers_in_logs(text: str, expected: str) -> None:
    assert redact(text, keep_ipv4=True) == expected


# Every phone number format the module recognises.
PHONE_FORMATS = [
    "+44 7700 900123",
    "07700 900456",
    "07700900123",
    "555 123 4567",
    "0123456789",
    "415.555.2671",
    "555.123.4567",
    "+1.415.555.2671",
    "+1.555.123.4567",
    "01.23.45.67.89",
    "+33 6.12.34.56.78",
    "030/1234567",
    "0171/1234567",
    "+44\u00a020\u00a07946\u00a00958",
    "+44\u202f20\u202f7946\u202f0958",
    "415\u2013555\u20132671",
    "090-1234-5678",
]


@pytest.mark.parametrize("phone", PHONE_FORMATS)
def test_every_phone_format_is_still_redacted_next_to_an_ipv4_address(phone: str) -> None:
    for text in (f"host 192.168.100.200 caller {phone} end", f"caller {phone} host 192.168.100.200 end"):
        out = redact(text, keep_ipv4=True)
        assert "192.168.100.200" in out and "[PHONE]" in out, out
        assert not any(ch.isdigit() for ch in out.replace("192.168.100.200", "")), out


# Extension markers, glued to the number and its digits or spaced.
EXTENSIONS = ["x123", "X12", " x 1234", "ext12", "ext.12", " ext. 12", " Ext. 5", "extension 123456", "#12", " #1"]


@pytest.mark.parametrize("extension", EXTENSIONS)
@pytest.mark.parametrize("phone", PHONE_FORMATS)
def test_every_phone_format_is_redacted_with_its_extension(phone: str, extension: str) -> None:
    """The number used to be kept whole or half-redacted: nothing but a non-letter may
    follow it, so the regex gave up on it or backed off to a shorter match."""
    text = f"call {phone}{extension} now"
    assert redact(text) == "call [PHONE] now"
    assert redact_capped(text, 4_000) == ("call [PHONE] now", False)
    logged = redact(f"host 192.168.100.200 {text}", keep_ipv4=True)
    assert logged == "host 192.168.100.200 call [PHONE] now"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call 415-555-2671x123", "call [PHONE]"),
        ("(415)555-2671x123", "[PHONE]"),  # the bracketed area code goes with the number
        ("415.555.2671x12345", "[PHONE]"),
        ("+1-415-555-2671x1234", "[PHONE]"),
        ("020 7946 0958ext12", "[PHONE]"),
        ("00 44 20 7946 0958 extension 123456.", "[PHONE]."),
        ("tel:07700900123#12", "tel:[PHONE]"),
        ("電話番号は090-1234-5678x12です", "電話番号は[PHONE]です"),
        ("Tel. 020 7946 0958 Ext. 12, fax 020 7946 0959", "Tel. [PHONE], fax [PHONE]"),
        ("0612345678 0698765432x12", "[PHONE] [PHONE]"),  # the last of a run takes it
        ("0612345678x12 0698765432", "[PHONE] [PHONE]"),
        ("call 415-555-2671 x12 415-555-2672", "call [PHONE] [PHONE]"),
        # a marker glued to a whole number: that number is judged on its own
        ("0612345678#415-555-2671", "[PHONE]#[PHONE]"),
        ("2020-03-12#555 123 4567", "2020-03-12#[PHONE]"),
        # seven digits are not an extension: the number is redacted as before
        ("00 44 20 7946 0958 extension 1234567", "[PHONE] extension 1234567"),
    ],
)
def test_phone_numbers_with_an_extension_are_redacted_whole(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(text, keep_ipv4=True) == expected


@pytest.mark.parametrize(
    "text",
    [
        # references glued to ASCII letters, an extension or not
        "order12345678x12 and ref ABC0612345678x12",
        "0612345678x12abc 0612345678xyz 0612345678ext 12345678abc",
        "0612345678x1234567",  # seven digits after the marker: not an extension
        # dates, versions, decimals, sizes and counts with a marker after them
        "printed 2020-03-12 x 2",
        "12.03.2020 #1",
        "paid on 2020-03-12 10:30 #4",
        "version 1.2.3x4 and 10.20.30 #5",
        "runtime=33.0123456789x12",
        "ratio 1234567890.5x2",
        "prices 12.50 13.75 #2",
        "1920x1080 and 3840 x 2160",
        "1234 5678 x 3",  # eight digits: the extension does not count towards a phone number
        "2018 2019 2020 2021 2022 #1",
    ],
)
def test_ordinary_numbers_and_references_before_an_extension_marker_are_kept(text: str) -> None:
    assert redact(text) == text
    assert redact(text, keep_ipv4=True) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kafka 192.168.100.200#1 up", "kafka 192.168.100.200#1 up"),
        ("broker 192.168.100.200 x 3", "broker 192.168.100.200 x 3"),
        ("server 192.168.100.200 caller 555.123.4567 x12", "server 192.168.100.200 caller [PHONE]"),
    ],
)
def test_an_ipv4_address_before_an_extension_marker_is_kept_in_logs(text: str, expected: str) -> None:
    assert redact(text, keep_ipv4=True) == expected


def test_a_long_token_without_an_at_sign_is_kept_whole() -> None:
    token = "A1_-." * 4000  # the shape that made the old email pattern rescan from every start
    assert redact(f"token {token} end") == f"token {token} end"


def test_non_luhn_16_digits_are_not_called_a_card() -> None:
    assert "[CARD]" not in redact("ref 1234 5678 9012 3456")


def test_cap() -> None:
    assert cap("abc", 5) == ("abc", False)
    text, truncated = cap("x" * 10, 5)
    assert truncated and len(text) == 5


def test_logs_scrub_secrets_and_pii() -> None:
    line = scrub("connect postgresql://tw:s3cret@db:5432/x key tw_abcd1234_SECRETSECRETSECRET1234 mail a@b.co")
    assert "s3cret" not in line and "SECRETSECRET" not in line and "a@b.co" not in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no personal data here at all", "no personal data here at all"),
        ("mail me at jo@example.org", "mail me at [EMAIL]"),
        ("ring ٠٧٧٠٠ ٩٠٠١٢٣", "ring [PHONE]"),  # Arabic-Indic digits are digits too
    ],
)
def test_fast_path_skips_only_texts_without_at_sign_or_digit(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iban de89370400440532013000", "iban [IBAN]"),  # lower case, as customers type it
        ("IBAN: DE89-3704-0044-0532-0130-00", "IBAN: [IBAN]"),  # dashes
        ("my iban is gb29 nwbk 6016 1331 9268 19", "my iban is [IBAN]"),
        ("my iban is GB29 NWBK 6016 1331 9268 19 thanks", "my iban is [IBAN] thanks"),
        ("GB29\u00a0NWBK\u00a06016\u00a01331\u00a09268\u00a019", "[IBAN]"),
        ("pay GB29NWBK60161331926819 done", "pay [IBAN] done"),
    ],
)
def test_ibans_in_any_case_and_grouping_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my numbers are 0612345678 0698765432", "my numbers are [PHONE] [PHONE]"),
        ("415-555-2671 415-555-2672", "[PHONE] [PHONE]"),
        ("+44 7700 900123 07700 900124", "[PHONE] [PHONE]"),
        ("07700 900123 07700 900124", "[PHONE] [PHONE]"),
        ("電話番号は090-1234-5678です", "電話番号は[PHONE]です"),  # next to CJK text
        ("电话13812345678谢谢", "电话[PHONE]谢谢"),
    ],
)
def test_phone_numbers_side_by_side_or_next_to_cjk_text_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    ["4111.1111.1111.1111", "4111  1111  1111  1111", "4111 - 1111 - 1111 - 1111", "3782 822463 10005"],
)
def test_cards_with_dots_spaced_dashes_or_amex_groups_are_redacted(text: str) -> None:
    assert redact(f"card {text} ok") == "card [CARD] ok"


@pytest.mark.parametrize(
    "text",
    [
        "FY20 LOSS HITS BANK SHARES",  # looked like an IBAN in capitals; fails the mod-97 check
        "2018 2019 2020 2021 2022",  # a list of years is not two phone numbers
        "shares 1000 2000 3000 4000 5000",  # Luhn-valid by chance, but no card starts with 1
        "prices 12.50 13.75 14.20 15.10 16.30",
        "order12345678 and ref ABC0612345678",  # references glued to ASCII letters
    ],
)
def test_headline_figures_and_references_are_kept(text: str) -> None:
    assert redact(text) == text


def test_redact_capped_finds_personal_data_wherever_the_prefix_would_cut_it() -> None:
    # 330 cards shrink from 6,930 characters to 2,640 when redacted, so the contact
    # details after them are kept under a 4,000-character cap. A prefix of twice the cap
    # (what the classifier redacted before) cut them in half at some offset: "jane.smith@exa"
    # or "+44 7700" were then stored. Slide them across that offset.
    cards = "4111 1111 1111 1111, " * 330
    for pad in range(1000, 1100, 3):
        text = cards + "x" * pad + " reach me at jane.smith@example.com or +44 7700 900123 " + "y" * 5_000
        out, truncated = redact_capped(text, 4_000)
        assert truncated and len(out) == 4_000
        assert "jane" not in out and "@" not in out and "7700" not in out, pad
        assert "[EMAIL]" in out and "[PHONE]" in out, pad


def test_redact_capped_keeps_short_texts_whole() -> None:
    assert redact_capped("call 07700 900456", 4_000) == ("call [PHONE]", False)
    assert redact_capped("x" * 100, 100) == ("x" * 100, False)
    assert redact_capped("x" * 101, 100) == ("x" * 99 + "…", True)


def test_storage_redaction_takes_an_ipv4_shaped_number_for_a_phone_number() -> None:
    """The classifier stores chat and news text through redact_capped. A phone number
    can be written like an address (91.123.45.67), so stored text keeps neither."""
    text = "call 91.123.45.67 or 555.123.4567, my router is 192.168.100.200"
    assert redact_capped(text, 4_000) == ("call [PHONE] or [PHONE], my router is [PHONE]", False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a dead letter's raw JSON, as `dlq list` previews it: escaped "@", digits, and the
        # no-break spaces and short escapes json.dumps writes
        ('{"text": "mail jane\\u0040example.com"}', '{"text": "mail [EMAIL]"}'),
        ('"\\u0034\\u0031\\u0035-555-2671"', '"[PHONE]"'),
        ('{"t": "call 415\\u00a0555\\u00a02671 now"}', '{"t": "call [PHONE] now"}'),
        ('{"t": "card 4111\\u00a01111\\u00a01111\\u00a01111"}', '{"t": "card [CARD]"}'),
        ('{"t": "line one\\n0612345678\\tend"}', '{"t": "line one\\n[PHONE]\\tend"}'),
        ('{"t": "\\u0030\\u0036 12 34 56 78\\u0078\\u0031\\u0032 ok"}', '{"t": "[PHONE] ok"}'),
        ('{"t": "\\u5185\\u7dda: 03-1234-5678\\u5185\\u7dda123"}', '{"t": "内線: [PHONE]"}'),
        ('b\'{"t": "jane\\\\u0040example.com"}\'', 'b\'{"t": "[EMAIL]"}\''),  # a logged repr
        # only a run with personal data is shown decoded; the rest of the text is kept
        ('{"a": "caf\\u00e9", "b": "jane\\u0040example.com"}', '{"a": "caf\\u00e9", "b": "[EMAIL]"}'),
        # a quote or a control character stays escaped
        ('{"t": "\\u0022jane\\u0040example.com\\u0022\\u000a"}', '{"t": "\\u0022[EMAIL]\\u0022\\u000a"}'),
    ],
)
def test_personal_data_written_as_json_escapes_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(text, keep_ipv4=True) == expected
    assert redact_capped(text, 200) == (expected, False)


@pytest.mark.parametrize(
    "text",
    [
        '{"t": "caf\\u00e9 \\u00a3\\u0032.5bn on \\u0032026-11-30 at 10:30, up 3%"}',
        '{"t": "FTSE\\u00a0100 falls 3%", "q": "Q3\\u00a02024", "v": "1.2.3", "ts": "2026-11-30T10:00:00Z"}',
        '{"emoji": "\\ud83d\\ude00", "lone": "\\ud83d", "ip": "10.0.0.1"}',
        "C:\\temp\\new\\2026\\report.txt",
        "regex \\d{3}-\\d{4} and \\user",
    ],
)
def test_escaped_text_without_personal_data_is_kept_as_written(text: str) -> None:
    assert redact(text) == text


def test_redact_capped_finds_an_address_written_wholly_as_escapes_across_the_cut() -> None:
    # A preview keeps 200 characters and redacted a prefix of 720 (twice the cap and 320):
    # an address whose escapes ran past that prefix was cut there, its decoded remnant
    # ("jjj...@ddd", no domain) taken for no address, and its escaped start kept.
    address = "j" * 60 + "@" + "d" * 60 + ".example.com"
    escaped = "".join(f"\\u{ord(ch):04x}" for ch in address)
    for pad in range(100, 180, 7):
        out, truncated = redact_capped(f'{{"t": "{"x" * pad} {escaped} {"y" * 5_000}"}}', 200)
        assert truncated and out.endswith("[EMAIL] " + "y" * (183 - pad) + "…"), pad


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # dialled with a country code, a number glued to letters is one: redacted whole
        ("+1-415-555-2671abc", "[PHONE]abc"),
        ("call +1-415-555-2671abc now", "call [PHONE]abc now"),
        ("+44 20 7946 0958abc", "[PHONE]abc"),
        ("00 44 20 7946 0958abc", "[PHONE]abc"),
        ("+1-415-555-2671x12abc", "[PHONE]x12abc"),
        ("+44 7700 900123 0612345678abc", "[PHONE] 0612345678abc"),  # then a reference
        # otherwise the last chunk is a reference, kept whole; the chunks before it are
        # judged on their own
        ("0612345678 0698765432abc", "[PHONE] 0698765432abc"),
        ("415-555-2671abc", "415-555-2671abc"),
        ("0012345678abcdef", "0012345678abcdef"),  # a hex digest, not a dialled number
        ("2026-11-30 10h30", "2026-11-30 10h30"),
        ("2026-11-30T10:00:00Z", "2026-11-30T10:00:00Z"),
    ],
)
def test_a_number_glued_to_letters_is_never_half_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(text, keep_ipv4=True) == expected


@pytest.mark.parametrize(
    "text",
    [
        "03-1234-5678 内線 123",
        "03-1234-5678内線123",
        "03-1234-5678\u3000内線\u3000123",  # ideographic spaces
        "+81 3-1234-5678 内線 12",
        "03.1234.5678内線123",
    ],
)
def test_the_japanese_extension_word_goes_with_the_number(text: str) -> None:
    assert redact(f"電話 {text} まで") == "電話 [PHONE] まで"
    assert redact(f"電話{text}まで") == "電話[PHONE]まで"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(415)555-2671", "[PHONE]"),
        ("(415) 555-2671", "[PHONE]"),
        ("call (415) 555-2671 now", "call [PHONE] now"),
        ("call (415)555-2671, (415) 555-2672.", "call [PHONE], [PHONE]."),
        ("(020) 7946 0958", "[PHONE]"),
        ("+1 (415) 555-2671", "[PHONE]"),
        ("(0612345678)", "([PHONE])"),  # a bracketed number keeps its brackets
        ("(call 415-555-2671)", "(call [PHONE])"),
    ],
)
def test_a_bracketed_area_code_is_redacted_with_its_number(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(text, keep_ipv4=True) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Boeing 737 (2019) and Airbus (A320)",
        "FTSE 100 falls 3% (2.5%) in Q3 2024",
        "(1) item, (12) 34, (2026) results",
        "paid $1,234.56 (£2.5bn) on 2026-11-30 at 10:30:45",
        "version (1.2.3) released 2026-11-30T10:00:00Z",
        "内線 123 and ext 12 with no number",
    ],
)
def test_brackets_years_amounts_and_extension_words_alone_are_kept(text: str) -> None:
    assert redact(text) == text
    assert redact(text, keep_ipv4=True) == text


UUID = "12345678-1234-a234-8234-123456789abc"


@pytest.mark.parametrize(
    "text",
    [
        # UUIDs (event, trace and order ids) in any case, also with digits only in some groups
        UUID,
        f"event {UUID} failed",
        "id 12345678-1234-4234-8234-123456789012 done",
        "id 550E8400-E29B-41D4-A716-446655440000, retry",
        "id 550e8400-e29b-41d4-a716-446655440000.",
        f"{{{UUID}}} urn:uuid:{UUID} evt_{UUID} ({UUID})",
        f'{{"event_id": "{UUID}", "trace": "{UUID.upper()}"}}',
        # hex digests whose digit runs looked like a card, and a trace id that passed as an IBAN
        "sha 4111111111111111abcdef0123456789abcdef01",
        "trace 4111111111111111abcdef0123456789",
        "traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-4111111111111111-01",
        "trace ab12c3d4e5f60718293a4b5c6d7e8f3d",
        "sha256 4111111111111111" + "ab" * 24,
    ],
)
def test_hex_ids_are_never_partly_redacted(text: str) -> None:
    assert redact(text) == text
    assert redact(text, keep_ipv4=True) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{UUID} 0612345678", f"{UUID} [PHONE]"),
        (f"call 0612345678 re {UUID}", f"call [PHONE] re {UUID}"),
        (f"+1 415 555 2671 {UUID} 4111 1111 1111 1111", f"[PHONE] {UUID} [CARD]"),
        (f"{UUID}@example.com wrote", "[EMAIL] wrote"),  # an address holding an id is one
        (f"{UUID}-0612345678", f"{UUID}-[PHONE]"),
        ('{"id": "' + UUID + '", "t": "\\u0034\\u0031\\u0035-555-2671"}', '{"id": "' + UUID + '", "t": "[PHONE]"}'),
        # not a hex id's shape: judged as before
        ("4111111111111111 1234", "[CARD] 1234"),
    ],
)
def test_personal_data_next_to_a_hex_id_is_still_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2019 2020 2021",
        "profits 2019 2020 2021 up",
        "in 2019, 2020 and 2021",
        "1999-2001",
        "1999-2000-2001",
        "seasons 2019 - 2020 - 2021",
        "2019\u20132020\u20132021",  # en dashes
        "2019\u00a02020\u00a02021",  # no-break spaces
        "1999-2000-2001 1999-2000-2001",  # too long for one number: judged chunk by chunk
        "2019 2020 2021 #1",
    ],
)
def test_runs_of_plain_years_are_kept(text: str) -> None:
    assert redact(text) == text
    assert redact(text, keep_ipv4=True) == text


@pytest.mark.parametrize(
    "text",
    [
        "2025550143",
        "202-555-0143",
        "202 555 0143",
        "+1 202 555 0143",
        "2019 555 0143",
        "2020 2021 555",  # a group of another length
        "2019 2020 1234",  # a group that is no such year
        "+44 2019 2020 21",
        "(2019) 2020 2021",  # dialled: a bracketed area code
        "0019 2020 2021",
    ],
)
def test_phone_numbers_that_start_like_a_year_are_redacted(text: str) -> None:
    assert redact(f"call {text} now") == "call [PHONE] now"


@pytest.mark.parametrize(
    "text",
    [
        "03-1234-5678(内線123)",
        "03-1234-5678 (内線 123)",
        "03-1234-5678\uff08内線123\uff09",  # full-width brackets
        "415-555-2671 (ext. 12)",
        "415-555-2671(x123)",
        "415-555-2671 ( x 123 )",
        "(415) 555-2671 (#12)",
        "415.555.2671 (ext 9)",
    ],
)
def test_a_bracketed_extension_goes_with_the_number(text: str) -> None:
    assert redact(f"電話 {text} まで") == "電話 [PHONE] まで"
    assert redact(f"call {text}, thanks") == "call [PHONE], thanks"


@pytest.mark.parametrize(
    "text",
    [
        "printed 2020-03-12 (x 2)",
        "1920 (x2) and 12.03.2020 (#1)",
        "(ext. 12) with no number",
    ],
)
def test_a_bracketed_extension_alone_or_after_other_numbers_is_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "(1) 2020-03-12",
        "see (1) 2020-03-12 and (2) 2021-04-01",
        "(1) 2020-03-12 (2) 2021-04-01",
        "1) 2020-03-12",
        "(12) 12-03-2020",
        "(1) 2020-03-12 10:30",
        "(1)\u00a02020-03-12",
    ],
)
def test_a_date_after_a_numbered_list_marker_is_kept(text: str) -> None:
    assert redact(text) == text
    assert redact(text, keep_ipv4=True) == text


def test_a_bracketed_area_code_before_a_phone_number_still_goes_with_it() -> None:
    assert redact("(1) 2020-03-12 call (415) 555-2671") == "(1) 2020-03-12 call [PHONE]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the group glued to the letters is a reference ("3pm", "2nd"); the number before it is
        # one on its own
        ("415-555-2671-3pm", "[PHONE]-3pm"),
        ("415 555 2671-3pm", "[PHONE]-3pm"),
        ("call 0612345678-1a", "call [PHONE]-1a"),
        ("(11) 91234-5678-2b", "[PHONE]-2b"),
        ("(415) 555-2671-1st", "[PHONE]-1st"),
        ("cell 020-7946-0958-2nd", "cell [PHONE]-2nd"),
        ("1) 415-555-2671-2b", "[PHONE]-2b"),
        ("2020 415-555-2671abc", "[PHONE]-2671abc"),
        ("0612345678-12345678abc", "[PHONE]-12345678abc"),
    ],
)
def test_a_phone_number_before_a_group_glued_to_letters_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(text, keep_ipv4=True) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # no month or day there: not a date, whatever the bracket before it
        ("(030) 1234-56-78", "[PHONE]"),
        ("(0) 12-34-5678", "[PHONE]"),
        ("Tel. (06) 1234-56-78", "Tel. [PHONE]"),
        ("(030) 1234-56-78 ext 12", "[PHONE]"),
        ("(12) 2020-13-12", "[PHONE]"),
        ("(1) 33-12-2020", "[PHONE]"),
        # a date, but after an area code: a list is not numbered 0, 06 or 800
        ("(800) 2020-12-12", "[PHONE]"),
        ("(0) 2020-12-12", "[PHONE]"),
        ("(06) 2020-12-12 10:30", "[PHONE]:30"),
        ("call (030) 12-03-2020", "call [PHONE]"),
    ],
)
def test_a_bracketed_area_code_before_date_shaped_digits_goes_with_its_number(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(text, keep_ipv4=True) == expected


@pytest.mark.parametrize("text", ["(2) 31-12-2020", "3) 12/31/2020", "(99) 2020-1-9", "(1) 0001-01-01 00:00"])
def test_a_date_day_or_month_first_after_a_list_marker_is_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the first number is shorter than the fifteen digits a span may hold: the second
        # number is not cut to fill them
        ("(415) 555-2671 06 12 34 56 78", "[PHONE] [PHONE]"),
        ("(415) 555-2671 020 7946 0958", "[PHONE] [PHONE]"),
        ("(1)-03-1234-5678 06 12 34 56 78", "[PHONE] [PHONE]"),
        ("(1) 020 7946 0958 2020", "(1) [PHONE]"),
    ],
)
def test_numbers_side_by_side_are_each_redacted_whole(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a run too long for one number, made of numbers written without a trunk prefix
        ("nums: 2125550143 415 555 2671", "nums: [PHONE] [PHONE]"),
        ("98765 43210 98765 43211", "[PHONE] [PHONE]"),
        ("415 555 2671 415 555 2672", "[PHONE] [PHONE]"),
        ("+91 98765 43210 98765 43211", "[PHONE] [PHONE]"),
        ("(415) 555 2671 415 555 2672", "[PHONE] [PHONE]"),
        # a local number after a whole dialled one
        ("020 7946 0958 7946 0959", "[PHONE] [PHONE]"),
        ("call (415) 555 2671 555 2672", "call [PHONE] [PHONE]"),
        # numbers joined by a dash, no space between them
        ("0612345678-0612345678", "[PHONE]-[PHONE]"),
        ("415-555-2671-415-555-2672", "[PHONE]-[PHONE]"),
        ("415-555-2671\u2014415-555-2672", "[PHONE]\u2014[PHONE]"),
    ],
)
def test_phone_numbers_side_by_side_without_a_trunk_prefix_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(text, keep_ipv4=True) == expected


@pytest.mark.parametrize(
    "text",
    [
        "FTSE 100 3 2020 2021 2022",
        "1 234 567 890 123 456",  # thousands
        "EUR 12 345 678 901 234 567",
        "shares 1000 2000 3000 4000 5000 6000",
        "10 20 30 40 50 60 70 80 90 100",
        "FTSE 100 7500 7520 7480 7510 7490",
        "Dow 34000 34500 35000 35500",  # round figures
        "Q3 2024 12 345 678 910 11",
        "2018 2019 2020 2021 2022 2023",
        "ref 1234 5678 9012 3456",
        "1234-5678-9012-3456",
    ],
)
def test_figures_and_years_in_a_long_run_are_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a year after a number is not read as the end of a second one
        ("+44 20 7946 0958 2019", "[PHONE] 2019"),
        ("0044 20 7946 0958 2020", "[PHONE] 2020"),
        ("+91 98201 23456 2020", "[PHONE] 2020"),
        ("2125550143 2024 2025 2026", "[PHONE] 2024 2025 2026"),
    ],
)
def test_a_year_after_a_phone_number_in_a_long_run_is_kept(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /signup?email=jane%40example.com&x=1", "GET /signup?email=[EMAIL]&x=1"),
        ("jane%2Btag%40example.com", "[EMAIL]"),
        ("next=/a?u=jane%2btag%40Example.COM", "next=/a?u=[EMAIL]"),
        ("jane%2Btag@example.com", "[EMAIL]"),  # the "+" encoded, the "@" not
        ('{"url": "/x?email=jane%40example.com"}', '{"url": "/x?email=[EMAIL]"}'),
    ],
)
def test_url_encoded_emails_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", ["up 40%, 100%40 items", "a%40b", "%2B%2B%40", "50%40 of 2020"])
def test_percent_signs_without_an_address_are_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("電話 03\uff0d1234\uff0d5678", "電話 [PHONE]"),  # full-width hyphen-minus
        ("電話 090\u30fc1234\u30fc5678", "電話 [PHONE]"),  # katakana long vowel mark
        ("携帯 090\u22121234\u22125678", "携帯 [PHONE]"),  # minus sign
        ("電話：０３\uff0d１２３４\uff0d５６７８", "電話：[PHONE]"),  # full-width digits
        ("tel 090\u20141234\u20145678", "tel [PHONE]"),  # em dash
        ("tel 415\u2012555\u20122671", "tel [PHONE]"),  # figure dash
        ("card ４１１１ １１１１ １１１１ １１１１", "card [CARD]"),
        ("Tel. 030 / 123 456", "Tel. [PHONE]"),
        ("Tel. 0171 / 123 45 67 bitte", "Tel. [PHONE] bitte"),
    ],
)
def test_unicode_separators_and_full_width_digits_are_read(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "データー2020",
        "データー2020年 and サーバー8080",
        "2019\u30fc2020\u30fc2021",
        "2019\u22122020\u22122021",
        "2019 / 2020 2021",
        "page 03 / 2020",
        "\u30fc\u30fc1234567\u30fc\u30fc",
    ],
)
def test_a_long_vowel_mark_or_a_slash_next_to_ordinary_numbers_is_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DE89  3704  0044  0532  0130  00", "[IBAN]"),
        ("DE89\u202f3704\u202f0044\u202f0532\u202f0130\u202f00", "[IBAN]"),
        ("iban DE89 - 3704 - 0044 - 0532 - 0130 - 00 ok", "iban [IBAN] ok"),
        ("GB29\u2009NWBK\u20096016\u20091331\u20099268\u200919 thanks", "[IBAN] thanks"),
        ("DE89  3704  0044  0532  0130  00  THANKS", "[IBAN]  THANKS"),
    ],
)
def test_ibans_grouped_by_several_or_other_spaces_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected
