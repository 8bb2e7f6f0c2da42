"""Telling a model's name from a folder on some machine, for cards and ``/v1/status``
(free of the training dependencies, so the API can import it)."""

from __future__ import annotations


def looks_like_path(value: str) -> bool:
    """Whether ``value`` names a folder on some machine rather than a model (a Hub id is
    ``name`` or ``org/name``): absolute, from the current, parent or home folder, a
    Windows path, or deeper than ``org/name``."""
    return (
        value.startswith(("/", "./", "../", "~"))
        or value in (".", "..")
        or "\\" in value
        or value[1:2] == ":"  # a drive letter
        or value.count("/") > 1
    )


def last_component(value: str) -> str:
    """A path's last folder name, or "" where it has none to show (``/``, ``..``, ``~alice``)."""
    name = value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return "" if name in ("", ".", "..") or name.startswith("~") or name.endswith(":") else name
