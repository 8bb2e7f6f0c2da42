"""``tonewatch keys revoke`` takes a key's id or prefix, never the key itself."""

from __future__ import annotations

from typing import get_type_hints

import pytest
from typer.testing import CliRunner

from services.api.auth import generate_key
from services.cli import keys
from services.cli.keys import app


@pytest.mark.parametrize("ref", ["full", "mistyped", "copied from list"])
def test_revoke_refuses_a_whole_key_without_echoing_it(ref: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The help invited the key itself on the command line (shell history, ``ps``)."""
    key, prefix = generate_key()
    arg = {"full": key, "mistyped": key[:-1] + "!", "copied from list": f"tw_{prefix}_…"}[ref]
    monkeypatch.setattr(keys, "_with_db", lambda *_: pytest.fail("the database was asked"))
    result = CliRunner().invoke(app, ["revoke", arg])
    assert result.exit_code == 2
    assert "id or its 8-character prefix" in result.output and key[12:-1] not in result.output


@pytest.mark.parametrize("ref", ["42", "abcd1234", " abcd1234 "])
def test_revoke_looks_up_an_id_or_a_prefix(ref: str, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(keys, "_with_db", lambda *_: asked.append(ref))
    result = CliRunner().invoke(app, ["revoke", ref])
    assert result.exit_code == 1 and asked == [ref]  # no such key: the stub found none
    assert f"no API key {ref.strip()!r}" in result.output


def test_the_revoke_help_asks_for_the_id_or_prefix_only() -> None:
    (argument,) = get_type_hints(keys.revoke, include_extras=True)["ref"].__metadata__
    assert argument.help == "Key id or 8-character prefix (see `keys list`)."
