"""Entity keys a URL path cannot name (``.``, ``..``) and blank groups, in
:class:`shared.entities.WatchedEntity`."""

from __future__ import annotations

import pytest

from shared.entities import WatchedEntity, check_new_key


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
