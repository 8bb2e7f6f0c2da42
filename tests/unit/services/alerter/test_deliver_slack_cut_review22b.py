"""A Slack message whose head (a long entity or rule name) is cut to fit
:data:`SLACK_TEXT_CHARS` was cut through an escape: an entity of 3,000 "&" ended its head in
``&amp;&am…``, half an escape that Slack shows as text. The cut now steps back before it."""

from __future__ import annotations

import re

import pytest
from tw_testing import alert_event

from services.alerter.deliver import SLACK_TEXT_CHARS, payload

LAST = "alert `al-123`: `tonewatch alerts show al-123` for the whole explanation"
# what is left once every whole escape is taken out: a "&" there is half of one
_ESCAPE = re.compile(r"&(?:amp|lt|gt);")


def _text(entity: str) -> str:
    alert = alert_event(rule_name="r", entity=entity)
    text = payload(alert, "slack")["text"]
    assert isinstance(text, str)
    return text


@pytest.mark.parametrize("entity", ["&" * 3000, "<" * 3000, ">" * 3000, "x" + "&" * 3000, "xx" + "<>" * 1500])
def test_the_head_is_not_cut_through_an_escape(entity: str) -> None:
    text = _text(entity)
    head, _, last = text.rpartition("\n")
    assert last == LAST and len(text) <= SLACK_TEXT_CHARS
    assert head.endswith("…")
    assert "&" not in _ESCAPE.sub("", head), head[-20:]


@pytest.mark.parametrize("shift", range(6))
def test_the_cut_keeps_as_much_as_fits(shift: int) -> None:
    """Every position of the cut within an escape: at most four characters given back."""
    text = _text("y" * shift + "&" * 3000)
    head = text.rpartition("\n")[0]
    room = SLACK_TEXT_CHARS - len(LAST) - 2
    assert room - 4 <= len(head) - 1 <= room
    assert "&" not in _ESCAPE.sub("", head)


def test_a_head_of_plain_letters_is_cut_at_the_room() -> None:
    head = _text("z" * 4000).rpartition("\n")[0]
    assert len(head) - 1 == SLACK_TEXT_CHARS - len(LAST) - 2
