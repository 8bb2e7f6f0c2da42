"""One error format for every 4xx and 5xx answer, and the request body limit.

Every error body is ``{"error": {"code": "...", "message": "...", "details": [...]}}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.faults import unreachable

log = logging.getLogger("tonewatch.api")

CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[Any]


class ErrorDocument(BaseModel):
    """The body of every error answer."""

    error: ErrorInfo


def error_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route answers besides 422."""
    return {status: {"model": ErrorDocument, "description": text} for status, text in descriptions.items()}


def code_for(status: int) -> str:
    """The error code used for an HTTP status when none is given."""
    return CODES.get(status, "client_error" if status < 500 else "server_error")


def error_body(code: str, message: str, details: Sequence[Any] = ()) -> dict[str, Any]:
    """The one error document."""
    return {"error": {"code": code, "message": message, "details": list(details)}}


class ApiError(StarletteHTTPException):
    """An error answer with a stable machine-readable ``code``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Sequence[Any] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=dict(headers) if headers else None)
        self.code = code or code_for(status)
        self.message = message
        self.details = list(details)


class BodyTooLarge(ApiError):
    """The request body exceeded the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes", details=[{"limit_bytes": limit}])


def validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors as ``{"loc": [...], "message": ..., "type": ...}``."""
    return [
        {"loc": list(err.get("loc", ())), "message": str(err.get("msg", "")), "type": err.get("type")} for err in errors
    ]


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details), status_code=exc.status_code, headers=exc.headers
    )


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, ApiError):
        return error_response(exc)
    status = exc.status_code
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    return JSONResponse(error_body(code_for(status), message), status_code=status, headers=exc.headers)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = validation_details(exc.errors())
    return JSONResponse(error_body("validation_error", "request validation failed", details), status_code=422)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)


QUERY_CANCELED = "57014"
"""PostgreSQL's SQLSTATE of a statement cancelled, by ``statement_timeout`` among others."""

STATEMENT_TIMEOUT = "statement timeout"
"""What PostgreSQL's untranslated message of a 57014 says when ``statement_timeout``
cancelled it ("canceling statement due to statement timeout")."""

USER_REQUEST = "user request"
"""What PostgreSQL's untranslated message of a 57014 says when it was cancelled otherwise
("canceling statement due to user request": ``pg_cancel_backend``, a client's cancel).
The messages follow the server's ``lc_messages`` (``C`` in the stack); a translated one
says neither, and then the statement's own running time tells (:func:`cancel_was_timeout`)."""

STATEMENT_TIME = "tonewatch_statement_time"
"""The attribute of a driver error that holds its statement's :class:`StatementTime`."""


@dataclass(frozen=True)
class StatementTime:
    """How long a statement that ran under a time limit (``statement_timeout``) ran
    before it failed, measured by the client around its execution
    (:meth:`services.api.deps.Deps.reads`)."""

    elapsed_s: float
    limit_s: float


def note_statement_time(exc: BaseException, elapsed_s: float, limit_s: float) -> None:
    """Record on ``exc`` (a failed statement's driver error) how long it ran under its limit."""
    setattr(exc, STATEMENT_TIME, StatementTime(elapsed_s=elapsed_s, limit_s=limit_s))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then the errors it wraps: SQLAlchemy's ``orig``, else the cause."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
        current = orig if isinstance(orig, BaseException) else current.__cause__


def _canceled_message(exc: BaseException) -> str | None:
    """The message of the error in ``exc``'s chain (SQLAlchemy's ``orig``, or the cause)
    that is PostgreSQL cancelling a statement (SQLSTATE 57014), or None when none is."""
    for current in _chain(exc):
        if getattr(current, "sqlstate", None) == QUERY_CANCELED:
            return str(current)
    return None


def _statement_time(exc: BaseException) -> StatementTime | None:
    """The :class:`StatementTime` noted on an error in ``exc``'s chain, if any."""
    for current in _chain(exc):
        noted = getattr(current, STATEMENT_TIME, None)
        if isinstance(noted, StatementTime):
            return noted
    return None


def query_canceled(exc: BaseException) -> bool:
    """Whether ``exc``, or the driver error it wraps, is PostgreSQL cancelling a statement
    for any reason (asyncpg's ``QueryCanceledError``, SQLSTATE 57014)."""
    return _canceled_message(exc) is not None


def cancel_was_timeout(message: str, time: StatementTime | None) -> bool:
    """Whether a statement PostgreSQL cancelled (57014) with ``message`` was cancelled by
    its ``statement_timeout``. The untranslated message says which; a translated one
    (``lc_messages``) does not, and then only a statement that ran at least its limit
    (``time``) timed out: PostgreSQL's timer starts after the client sent the statement,
    so a timeout's measured time is never below the limit, and a statement cannot run
    past its limit, so a cancel measured at or after it (a ``pg_cancel_backend`` in the
    same instant) is no different to the client. No limit known: no timeout."""
    if STATEMENT_TIMEOUT in message:
        return True
    if USER_REQUEST in message:
        return False
    return time is not None and time.elapsed_s >= time.limit_s


