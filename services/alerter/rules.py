"""Alert rule specification: validated input for the CLI, the API and the detector."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.alerter.deliver import url_key
from services.alerter.netguard import AddressPolicy
from shared.db.models import INT4_MAX
from shared.entities import ALL, EntityKey, PlainText
from shared.logs import mask_url

Severity = Literal["info", "warning", "critical"]
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int) -> int:
    """``"5m"`` -> 300. Integers are seconds."""
    if isinstance(text, int):
        return text
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"invalid duration {text!r}: use e.g. 90s, 5m, 1h, 1d")
    return int(m.group(1)) * _UNITS[m.group(2)]


class Scope(BaseModel):
    """Which entities a rule watches: named entities, a group, or every watched
    entity (each evaluated separately). ``_all`` is the whole stream."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: list[EntityKey] = Field(default_factory=list, max_length=1000)
    group: PlainText | None = Field(default=None, max_length=64)
    all_entities: bool = False

    @field_validator("group")
    @classmethod
    def _trimmed(cls, group: str | None) -> str | None:
        """Entities' groups are stored trimmed: a rule's group is too, or it never matches."""
        return None if group is None else group.strip()

    @model_validator(mode="after")
    def _one_kind(self) -> Scope:
        if sum((bool(self.entities), self.group is not None, self.all_entities)) != 1:
            raise ValueError("scope needs exactly one of: entities, group, all_entities")
        return self


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["webhook"] = "webhook"
    url: HttpUrl
    format: Literal["json", "slack"] = "json"


WEBHOOK_POLICY = "webhook_policy"
KEPT_HOSTS = "webhook_kept_hosts"
KEPT_URLS = "webhook_kept_urls"


