"""API keys: format, hashing, scopes, storage, and the FastAPI guard.

A key reads ``tw_<prefix>_<secret>``: an 8-character lowercase prefix (stored in
clear to find the row and to name the key) and a random secret. Only the SHA-256
of the whole key is stored. Scopes nest: ``admin`` implies ``write`` implies ``read``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import fastapi.routing
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as ASGIScope

from services.api.errors import ApiError, BodyTooLarge, error_response
from shared.db.models import INT4_MAX, ApiKey

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
_RANK: dict[str, int] = {scope: i for i, scope in enumerate(SCOPES)}
PREFIX_LEN = 8
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
KEY_PATTERN = re.compile(r"^tw_([a-z0-9]{8})_([A-Za-z0-9_-]{32,128})$")
PREFIX_PATTERN = re.compile(r"^[a-z0-9]{8}$")
NOT_ID_OR_PREFIX = (
    "name the key by its id or its 8-character prefix (both in `tonewatch keys list`), never the key itself"
)


@dataclass(frozen=True)
class KeyInfo:
    """A stored key, without its secret."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class NewKey:
    """A freshly created key; ``key`` is shown once and never stored."""

    info: KeyInfo
    key: str


def generate_key() -> tuple[str, str]:
    """A new ``(key, prefix)`` pair."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LEN))
    return f"tw_{prefix}_{secrets.token_urlsafe(32)}", prefix


def hash_key(key: str) -> str:
    """Hex SHA-256 of the whole key."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_key(key: str) -> str | None:
    """The prefix of a well-formed key, else ``None``."""
    m = KEY_PATTERN.fullmatch(key)  # the whole key: `$` also matches before a final newline
    return m.group(1) if m else None


def implies(granted: Sequence[str], required: str) -> bool:
    """True when any granted scope is ``required`` or stronger."""
    need = _RANK[required]
    return any(_RANK.get(s, -1) >= need for s in granted)


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.prefix, tuple(row.scopes or ()), row.created_at, row.revoked_at)


async def create_key(sessions: async_sessionmaker[AsyncSession], name: str, scope: Scope) -> NewKey:
    """Create and store a key with ``scope``; the returned secret is not recoverable later."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    if not name.strip() or len(name) > 100:
        raise ValueError("key name must be 1-100 characters")
    key, prefix = generate_key()
    async with sessions.begin() as session:
        row = ApiKey(name=name, prefix=prefix, key_hash=hash_key(key), scopes=[scope])
        session.add(row)
        await session.flush()
        await session.refresh(row)
        return NewKey(_info(row), key)


async def list_keys(sessions: async_sessionmaker[AsyncSession]) -> list[KeyInfo]:
    async with sessions() as session:
        rows = (await session.execute(select(ApiKey).order_by(ApiKey.id))).scalars()
        return [_info(r) for r in rows]


def is_id_or_prefix(ref: str) -> bool:
    """Whether ``ref`` names a key as :func:`revoke_key` takes it: an id (ASCII digits) or
    an 8-character prefix."""
    return (ref.isascii() and ref.isdigit()) or PREFIX_PATTERN.fullmatch(ref) is not None


async def revoke_key(sessions: async_sessionmaker[AsyncSession], prefix_or_id: str) -> KeyInfo | None:
    """Revoke by numeric id or by prefix. ``None`` when no such key; revoking a revoked
    key keeps its first revocation time. Anything else, a whole key above all, is refused
    with a ``ValueError`` that does not hold it: a key passed around to revoke it is one
    more copy of the secret (a command line, a log line, a traceback)."""
    ref = prefix_or_id.strip()
    if not is_id_or_prefix(ref):
        raise ValueError(NOT_ID_OR_PREFIX)
    by_id = ref.isdigit() and not PREFIX_PATTERN.fullmatch(ref)
    if by_id and int(ref) > INT4_MAX:
        return None  # no key has such an id (and the query would overflow the column)
    cond = ApiKey.id == int(ref) if by_id else ApiKey.prefix == ref
    async with sessions.begin() as session:
        await session.execute(
            update(ApiKey).where(cond, ApiKey.revoked_at.is_(None)).values(revoked_at=datetime.now(UTC))
        )
        row = (await session.execute(select(ApiKey).where(cond))).scalar_one_or_none()
        return _info(row) if row is not None else None


async def verify_key(sessions: async_sessionmaker[AsyncSession], key: str) -> KeyInfo | None:
    """The key's record when ``key`` is well formed, known, matches its hash and is not revoked."""
    prefix = parse_key(key)
    if prefix is None:
        return None
    async with sessions() as session:
        row = (await session.execute(select(ApiKey).where(ApiKey.prefix == prefix))).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.key_hash, hash_key(key)) or row.revoked_at is not None:
        return None
    return _info(row)


def presented_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-API-Key``."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tonewatch"'}
_NO_KEY = "an API key is required (Authorization: Bearer <key> or X-API-Key)"
_BAD_KEY = "invalid or revoked API key"


