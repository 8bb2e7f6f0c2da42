"""Time windows for the read endpoints.

A window is ``[from, to)`` over bucket start times, both on bucket boundaries. When
``to`` is omitted the window ends just after the latest bucket with data (replayed
history and live streams both show their most recent data), or now when there is
none, and at the earliest just after ``from``'s bucket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BeforeValidator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.errors import ApiError
from shared.db.models import RoutingMinute, TrendHour, TrendMinute
from shared.events import Stream, not_digits_only, utc_in_range

Granularity = Literal["minute", "hour"]
STEP: dict[str, timedelta] = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1)}
MAX_POINTS = 20_160
"""Most buckets one query may span (two weeks of minutes)."""
STREAMS: tuple[str, ...] = get_args(Stream)
"""Every stream. A trend read of all streams names them: the trend tables' bucket index
starts with the stream (``ix_trend_*_stream_bucket``), and a bucket range or the latest
bucket of no stream in particular reads it stream by stream (migration 0010)."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    granularity: Granularity

    @property
    def step(self) -> timedelta:
        return STEP[self.granularity]

    def buckets(self) -> list[datetime]:
        """Every bucket start in the window."""
        out, t = [], self.start
        while t < self.end:
            out.append(t)
            t += self.step
        return out

    def as_json(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "granularity": self.granularity}


def aware(t: datetime | None) -> datetime | None:
    """Naive times are taken as UTC; everything is returned in UTC."""
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def _query_time(t: datetime) -> datetime:
    return utc_in_range(t if t.tzinfo else t.replace(tzinfo=UTC))


# A time, then a space and an offset of hours and minutes: the ``+`` of ``+02:00`` sent
# unencoded (``curl '...?from=2031-07-08T11:00:00+02:00'``), which a query string reads as
# a space. No time is written with a space there, so the offset is taken as ``+``.
_PLUS_AS_SPACE = re.compile(r"(.*[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?) (\d{2}:?\d{2})")


def _plus_offset(value: object) -> object:
    if isinstance(value, str) and (m := _PLUS_AS_SPACE.fullmatch(value)):
        return f"{m[1]}+{m[2]}"
    return value


Instant = Annotated[
    datetime, BeforeValidator(_plus_offset), BeforeValidator(not_digits_only), AfterValidator(_query_time)
]
"""A time query parameter: naive means UTC; an offset after a space is a ``+`` offset whose
``+`` the query string decoded; years 1900-8999 (422 otherwise, not an overflow). Digits
alone (``from=20261201``) are a 422: pydantic would read them as Unix seconds in 1970."""


def floor(t: datetime, granularity: Granularity) -> datetime:
    t = t.replace(second=0, microsecond=0)
    return t.replace(minute=0) if granularity == "hour" else t


def ceil(t: datetime, granularity: Granularity) -> datetime:
    """The first bucket boundary at or after ``t``."""
    down = floor(t, granularity)
    return down if down == t else down + STEP[granularity]


def check_order(start: datetime | None, end: datetime | None, *, equal_ok: bool = False) -> None:
    """422 when both bounds are given and ``from`` is not before ``to`` (or, ``equal_ok``,
    after it: an overlap filter, where ``from == to`` asks for what covers that instant)."""
    start_t, end_t = aware(start), aware(end)
    if start_t is not None and end_t is not None and (start_t > end_t if equal_ok else start_t >= end_t):
        raise ApiError(
            422,
            "'from' must be before 'to'",
            code="validation_error",
            details=[{"loc": ["query", "from"], "message": "must be before 'to'"}],
        )


def make_window(
    start: datetime | None,
    end: datetime | None,
    granularity: Granularity,
    *,
    default_points: int,
    anchor: datetime | None,
) -> Window:
    """Resolve optional bounds to bucket boundaries; 422 when empty or too long.

    ``to`` is rounded up (the bucket it falls in is in the window, as before), so a
    default window holds exactly ``default_points`` buckets. Without ``to`` the window
    ends after the anchor's bucket, or after ``from``'s bucket when that is later:
    a ``from`` past the latest data is an empty window, not an error."""
    check_order(start, end)  # before rounding: 10:50 to 10:10 is no window, whatever the bucket
    step = STEP[granularity]
    start_t = aware(start)
    if start_t is not None:
        start_t = floor(start_t, granularity)
    end_t = aware(end)
    if end_t is not None:
        end_t = ceil(end_t, granularity)
    else:
        end_t = floor(aware(anchor) or datetime.now(UTC), granularity) + step
        if start_t is not None:
            end_t = max(end_t, start_t + step)
    if start_t is None:
        start_t = end_t - step * default_points
    if (end_t - start_t) / step > MAX_POINTS:
        raise ApiError(
            422,
            f"the window spans more than {MAX_POINTS} {granularity} buckets; narrow it"
            + (" or use hour" if granularity == "minute" else ""),
            code="validation_error",
            details=[{"loc": ["query", "from"], "max_points": MAX_POINTS}],
        )
    return Window(start_t, end_t, granularity)


async def latest_trend_bucket(session: AsyncSession, stream: str | None, granularity: Granularity) -> datetime | None:
    """Start of the most recent trend bucket (optionally of one stream)."""
    table = TrendMinute if granularity == "minute" else TrendHour
    latest = [
        select(func.max(table.bucket)).where(table.stream == s).scalar_subquery()
        for s in (STREAMS if stream is None else (stream,))
    ]
    # greatest() skips NULLs: the latest bucket of the streams that have one
    stmt = select(func.greatest(*latest, type_=table.bucket.type))
    value: datetime | None = (await session.execute(stmt)).scalar_one_or_none()
    return value


async def latest_routing_bucket(session: AsyncSession) -> datetime | None:
    value: datetime | None = (await session.execute(select(func.max(RoutingMinute.bucket)))).scalar_one_or_none()
    return value
