"""API key format, hashing, parsing and scope nesting (no database)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from services.api import auth
from shared.logs import scrub


def test_generated_keys_have_the_documented_format() -> None:
    keys = {auth.generate_key() for _ in range(50)}
    assert len(keys) == 50
    for key, prefix in keys:
        assert auth.KEY_PATTERN.match(key) and key.startswith(f"tw_{prefix}_")
        assert len(prefix) == 8 and prefix.isalnum() and prefix == prefix.lower()
        assert auth.parse_key(key) == prefix
        assert scrub(f"using {key}") == f"using tw_{prefix}_***"  # logs never show the secret


def test_hash_is_sha256_of_the_whole_key() -> None:
    key, _ = auth.generate_key()
    digest = auth.hash_key(key)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == auth.hash_key(key) and digest != auth.hash_key(key + "x")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "tw_",
        "tw_ABCDEFGH_" + "a" * 40,
        "tw_abcdefg_" + "a" * 40,
        "tw_abcdefgh_short",
        "xx_abcdefgh_" + "a" * 40,
        "tw_abcdefgh_" + "a" * 40 + " ",
        "tw_abcdefgh_" + "a" * 40 + "\n",  # `$` alone matches before a final newline
    ],
)
def test_malformed_keys_do_not_parse(bad: str) -> None:
    assert auth.parse_key(bad) is None


@pytest.mark.parametrize(
    ("granted", "required", "ok"),
    [
        (["read"], "read", True),
        (["read"], "write", False),
        (["read"], "admin", False),
        (["write"], "read", True),
        (["write"], "write", True),
        (["write"], "admin", False),
        (["admin"], "read", True),
        (["admin"], "write", True),
        (["admin"], "admin", True),
        ([], "read", False),
        (["bogus"], "read", False),
        (["read", "admin"], "admin", True),
    ],
)
def test_scopes_nest(granted: list[str], required: str, ok: bool) -> None:
    assert auth.implies(granted, required) is ok


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "query_string": b""})


def test_key_is_read_from_either_header() -> None:
    assert auth.presented_key(_request({"Authorization": "Bearer tw_x"})) == "tw_x"
    assert auth.presented_key(_request({"Authorization": "bearer  tw_y "})) == "tw_y"
    assert auth.presented_key(_request({"X-API-Key": "tw_z"})) == "tw_z"
    assert auth.presented_key(_request({"Authorization": "Basic abc"})) is None
    assert auth.presented_key(_request({})) is None