def statement_timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL cancelling a statement that ran past its
    ``statement_timeout`` (a read's limit, :meth:`services.api.deps.Deps.reads`), not one
    cancelled otherwise (``pg_cancel_backend``): only the first is the query's own cost,
    which the client can lower by asking for less. In any ``lc_messages``
    (:func:`cancel_was_timeout`)."""
    message = _canceled_message(exc)
    return message is not None and cancel_was_timeout(message, _statement_time(exc))


async def _on_backing_service_error(request: Request, exc: Exception) -> JSONResponse:
    """503 when PostgreSQL (or another backing service) is down or restarting: not a
    bug, and the client can retry. The answer does not name internal hosts. A read
    that ran past the API's statement time limit (``TW_API_READ_TIMEOUT_S``) is a 503
    too, ``query_timeout``: retry later, or ask for less (a shorter window). A statement
    cancelled otherwise (an operator's ``pg_cancel_backend``: SQLSTATE 57014 too) is no
    timeout of the client's query: it is an unexpected database failure, the 500 below."""
    if statement_timed_out(exc):
        log.warning("%s %s: a query ran past its time limit and was cancelled", request.method, request.url.path)
        return JSONResponse(
            error_body(
                "query_timeout",
                "the query took too long and was cancelled; narrow the window ('from', 'to', 'stream') or retry later",
            ),
            status_code=503,
            headers={"Retry-After": "10"},
        )
    if not unreachable(exc):
        return await _on_unexpected(request, exc)
    log.warning(
        "%s %s: a backing service is unreachable: %s: %s", request.method, request.url.path, type(exc).__name__, exc
    )
    return JSONResponse(
        error_body("dependency_unavailable", "a service the API depends on is unreachable; retry later"),
        status_code=503,
        headers={"Retry-After": "5"},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the one format."""
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    # Handlers for these classes answer in place; the catch-all below is Starlette's
    # server-error path, which re-raises after answering (a traceback per request).
    app.add_exception_handler(OSError, _on_backing_service_error)
    app.add_exception_handler(SQLAlchemyError, _on_backing_service_error)
    app.add_exception_handler(RedisError, _on_backing_service_error)
    app.add_exception_handler(Exception, _on_unexpected)


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes with 413: by ``Content-Length`` before
    reading, and by counting bytes for chunked bodies."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.limit
                except ValueError:
                    too_large = False
                if too_large:
                    await self._refuse(send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            error_body(
                "payload_too_large",
                f"request body exceeds the limit of {self.limit} bytes",
                [{"limit_bytes": self.limit}],
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def refuse_nul_in_url(request: Request) -> None:
    """422 for a NUL character (``%00``) in the path or query: no parameter means one,
    and PostgreSQL refuses it in any string it compares (the query failed with a 500)."""
    path: str = request.scope.get("path", "")
    if "\x00" in path or any("\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()):
        raise ApiError(
            422,
            "the URL contains a NUL character (%00)",
            code="validation_error",
            details=[{"loc": ["path" if "\x00" in path else "query"], "message": "NUL character not allowed"}],
        )


def document_key_errors_in_openapi(schema: dict[str, Any], scopes: Mapping[tuple[str, str], str]) -> dict[str, Any]:
    """The 401 and 403 answers (the one error document) of the operations that need an
    API key: ``scopes`` maps ``(path, lower-case method)`` to the scope the key needs."""
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDocument"}}}
    challenge = {"WWW-Authenticate": {"description": 'Bearer realm="tonewatch"', "schema": {"type": "string"}}}
    for (path, method), scope in scopes.items():
        operation = schema.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue
        answers = operation.setdefault("responses", {})
        answers["401"] = {
            "description": "No API key, or an unknown or revoked one (`Authorization: Bearer <key>` or `X-API-Key`)",
            "headers": challenge,
            "content": body,
        }
        answers["403"] = {"description": f"The API key lacks the `{scope}` scope", "content": body}
    return schema


def document_errors_in_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Every route's 422 answer described as the one error document (FastAPI documents
    its own ``HTTPValidationError`` shape, which this API never sends); FastAPI's
    validation schemas are dropped when nothing refers to them any more."""
    ref = {"$ref": "#/components/schemas/ErrorDocument"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("422")
            if answer is not None:
                answer["description"] = "Invalid request: each problem in `details`, with its location"
                answer["content"] = {"application/json": {"schema": ref}}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ErrorDocument", ErrorDocument.model_json_schema(ref_template="#/components/schemas/{model}"))
    for name, nested in (
        ErrorDocument.model_json_schema(ref_template="#/components/schemas/{model}").get("$defs", {}).items()
    ):
        components.setdefault(name, nested)
    components["ErrorDocument"].pop("$defs", None)
    for unused in ("HTTPValidationError", "ValidationError"):  # the first refers to the second
        if f"#/components/schemas/{unused}" not in json.dumps(schema):
            components.pop(unused, None)
    return schema
