"""Watchlist: ``GET /v1/entities`` with sparkline stats, ``PUT``/``DELETE /v1/entities/{key}``,
and the most negative recent messages of an entity."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Row, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth import require
from services.api.deps import Deps, get_deps
from services.api.errors import ApiError, error_responses
from services.api.query import STREAMS, Granularity, Instant, Window, check_order, latest_trend_bucket, make_window
from services.api.routes_alerts import only_query_params
from shared.db import watchlist
from shared.db.models import Alert, Entity, ScoredEventRow, TrendHour, TrendMinute
from shared.entities import ALL, KEY_PATTERN, WatchedEntity, cashtag_ticker, no_control_chars
from shared.events import Stream

router = APIRouter(tags=["entities"])
KeyPath = Annotated[str, Path(pattern=KEY_PATTERN.pattern, description="Entity key.")]
# Surrounding whitespace is stripped before the length checks ("Tesla " would never match).
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(no_control_chars)
]
Names = Annotated[list[Text], Field(max_length=100)]
Tickers = Annotated[list[Annotated[Text, AfterValidator(cashtag_ticker)]], Field(max_length=100)]
Group = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(no_control_chars)]


class EntityIn(BaseModel):
    """A watched entity; aliases match case-insensitively on word boundaries, tickers as cashtags
    (a letter, then up to 9 letters, digits or dots: ``TSLA``, ``BRK.B``)."""

    model_config = ConfigDict(extra="forbid")

    name: Text
    aliases: Names = Field(default_factory=list)
    tickers: Tickers = Field(default_factory=list)
    case_sensitive_aliases: Names = Field(default_factory=list)
    group: Group | None = None


class Stats(BaseModel):
    """Per-bucket volume and negative share over the window (aligned to ``window`` buckets)."""

    volume: list[int]
    negative_share: list[float | None]
    total: int
    negative_share_total: float | None
    open_alerts: int = 0


class EntityOut(BaseModel):
    """A watched entity as stored. Not checked as :class:`EntityIn` is: a row saved before a
    check (control characters, empty or over-long names, over 100 aliases, tickers no cashtag
    matches) is listed as it is, where re-checking it made the whole watchlist a 500."""

    name: str
    aliases: list[str] = Field(default_factory=list)
    tickers: list[str] = Field(default_factory=list)
    case_sensitive_aliases: list[str] = Field(default_factory=list)
    group: str | None = None
    key: str
    active: bool
    stats: Stats | None = None


class EntitiesResponse(BaseModel):
    stream: Stream | None
    window: dict[str, Any]
    buckets: list[datetime]
    overall: Stats
    entities: list[EntityOut]


class Message(BaseModel):
    id: str
    stream: str
    event_time: datetime
    text: str
    sentiment: str
    negative_prob: float
    entities: list[str]


def _stats(series: dict[datetime, tuple[int, int]], window: Window, open_alerts: int) -> Stats:
    volume, share = [], []
    for b in window.buckets():
        count, neg = series.get(b, (0, 0))
        volume.append(count)
        share.append(neg / count if count else None)
    total, neg_total = sum(c for c, _ in series.values()), sum(n for _, n in series.values())
    return Stats(
        volume=volume,
        negative_share=share,
        total=total,
        negative_share_total=neg_total / total if total else None,
        open_alerts=open_alerts,
    )


def _out(row: Entity | Row[Any], stats: Stats | None) -> EntityOut:
    """An entity as the API shows it: a stored ``Entity``, or the row an upsert returned
    (:func:`shared.db.watchlist.upsert_statement`, whose group column is ``grp``)."""
    return EntityOut(
        key=row.key,
        name=row.name,
        aliases=list(row.aliases or []),
        tickers=list(row.tickers or []),
        case_sensitive_aliases=list(row.case_sensitive_aliases or []),
        group=row.group if isinstance(row, Entity) else row.grp,
        active=row.active,
        stats=stats,
    )


async def _series(
    deps: Deps, stream: Stream | None, window: Window, session: AsyncSession | None = None
) -> dict[str, dict[datetime, tuple[int, int]]]:
    """Every entity's buckets in ``window``, in ``session`` (a request's read session, with
    its statement time limit: :meth:`Deps.reads`) or a session of its own."""
    table = TrendMinute if window.granularity == "minute" else TrendHour
    stmt = (
        select(table.entity, table.bucket, func.sum(table.count), func.sum(table.negative))
        .where(table.stream.in_(STREAMS if stream is None else (stream,)))
        .where(table.bucket >= window.start, table.bucket < window.end)
        .group_by(table.entity, table.bucket)
    )
    if session is None:
        async with deps.sessions() as own:
            return await _series(deps, stream, window, own)
    out: dict[str, dict[datetime, tuple[int, int]]] = {}
    for entity, bucket, count, neg in (await session.execute(stmt)).all():
        out.setdefault(entity, {})[bucket] = (int(count or 0), int(neg or 0))
    return out


async def open_alert_counts(session: AsyncSession, stream: Stream | None) -> dict[str, int]:
    """Alerts not resolved, per entity."""
    # 'resolved' is written into the statement, not bound: only then does a generic plan
    # (a prepared statement's, after a few runs) know it can use the partial index
    # ix_alerts_unresolved instead of reading every alert.
    stmt = (
        select(Alert.entity, func.count())
        .where(Alert.status != literal("resolved", literal_execute=True))
        .group_by(Alert.entity)
    )
    if stream is not None:
        stmt = stmt.where(Alert.stream == stream)
    return dict((await session.execute(stmt)).tuples().all())


MAX_SPARKLINE_CELLS = 500_000
"""Most sparkline buckets one ``GET /v1/entities`` answers: ``points`` for each entity and
the overall row. Each is about 8 bytes of JSON, so an answer stays under ~4 MB; 5,000
entities at 1,440 points were 58 MB, built in memory. The dashboard's 60 minute (48 hour)
points fit 8,300 (10,400) entities."""


def check_cells(entities: int, points: int) -> None:
    """422 when ``points`` buckets for each of ``entities`` and the overall row exceed
    :data:`MAX_SPARKLINE_CELLS`, naming the most points this watchlist can have."""
    rows = entities + 1  # the overall row too
    if rows * points > MAX_SPARKLINE_CELLS:
        most = MAX_SPARKLINE_CELLS // rows
        raise ApiError(
            422,
            f"{points} points for {entities} entities is {rows * points:,} sparkline buckets, over the "
            f"{MAX_SPARKLINE_CELLS:,} one answer holds: ask for at most {most} points"
            + (" (or use hour)" if most >= 2 else ""),
            code="validation_error",
            details=[{"loc": ["query", "points"], "max_points": most, "entities": entities}],
        )


@router.get(
    "/v1/entities",
    response_model=EntitiesResponse,
    dependencies=[Depends(require("read")), Depends(only_query_params("stream", "granularity", "points", "to"))],
)
async def list_entities(
    deps: Annotated[Deps, Depends(get_deps)],
    stream: Stream | None = None,
    granularity: Granularity = "minute",
    points: Annotated[
        int,
        Query(
            ge=2,
            le=1440,
            description=f"Sparkline length in buckets; 422 when points × (entities + 1) is over "
            f"{MAX_SPARKLINE_CELLS:,} (the answer's details name the most points this watchlist can have).",
        ),
    ] = 60,
    to: Annotated[
        Instant | None, Query(description="End of the sparkline window; default after the latest data.")
    ] = None,
) -> dict[str, Any]:
    """The watchlist with the latest ``points`` buckets of volume and negative share per entity
    (422 when ``points`` × (entities + 1) is over :data:`MAX_SPARKLINE_CELLS`)."""
    async with deps.reads() as session:
        rows = list((await session.execute(select(Entity).order_by(Entity.key))).scalars())
        check_cells(len(rows), points)  # before the series are read
        anchor = await latest_trend_bucket(session, stream, granularity) if to is None else None
        open_counts = await open_alert_counts(session, stream)
        window = make_window(None, to, granularity, default_points=points, anchor=anchor)
        series = await _series(deps, stream, window, session)
    return {
        "stream": stream,
        "window": window.as_json(),
        "buckets": window.buckets(),
        "overall": _stats(series.get(ALL, {}), window, open_counts.get(ALL, 0)),
        "entities": [_out(r, _stats(series.get(r.key, {}), window, open_counts.get(r.key, 0))) for r in rows],
    }


@router.put(
    "/v1/entities/{key}",
    response_model=EntityOut,
    dependencies=[Depends(require("write"))],
    responses={201: {"description": "Created"}},
)
async def put_entity(
    key: KeyPath, body: EntityIn, response: Response, deps: Annotated[Deps, Depends(get_deps)]
) -> EntityOut:
    """Add or replace a watched entity (and reactivate it)."""
    try:
        entity = WatchedEntity(
            key=key,
            name=body.name,
            aliases=tuple(body.aliases),
            tickers=tuple(body.tickers),
            case_sensitive_aliases=tuple(body.case_sensitive_aliases),
            group=body.group,
        )
    except ValueError as exc:
        raise ApiError(422, str(exc), details=[{"loc": ["path", "key"], "message": str(exc)}]) from exc
    async with deps.sessions.begin() as session:
        row = (await session.execute(watchlist.upsert_statement(entity))).one()
    response.status_code = 201 if row.inserted else 200
    return _out(row, None)


@router.delete(
    "/v1/entities/{key}",
    status_code=204,
    dependencies=[Depends(require("write"))],
    responses=error_responses({404: "Not on the watchlist"}),
)
async def delete_entity(key: KeyPath, deps: Annotated[Deps, Depends(get_deps)]) -> Response:
    """Remove an entity from the watchlist (its stored trends stay)."""
    if not await watchlist.remove(deps.sessions, key):
        raise ApiError(404, f"no entity {key!r}")
    return Response(status_code=204)


@router.get(
    "/v1/entities/{key}/messages",
    response_model=list[Message],
    dependencies=[Depends(require("read")), Depends(only_query_params("stream", "from", "to", "limit"))],
)
async def entity_messages(
    key: Annotated[str, Path(max_length=64)],
    deps: Annotated[Deps, Depends(get_deps)],
    stream: Stream | None = None,
    from_: Annotated[Instant | None, Query(alias="from")] = None,
    to: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[Message]:
    """The most negative messages of an entity: of the whole window when ``from`` is
    given, else of its latest 500 messages (before ``to`` when given)."""
    check_order(from_, to)
    recent = select(ScoredEventRow)
    if key != ALL:
        recent = recent.where(ScoredEventRow.entities.contains([key]))
    if stream is not None:
        recent = recent.where(ScoredEventRow.stream == stream)
    if from_ is not None:
        recent = recent.where(ScoredEventRow.event_time >= from_)
    if to is not None:
        recent = recent.where(ScoredEventRow.event_time < to)
    if from_ is None:  # no lower bound: rank the latest 500
        # id and stream (the key) break ties of equal event times: the same 500 every time
        recent = recent.order_by(
            ScoredEventRow.event_time.desc(), ScoredEventRow.id.desc(), ScoredEventRow.stream.desc()
        ).limit(500)
    sub = recent.subquery()
    stmt = (
        select(sub).order_by(sub.c.negative_prob.desc(), sub.c.event_time.desc(), sub.c.id, sub.c.stream).limit(limit)
    )
    async with deps.reads() as session:
        rows = (await session.execute(stmt)).mappings().all()
    return [
        Message(
            id=r["id"],
            stream=r["stream"],
            event_time=r["event_time"],
            text=r["text"],
            sentiment=r["sentiment"],
            negative_prob=r["negative_prob"],
            entities=list(r["entities"]),
        )
        for r in rows
    ]