def rule_context(policy: AddressPolicy, kept: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Validation context that checks webhook hosts under ``policy`` (the operator's
    allowed networks): ``RuleSpec.model_validate(data, context=rule_context(policy))``.
    ``kept``: the channels the rule has now (an update): their hosts are not checked
    again, so a rule saved before the check, or before its network was disallowed, can
    still be disabled or otherwise changed (the alerter still refuses to deliver there);
    nor are their URLs' forms (a fragment, refused since), so a rule stored with one can
    still be changed, and delivers as before."""
    hosts, urls = set(), set()
    for channel in kept:
        with contextlib.suppress(ValueError, TypeError):
            url = HttpUrl(str(channel.get("url", "")))
            hosts.add(url.host)
            urls.add(str(url))
    return {WEBHOOK_POLICY: policy, KEPT_HOSTS: frozenset(h for h in hosts if h), KEPT_URLS: frozenset(urls)}


def _sendable(channel: Channel, info: ValidationInfo) -> Channel:
    """Refuse a URL the webhook client cannot build a request to. A valid URL is not
    enough: ``https://☃.net/`` passes as ``https://xn--n3h.net/``, which httpx refuses
    (IDNA) only when it sends. Refuse a URL whose host is ``localhost`` or an address
    written out that webhooks may not reach (loopback, private, link-local, metadata...):
    the policy comes from the validation context (:func:`rule_context`), without one no
    internal network is allowed. Host names are checked at delivery (DNS can change).
    Refuse a fragment (``#...``): it is never sent, so ``u#x`` is ``u`` listed a second
    time under another name. Checked on a rule's channels, not on :class:`Channel`, so
    that a rule stored before these checks still lists (and can be fixed); a channel the
    rule has now (:func:`rule_context`'s ``kept``) is not refused its fragment."""
    try:
        httpx.Request("POST", str(channel.url))
    except Exception as exc:  # noqa: BLE001 - httpx raises IDNA and other non-httpx errors here
        raise ValueError(f"the webhook client cannot send to this URL ({type(exc).__name__}: {exc})") from None
    context = info.context or {}
    if channel.url.fragment is not None and str(channel.url) not in context.get(KEPT_URLS, ()):
        raise ValueError(
            "a webhook URL cannot have a fragment (#...): it is never sent to the receiver, so the URL would "
            "only name the same webhook again; remove it"
        )
    if channel.url.host in context.get(KEPT_HOSTS, ()):
        return channel  # already on the rule: an update does not re-judge it
    policy = context.get(WEBHOOK_POLICY)
    refusal = (policy if isinstance(policy, AddressPolicy) else AddressPolicy()).host_refusal(channel.url.host or "")
    if refusal:
        raise ValueError(
            f"webhooks may not reach internal addresses: {refusal}; an operator can allow a network with "
            "TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS"
        )
    return channel


SendableChannel = Annotated[Channel, AfterValidator(_sendable)]


def channel_key(channel: Channel) -> tuple[str, str]:
    """What makes two channels the same one: the URL as the receiver gets it
    (:func:`~services.alerter.deliver.url_key`: host lowercased, a bare host given its
    ``/``, default port, trailing dot, empty query and fragment dropped) and the format.
    A rule lists each channel once."""
    return url_key(str(channel.url)), channel.format


def collapse_channels(channels: Iterable[Any]) -> tuple[list[Any], list[str]]:
    """A stored rule's channels with each repeat of a channel (:func:`channel_key`, as
    :class:`RuleSpec` refuses them) dropped, the first kept in its place, and one warning
    per repeat dropped (its URL masked: it is a credential). For a rule stored before
    repeats were refused: an update that does not set ``channels`` saves them once. A
    channel that does not validate is kept as stored, for the rule's validation to report."""
    kept: list[Any] = []
    warnings: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for i, stored in enumerate(channels):
        try:
            key = channel_key(Channel.model_validate(stored))
        except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
            kept.append(stored)
            continue
        first = seen.setdefault(key, i)
        if first == i:
            kept.append(stored)
        else:
            warnings.append(
                f"channel {i} repeated channel {first} ({mask_url(key[0])}, format {key[1]}): the rule was stored "
                "listing it twice (before that was refused); it now lists it once"
            )
    return kept, warnings


class RuleSpec(BaseModel):
    """A spike rule. Fires when, over ``window``, volume >= ``min_volume``, the
    negative share >= ``abs_threshold`` and its z-score against the baseline >=
    ``z_threshold``. Infinity and NaN are refused (a threshold of ``1e999`` never fires)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w.-]+$")
    stream: Literal["news", "chat"] = "news"
    scope: Scope
    window_s: int = Field(ge=60, le=7 * 86400, description="Window length in seconds (whole minutes).")
    min_volume: int = Field(ge=1, le=INT4_MAX)
    abs_threshold: float = Field(ge=0, le=1)
    z_threshold: float = Field(ge=0)
    baseline: Literal["ewma", "mad"] = "ewma"
    severity: Severity = "warning"
    cooldown_s: int = Field(ge=0, le=INT4_MAX)
    resolve_after_s: int = Field(ge=0, le=INT4_MAX)
    channels: list[SendableChannel] = Field(default_factory=list)
    enabled: bool = True

    @field_validator("channels")
    @classmethod
    def _distinct_channels(cls, channels: list[Channel]) -> list[Channel]:
        """A channel listed twice would get every alert twice: refused, naming it (masked:
        its URL is a credential). URLs are compared as the receiver gets them
        (:func:`channel_key`), so two spellings of one URL (``u``, ``u?``) count as the same."""
        seen: dict[tuple[str, str], int] = {}
        for i, channel in enumerate(channels):
            first = seen.setdefault(channel_key(channel), i)
            if first != i:
                raise ValueError(
                    f"channel {i} repeats channel {first} ({mask_url(str(channel.url))}, format "
                    f"{channel.format}): each alert would be sent to it twice; list a channel once"
                )
        return channels

    @model_validator(mode="after")
    def _whole_minutes(self) -> RuleSpec:
        if self.window_s % 60:
            raise ValueError("window must be a whole number of minutes")
        return self

    @field_validator("name")
    @classmethod
    def _not_an_id(cls, name: str) -> str:
        """The CLI takes a rule by id or by name: a name of digits would read as another
        rule's id (``rules delete 1`` deleting rule 1, not the rule named ``1``)."""
        if name.isdigit():
            raise ValueError("a rule name cannot be all digits: a number names a rule by its id")
        return name

    @model_validator(mode="after")
    def _can_match(self) -> RuleSpec:
        """Refuse a scope that can never match: the alerter would evaluate nothing, silently."""
        if self.scope.group == "":
            raise ValueError("scope.group is empty: an empty group matches no entity; name a group")
        if self.stream == "chat" and set(self.scope.entities) != {ALL}:
            raise ValueError(
                'a chat rule\'s scope must be {"entities": ["_all"]}: chats are not tagged with entities '
                "(they count only under _all), so any other scope never matches"
            )
        return self


def scope_warnings(scope: Scope | Mapping[str, Any], groups: Mapping[str, str | None]) -> list[str]:
    """What a scope names that the watchlist (``groups``: each entity's key and group) does
    not have, one line each, with the watchlist's spelling when only the case differs:
    matching is exact, so such a rule never fires for it until the watchlist has the name.
    Not an error: a rule may be saved before its entities. ``_all`` is always there."""
    data = scope.model_dump() if isinstance(scope, Scope) else scope
    known_groups = {g for g in groups.values() if g is not None}
    warnings = []
    entities = [str(e) for e in data.get("entities") or () if e != ALL and e not in groups]
    if entities:
        folded = _by_folded(groups)
        for e in entities:
            warnings.append(_missing(f"scope entity {e!r} is not on the watchlist", folded.get(e.casefold())))
    group = data.get("group")
    if group and group not in known_groups:
        near = _by_folded(known_groups).get(str(group).casefold())
        warnings.append(_missing(f"scope group {group!r} is not the group of any entity on the watchlist", near))
    return warnings


def _by_folded(names: Iterable[str]) -> dict[str, list[str]]:
    folded: dict[str, list[str]] = {}
    for name in sorted(names):
        folded.setdefault(name.casefold(), []).append(name)
    return folded


def _missing(text: str, near: list[str] | None) -> str:
    if near:
        text += "; did you mean " + " or ".join(repr(k) for k in near) + "?"
    return text + " (matching is exact: the rule does not fire for it until the watchlist has it)"


DEFAULT_RULES: tuple[RuleSpec, ...] = (
    # Tuned by backtest on the demo replay of the Guardian headlines (one alert, on the
    # Covid-19 sell-off news); on a live feed it watches the whole stream in 2-minute windows.
    RuleSpec(
        name="stream-negative-surge",
        scope=Scope(entities=["_all"]),
        window_s=120,
        min_volume=20,
        abs_threshold=0.5,
        z_threshold=1.5,
        severity="warning",
        cooldown_s=900,
        resolve_after_s=180,
    ),
    RuleSpec(
        name="watchlist-negative-spike",
        scope=Scope(all_entities=True),
        window_s=900,
        # 5, not 3: at 3, two negative headlines of three passed, and an entity with about
        # ten headlines an hour, a quarter negative, raised 105 false criticals in 30 days
        # of noise (39 at 5), one with three an hour 17 (0 at 5); a burst of 8 negative in
        # 8 minutes is caught as often (bench/alerter_noise.py). Seeded into new databases.
        min_volume=5,
        abs_threshold=0.6,
        z_threshold=1.5,
        severity="critical",
        cooldown_s=3600,
        resolve_after_s=900,
    ),
)
