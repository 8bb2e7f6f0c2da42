"""Alert rules CRUD (``/v1/rules``), validated with the alerter's :class:`RuleSpec`.
Reads need the read scope (when keys are required for reads), writes need admin.
Webhook URLs are credentials (a Slack incoming webhook, ``user:pass@``, ``?token=``):
only a caller with the admin scope reads them whole, anyone else gets scheme and host."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter import repo, store
from services.alerter.netguard import AddressPolicy
from services.alerter.rules import Channel, RuleSpec, rule_context, scope_warnings
from services.api.auth import KeyInfo, implies, reader, require
from services.api.deps import Deps, get_deps, get_webhook_policy
from services.api.errors import ApiError, error_responses, validation_details
from shared.db.models import INT4_MAX, AlertRule
from shared.logs import URL_MASK as MASK
from shared.logs import mask_url

router = APIRouter(tags=["rules"])
RuleId = Annotated[int, Path(ge=1, le=INT4_MAX)]
FIELDS = tuple(RuleSpec.model_fields)


class ChannelOut(BaseModel):
    """A stored channel; ``url`` is masked for callers without the admin scope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["webhook"] = "webhook"
    url: str = Field(
        description=f"The webhook URL; without the admin scope only its scheme and host (`https://host/{MASK}`)."
    )
    format: Literal["json", "slack"] = "json"


class RuleOut(RuleSpec):
    """A stored rule."""

    # A rule stored before infinity was refused still lists (as null) and can be patched.
    model_config = ConfigDict(allow_inf_nan=True)

    id: int
    created_at: datetime | None = None
    # The URL as text: a masked one is no longer a URL to validate.
    channels: list[ChannelOut] = Field(default_factory=list)  # type: ignore[assignment]

    # A rule stored before all-digit names and never-matching scopes were refused still lists.
    @field_validator("name")
    @classmethod
    def _not_an_id(cls, name: str) -> str:
        return name

    @model_validator(mode="after")
    def _can_match(self) -> RuleOut:
        return self

    # A rule stored before repeated channels were refused still lists; and masked URLs of
    # two different channels may read the same.
    @field_validator("channels")
    @classmethod
    def _distinct_channels(cls, channels: list[ChannelOut]) -> list[ChannelOut]:  # type: ignore[override]
        return channels


class RuleSaved(RuleOut):
    """A rule as created or changed, with what in it looks wrong but was accepted."""

    warnings: list[str] = Field(
        default_factory=list,
        description="What the rule names that the watchlist lacks (a scope entity, or a group no entity has), "
        "with the watchlist's spelling when only the case differs: matching is exact, so the rule cannot fire "
        "until the watchlist has it. The rule is saved all the same (it may come before its entities). On a "
        "patch that does not set `channels`, also each channel the rule was stored listing twice (before that "
        "was refused), now listed once (its URL masked).",
    )


def to_out(row: AlertRule, *, reveal: bool) -> RuleOut:
    """The rule as the API shows it; channel URLs whole only with ``reveal``."""
    data = {f: getattr(row, f) for f in FIELDS}
    channels = [Channel.model_validate(c).model_dump(mode="json") for c in row.channels or ()]
    if not reveal:
        channels = [{**c, "url": mask_url(c["url"])} for c in channels]
    return RuleOut.model_validate({**data, "channels": channels, "id": row.id, "created_at": row.created_at})


async def saved(session: AsyncSession, row: AlertRule, before: Sequence[str] = ()) -> RuleSaved:
    """The rule as saved (URLs whole: only an admin saves), with its scope's warnings after
    ``before`` (the update's own: a repeated channel it dropped)."""
    warnings = [*before, *scope_warnings(row.scope or {}, await store.entity_groups(session))]
    return RuleSaved.model_validate({**to_out(row, reveal=True).model_dump(), "warnings": warnings})


def reveals_urls(key: KeyInfo | None) -> bool:
    """Only the admin scope reads webhook URLs whole."""
    return key is not None and implies(key.scopes, "admin")


def to_columns(spec: RuleSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True)


def spec_or_422(data: object, policy: AddressPolicy, kept: Sequence[Mapping[str, Any]] = ()) -> RuleSpec:
    """``data`` as a rule, its webhook URLs checked under ``policy`` (but for the hosts of
    ``kept``, the channels the rule has now); 422 when invalid."""
    try:
        return RuleSpec.model_validate(data, context=rule_context(policy, kept))
    except ValidationError as exc:
        raise invalid(exc) from exc


def invalid(exc: ValidationError) -> ApiError:
    """A rule's validation errors as a 422, located in the body."""
    details = validation_details([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])
    return ApiError(422, "invalid rule", code="validation_error", details=details)


async def _get(deps: Deps, rule_id: int) -> AlertRule:
    async with deps.reads() as session:
        row = await session.get(AlertRule, rule_id)
    if row is None:
        raise ApiError(404, f"no rule {rule_id}")
    return row


def _conflict(spec: RuleSpec) -> ApiError:
    return ApiError(409, f"a rule named {spec.name!r} already exists", details=[{"loc": ["body", "name"]}])


