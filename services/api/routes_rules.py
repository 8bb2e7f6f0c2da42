"""Alert rules CRUD (``/v1/rules``), validated with the alerter's :class:`RuleSpec`.
Reads need the read scope (when keys are required for reads), writes need admin."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Response
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from services.alerter.rules import RuleSpec
from services.api.auth import require
from services.api.deps import Deps, get_deps
from services.api.errors import ApiError, error_responses, validation_details
from shared.db.models import INT4_MAX, AlertRule

router = APIRouter(tags=["rules"])
RuleId = Annotated[int, Path(ge=1, le=INT4_MAX)]
FIELDS = tuple(RuleSpec.model_fields)


class RuleOut(RuleSpec):
    """A stored rule."""

    id: int
    created_at: datetime | None = None


def to_out(row: AlertRule) -> RuleOut:
    data = {f: getattr(row, f) for f in FIELDS}
    return RuleOut.model_validate({**data, "id": row.id, "created_at": row.created_at})


def to_columns(spec: RuleSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True)


def spec_or_422(data: dict[str, Any]) -> RuleSpec:
    try:
        return RuleSpec.model_validate(data)
    except ValidationError as exc:
        details = validation_details([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])
        raise ApiError(422, "invalid rule", code="validation_error", details=details) from exc


async def _get(deps: Deps, rule_id: int) -> AlertRule:
    async with deps.sessions() as session:
        row = await session.get(AlertRule, rule_id)
    if row is None:
        raise ApiError(404, f"no rule {rule_id}")
    return row


def _conflict(spec: RuleSpec) -> ApiError:
    return ApiError(409, f"a rule named {spec.name!r} already exists", details=[{"loc": ["body", "name"]}])


@router.get("/v1/rules", response_model=list[RuleOut], dependencies=[Depends(require("read"))])
async def list_rules(deps: Annotated[Deps, Depends(get_deps)]) -> list[RuleOut]:
    """Every alert rule."""
    async with deps.sessions() as session:
        rows = (await session.execute(select(AlertRule).order_by(AlertRule.id))).scalars().all()
    return [to_out(r) for r in rows]


@router.get(
    "/v1/rules/{rule_id}",
    response_model=RuleOut,
    dependencies=[Depends(require("read"))],
    responses=error_responses({404: "No such rule"}),
)
async def get_rule(rule_id: RuleId, deps: Annotated[Deps, Depends(get_deps)]) -> RuleOut:
    """One alert rule."""
    return to_out(await _get(deps, rule_id))


@router.post(
    "/v1/rules",
    response_model=RuleOut,
    status_code=201,
    dependencies=[Depends(require("admin"))],
    responses=error_responses({409: "A rule of that name exists"}),
)
async def create_rule(spec: RuleSpec, deps: Annotated[Deps, Depends(get_deps)]) -> RuleOut:
    """Create a rule (409 if the name is taken). The alerter picks it up on its next refresh."""
    try:
        async with deps.sessions.begin() as session:
            row = AlertRule(**to_columns(spec))
            session.add(row)
            await session.flush()
            await session.refresh(row)
    except IntegrityError as exc:
        raise _conflict(spec) from exc
    return to_out(row)


@router.patch(
    "/v1/rules/{rule_id}",
    response_model=RuleOut,
    dependencies=[Depends(require("admin"))],
    responses=error_responses({404: "No such rule", 409: "A rule of that name exists"}),
)
async def patch_rule(
    rule_id: RuleId,
    deps: Annotated[Deps, Depends(get_deps)],
    patch: Annotated[dict[str, Any], Body(examples=[{"abs_threshold": 0.7, "enabled": False}])],
) -> RuleOut:
    """Change some fields; the merged rule is validated as a whole."""
    current = to_out(await _get(deps, rule_id)).model_dump(mode="json", include=set(FIELDS))
    spec = spec_or_422({**current, **patch})
    try:
        async with deps.sessions.begin() as session:
            row = await session.get(AlertRule, rule_id)
            if row is None:
                raise ApiError(404, f"no rule {rule_id}")
            for key, value in to_columns(spec).items():
                setattr(row, key, value)
            await session.flush()
            await session.refresh(row)
    except IntegrityError as exc:
        raise _conflict(spec) from exc
    return to_out(row)


@router.delete(
    "/v1/rules/{rule_id}",
    status_code=204,
    dependencies=[Depends(require("admin"))],
    responses=error_responses({404: "No such rule"}),
)
async def delete_rule(rule_id: RuleId, deps: Annotated[Deps, Depends(get_deps)]) -> Response:
    """Delete a rule together with its alerts and detector state (prefer ``enabled: false`` to pause it)."""
    async with deps.sessions.begin() as session:
        deleted = (
            await session.execute(delete(AlertRule).where(AlertRule.id == rule_id).returning(AlertRule.id))
        ).scalar_one_or_none()
    if deleted is None:
        raise ApiError(404, f"no rule {rule_id}")
    return Response(status_code=204)