async def authorize(request: Request, sessions: async_sessionmaker[AsyncSession], required: Scope) -> KeyInfo:
    """401 for a missing, unknown or revoked key; 403 for a key without ``required``."""
    key = presented_key(request)
    if key is None:
        raise ApiError(401, _NO_KEY, headers=_CHALLENGE)
    info = await verify_key(sessions, key)
    if info is None:
        raise ApiError(401, _BAD_KEY, headers=_CHALLENGE)
    if not implies(info.scopes, required):
        raise ApiError(403, f"this key lacks the {required!r} scope", details=[{"granted": list(info.scopes)}])
    return info


Guard = Callable[[Request], Awaitable[KeyInfo | None]]
_GUARD_SCOPES: dict[Callable[..., object], Scope] = {}
"""The scope each guard demands (:func:`require`, :func:`reader`), for the OpenAPI document."""


def require(required: Scope) -> Guard:
    """A FastAPI dependency that demands ``required``; reads pass without a key unless
    the settings say ``require_key_for_reads``."""

    async def guard(request: Request) -> KeyInfo | None:
        state = request.app.state
        if required == "read" and not state.settings.require_key_for_reads:
            return None
        return await authorize(request, state.deps.sessions, required)

    guard.__name__ = f"require_{required}"
    _GUARD_SCOPES[guard] = required
    return guard


async def reader(request: Request) -> KeyInfo | None:
    """A FastAPI dependency for reads that show more to a stronger key: checked like
    ``require("read")``, and when reads are open a presented key is still checked
    (401 when unknown or revoked) and returned, so the route can tell its scopes.
    ``None`` for an anonymous read."""
    state = request.app.state
    if presented_key(request) is None and not state.settings.require_key_for_reads:
        return None
    return await authorize(request, state.deps.sessions, "read")


_GUARD_SCOPES[reader] = "read"


def required_scope(dependant: Dependant, *, require_key_for_reads: bool) -> Scope | None:
    """The strongest scope a route's guards demand a key for (answering 401 without
    one, 403 when the key lacks it), or ``None`` when the route takes requests without
    a key: no guard, or only read guards while reads are open."""
    needed: Scope | None = None
    stack = [dependant]
    while stack:
        node = stack.pop()
        stack.extend(node.dependencies)
        scope = _GUARD_SCOPES.get(node.call) if node.call is not None else None
        if scope is None or (scope == "read" and not require_key_for_reads):
            continue
        if needed is None or _RANK[scope] > _RANK[needed]:
            needed = scope
    return needed


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class KeyBeforeBody:
    """ASGI middleware, inside :class:`~services.api.errors.BodyLimitMiddleware`: a write
    (a method other than GET, HEAD, OPTIONS) to an operation whose guard demands a key
    answers 401 before its body is parsed when no key is presented, or the one presented
    is not a well-formed key: what :func:`authorize` answers then, but FastAPI reads and
    validates a body before any dependency runs, so a write without a key answered 422
    with the body's decode errors, or 400 for one nested too deeply. The body is read to
    its end, not parsed (over the limit it is still a 413). Whether the key is known, not
    revoked and has the scope is still the guard's to say. The operations are read from
    ``api``'s routes on the first request (they are included after the middleware is added)."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self._keyed: list[tuple[re.Pattern[str], frozenset[str], object]] | None = None

    def keyed(self) -> list[tuple[re.Pattern[str], frozenset[str], object]]:
        """``(path regex, write methods, route)`` of each operation whose writes need a key."""
        if self._keyed is not None:
            return self._keyed
        reads_keyed = self.api.state.settings.require_key_for_reads
        keyed: list[tuple[re.Pattern[str], frozenset[str], object]] = []
        # Walked as app.key_scopes walks them (FastAPI versions differ: see there).
        routes: Iterable[Any] = getattr(fastapi.routing, "iter_route_contexts", iter)(self.api.routes)
        for route in routes:
            original = getattr(route, "original_route", route)
            methods = frozenset(getattr(route, "methods", None) or ()) - SAFE_METHODS
            if not isinstance(original, APIRoute) or not methods:
                continue
            if required_scope(route.dependant, require_key_for_reads=reads_keyed) is not None:
                keyed.append((compile_path(route.path_format)[0], methods, original))
        self._keyed = keyed
        return keyed

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            for pattern, methods, route in self.keyed():
                if scope["method"] in methods and pattern.match(scope["path"]):
                    key = presented_key(Request(scope))  # the headers only: the body is not read
                    if key is None or parse_key(key) is None:
                        scope["route"] = route  # counted by its route, as the guard's 401 is
                        answer = ApiError(401, _BAD_KEY if key else _NO_KEY, headers=_CHALLENGE)
                        try:
                            await discard_body(receive)
                        except BodyTooLarge as exc:  # raised by BodyLimitMiddleware, outside
                            answer = exc
                        await error_response(answer)(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


async def discard_body(receive: Receive) -> None:
    """Read the request body to its end without keeping or parsing it: a body over the
    limit is still its 413 (:class:`~services.api.errors.BodyLimitMiddleware` counts
    what is read), and the connection is ready for its next request."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
