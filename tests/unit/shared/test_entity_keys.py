"""Entity keys a URL path cannot name (``.``, ``..``) and blank groups, in
:class:`shared.entities.WatchedEntity`."""

from __future__ import annotations

import pytest

from shared.entities import WatchedEntity, cashtag_ticker, check_new_key


@pytest.mark.parametrize("key", [".", ".."])
def test_a_new_entity_cannot_have_a_dot_key(key: str) -> None:
    with pytest.raises(ValueError, match=f"invalid entity key {key!r}: '.' and '..' cannot be named in a URL path"):
        WatchedEntity(key, "Dot")
    with pytest.raises(ValueError, match="URL path"):
        check_new_key(key)


@pytest.mark.parametrize("key", [".", ".."])
def test_a_stored_dot_key_still_loads(key: str) -> None:
    """A row saved before the check still tags text (the classifier loads it)."""
    assert WatchedEntity(key, "Dot", stored=True).key == key


@pytest.mark.parametrize("key", ["a.b", "...", ".a", "a..", "-", "_"])
def test_other_keys_with_dots_are_still_allowed(key: str) -> None:
    assert WatchedEntity(key, "Name").key == key == check_new_key(key)


def test_a_blank_group_is_no_group_for_a_new_entity() -> None:
    assert WatchedEntity("ACME", "Acme", group="  ").group is None
    assert WatchedEntity("ACME", "Acme", group=" autos ").group == "autos"
    assert WatchedEntity("ACME", "Acme", group="", stored=True).group == ""  # a stored row keeps its own


@pytest.mark.parametrize("key", ["acme\n", "ACME\n", "a.b\n", "acme\r", "acme\n\n", "\nacme"])
def test_a_new_key_cannot_end_in_a_newline(key: str) -> None:
    """Python's ``$`` matches before a final newline: ``re.match`` took ``"acme\\n"``, a key
    the API cannot name (``DELETE /v1/entities/acme%0A`` is a 422)."""
    with pytest.raises(ValueError, match="invalid entity key"):
        check_new_key(key)
    with pytest.raises(ValueError, match="invalid entity key"):
        WatchedEntity(key, "Acme", (), (), (), None)


def test_a_stored_key_with_a_final_newline_still_loads() -> None:
    """Rows saved while the check let ``"acme\\n"`` through still load (listed, removable);
    anything else the pattern never allowed is still refused."""
    assert WatchedEntity("acme\n", "Acme", stored=True).key == "acme\n"
    for key in ("acme\n\n", "ac\nme", "\nacme", "acme\r", "_all"):
        with pytest.raises(ValueError, match="invalid entity key"):
            WatchedEntity(key, "Acme", stored=True)


@pytest.mark.parametrize("ticker", ["TSLA\n", "$TSLA\n", "BRK.B\n"])
def test_a_ticker_cannot_end_in_a_newline(ticker: str) -> None:
    with pytest.raises(ValueError, match="cashtag"):
        cashtag_ticker(ticker)
