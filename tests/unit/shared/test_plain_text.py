"""Free text stored in PostgreSQL (a rule's scope group) refuses lone surrogates: JSON's
``"\\ud800"`` decodes to one, it has no UTF-8 form, and PostgreSQL refused it (a 500)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from services.alerter.rules import Scope
from shared.entities import PlainText, no_lone_surrogates

PLAIN = TypeAdapter(PlainText)


@pytest.mark.parametrize("text", ["\ud800", "banks\udfff", "\udbff\udc00x"])
def test_lone_surrogates_are_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="lone surrogate"):
        PLAIN.validate_python(text)
    with pytest.raises(ValueError, match="lone surrogate"):
        no_lone_surrogates(text)


@pytest.mark.parametrize("text", ["banks", "銀行", "emoji 🏦", ""])
def test_other_text_passes(text: str) -> None:
    assert PLAIN.validate_python(text) == text


def test_control_characters_are_still_refused() -> None:
    with pytest.raises(ValidationError, match="control characters"):
        PLAIN.validate_python("banks\x00")


def test_a_scope_group_with_a_lone_surrogate_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        Scope.model_validate({"group": "x\ud800"})
    assert [e["loc"] for e in caught.value.errors()] == [("group",)]