@router.get("/v1/rules", response_model=list[RuleOut])
async def list_rules(
    deps: Annotated[Deps, Depends(get_deps)], key: Annotated[KeyInfo | None, Depends(reader)]
) -> list[RuleOut]:
    """Every alert rule. Channel URLs are masked unless the key has the admin scope."""
    async with deps.reads() as session:
        rows = (await session.execute(select(AlertRule).order_by(AlertRule.id))).scalars().all()
    return [to_out(r, reveal=reveals_urls(key)) for r in rows]


@router.get("/v1/rules/{rule_id}", response_model=RuleOut, responses=error_responses({404: "No such rule"}))
async def get_rule(
    rule_id: RuleId, deps: Annotated[Deps, Depends(get_deps)], key: Annotated[KeyInfo | None, Depends(reader)]
) -> RuleOut:
    """One alert rule. Channel URLs are masked unless the key has the admin scope."""
    return to_out(await _get(deps, rule_id), reveal=reveals_urls(key))


@router.post(
    "/v1/rules",
    response_model=RuleSaved,
    status_code=201,
    dependencies=[Depends(require("admin"))],
    responses=error_responses({409: "A rule of that name exists"}),
)
async def create_rule(
    # Documented as a RuleSpec but handed over as sent (SkipValidation): it is validated
    # below, with the webhook address policy as context, which FastAPI cannot give pydantic.
    body: Annotated[RuleSpec, SkipValidation(), Body(title="RuleSpec")],
    deps: Annotated[Deps, Depends(get_deps)],
    policy: Annotated[AddressPolicy, Depends(get_webhook_policy)],
) -> RuleSaved:
    """Create a rule (409 if the name is taken). The alerter picks it up on its next refresh.
    A webhook URL naming ``localhost`` or an internal address (loopback, private,
    link-local...) is refused (422) unless its network is allowed
    (``TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS``), and so is a channel listed twice. A scope
    entity or group not on the watchlist is accepted, with a line in ``warnings``."""
    spec = spec_or_422(body, policy)
    try:
        async with deps.sessions.begin() as session:
            row = AlertRule(**to_columns(spec))
            session.add(row)
            await session.flush()
            await session.refresh(row)
            out = await saved(session, row)
    except IntegrityError as exc:
        raise _conflict(spec) from exc
    return out


@router.patch(
    "/v1/rules/{rule_id}",
    response_model=RuleSaved,
    dependencies=[Depends(require("admin"))],
    responses=error_responses({404: "No such rule", 409: "A rule of that name exists"}),
)
async def patch_rule(
    rule_id: RuleId,
    deps: Annotated[Deps, Depends(get_deps)],
    patch: Annotated[dict[str, Any], Body(examples=[{"abs_threshold": 0.7, "enabled": False}])],
    policy: Annotated[AddressPolicy, Depends(get_webhook_policy)],
) -> RuleSaved:
    """Change some fields; the merged rule is validated as a whole (webhook URLs as on
    create; ``warnings`` as on create, for the rule's scope as it now is). The rule is read
    locked in the writing transaction, so concurrent patches of different fields both
    apply. A rule stored listing a channel twice (before that was refused) is saved with
    it listed once, with a line in ``warnings``, unless the patch sets ``channels`` (a
    repeat in those is refused, 422). Disabling the rule, or changing its stream or scope so
    that an open alert's entity is no longer covered, resolves that alert (announced on the
    ``alerts`` topic like any resolution): nothing would evaluate it any more."""
    try:
        async with deps.sessions.begin() as session:
            changed = await repo.update_rule(session, rule_id, patch, policy)
            out = await saved(session, changed.rule, changed.warnings)
    except repo.NotFound as exc:
        raise ApiError(404, f"no rule {rule_id}") from exc
    except ValidationError as exc:
        raise invalid(exc) from exc
    except repo.Conflict as exc:
        raise ApiError(409, str(exc), details=[{"loc": ["body", "name"]}]) from exc
    return out


@router.delete(
    "/v1/rules/{rule_id}",
    status_code=204,
    dependencies=[Depends(require("admin"))],
    responses=error_responses(
        {404: "No such rule", 409: "The rule has open alerts, or alert changes not yet announced"}
    ),
)
async def delete_rule(rule_id: RuleId, deps: Annotated[Deps, Depends(get_deps)]) -> Response:
    """Delete a rule together with its alerts and detector state (prefer ``enabled: false`` to
    pause it). Refused (409) while the rule has open alerts (disable it first: that resolves
    them) or alert status changes not yet announced on the ``alerts`` topic (usually a
    second): deleted alerts are never announced, so their consumers would not hear them close."""
    try:
        async with deps.sessions.begin() as session:
            await repo.delete_rule(session, rule_id)
    except repo.NotFound as exc:
        raise ApiError(404, f"no rule {rule_id}") from exc
    except repo.Conflict as exc:
        raise ApiError(409, str(exc)) from exc
    return Response(status_code=204)
