"""``tonewatch alerts``: alerts, rules and backtests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, get_args

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter import repo, store
from services.alerter.backtest import (
    BacktestEvent,
    PlotPathRefused,
    PlotUnavailable,
    RangeRefused,
    backtest,
    check_plot,
    check_plot_path,
    check_range,
    plot,
)
from services.alerter.config import AlerterSettings
from services.alerter.detect import Observation
from services.alerter.rules import RuleSpec, Scope, parse_duration, rule_context, scope_warnings
from shared.db.models import AlertRule
from shared.db.session import make_engine, make_sessionmaker
from shared.events import AlertStatus, format_validation_error

app = typer.Typer(help="Alerts, rules and backtests.", no_args_is_help=True)
STATUSES: tuple[str, ...] = get_args(AlertStatus)
rules_app = typer.Typer(help="Manage alert rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
T = TypeVar("T")


def _tx(fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    # read before the rule errors are caught: a bad TW_* setting is the CLI's
    # "invalid configuration" (exit 2, services.cli.main), not an "invalid rule"
    postgres = AlerterSettings().postgres

    async def go() -> T:
        engine = make_engine(postgres)
        try:
            async with make_sessionmaker(engine).begin() as s:
                return await fn(s)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except repo.NotFound as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except repo.Conflict as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except (repo.Ambiguous, RangeRefused) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except ValidationError as exc:
        typer.echo(f"error: invalid rule: {format_validation_error(exc)}", err=True)
        raise typer.Exit(2) from exc


def _alert_row(a: Any) -> dict[str, Any]:
    e = a.explanation or {}
    return {
        "id": a.id,
        "status": a.status,
        "severity": a.severity,
        "entity": a.entity,
        "rule_id": a.rule_id,
        "fired_at": a.fired_at.isoformat(),
        "window_end": a.window_end.isoformat(),
        "share": e.get("share"),
        "z": e.get("z"),
        "volume": e.get("volume"),
    }


@app.command("list")
def list_(
    status: str | None = typer.Option(None, help=f"Only alerts with this status: {', '.join(STATUSES)}."),
    entity: str | None = typer.Option(None),
    limit: int = typer.Option(50, min=1, help="Show at most this many alerts."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List alerts, newest first (by fired_at, then id, as GET /v1/alerts)."""
    if status is not None and status not in STATUSES:  # not an empty list: no alert can have it
        typer.echo(f"error: unknown status {status!r}; choose one of {', '.join(STATUSES)}", err=True)
        raise typer.Exit(2)
    rows = [_alert_row(a) for a in _tx(lambda s: repo.list_alerts(s, status=status, entity=entity, limit=limit))]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(
            f"{r['id']}  {r['status']:12} {r['severity']:8} {r['entity']:14} share={r['share']} "
            f"z={r['z']} volume={r['volume']} window_end={r['window_end']}"
        )


def _pct(x: Any) -> str:
    return f"{x * 100:.1f}%" if isinstance(x, int | float) else "?"


def _utc_minute(iso: Any) -> str:
    """A stored ISO time as the other times of :func:`describe` read (UTC, to the minute)."""
    try:
        return f"{datetime.fromisoformat(str(iso)).astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    except ValueError:
        return "?"


def _spread(e: dict[str, Any]) -> str:
    """The spread the z-score was divided by: the floor (``TW_ALERTER_STD_FLOOR``) where the
    baseline's own was below it, said so; alerts stored before that was recorded, their own."""
    used, own = e.get("baseline_std_used"), e.get("baseline_std")
    if isinstance(used, int | float) and isinstance(own, int | float) and used > own:
        return f"{_pct(used)} (the floor; its own {_pct(own)})"
    if isinstance(used, int | float) or not isinstance(own, int | float):
        return _pct(used if isinstance(used, int | float) else own)
    # stored before the spread used was: worked back from the z-score where that gives more
    share, mean, z = e.get("share"), e.get("baseline_mean"), e.get("z")
    # share and z are stored rounded (4 and 3 places): near z 0 the quotient is noise
    if isinstance(share, int | float) and isinstance(mean, int | float) and isinstance(z, int | float) and z >= 0.5:
        if (worked := (share - mean) / z) > own * 1.05 + 0.0005:
            return f"{_pct(worked)} (the spread the z-score used; its own {_pct(own)})"
    return _pct(own)


def describe(alert: Any, rule_name: str | None) -> list[str]:
    """Why an alert fired, as lines of text."""
    e = alert.explanation or {}
    when = f"{alert.window_start:%Y-%m-%d %H:%M} -> {alert.window_end:%H:%M} UTC"
    changed = "".join(
        f", {what} {at:%Y-%m-%d %H:%M:%S} UTC"
        for what, at in (
            ("acknowledged", getattr(alert, "acknowledged_at", None)),
            ("resolved", getattr(alert, "resolved_at", None)),
        )
        if at is not None
    )
    lines = [
        f"{alert.id}  {alert.status}  {alert.severity}  rule {alert.rule_id} {rule_name or '(deleted)'}",
        f"{alert.entity} ({alert.stream}), window {when}, fired {alert.fired_at:%Y-%m-%d %H:%M:%S} UTC{changed}, "
        f"model {alert.model_version}",
        f"negative share {_pct(e.get('share'))} of {e.get('volume', '?')} messages "
        f"({e.get('negatives', '?')} negative); baseline {_pct(e.get('baseline_mean'))} "
        + (
            f"over {e.get('history_volume', '?')} messages since {_utc_minute(e.get('history_start'))} "
            "(too few recent windows had data)"
            if e.get("baseline_method") == "history"
            else f"over {e.get('history_volume', '?')} messages of the whole stream since "
            f"{_utc_minute(e.get('history_start'))} (no history of its own)"
            if e.get("baseline_method") == "stream"
            else f"+/- {_spread(e)} over {e.get('baseline_windows', '?')} windows"
        )
        + f"; z {e.get('z', '?')}",
    ]
    terms = [t for t in e.get("top_terms") or [] if isinstance(t, dict)]
    if terms:
        lines.append(
            "terms of the window's negative messages, against the baseline period: "
            + ", ".join(f"{t.get('term')} ({t.get('window')} vs {t.get('baseline')})" for t in terms)
        )
    messages = e.get("top_messages") or []
    lines.append("most negative messages:" if messages else "no messages recorded")
    lines += [f"  {_pct(m.get('negative_prob'))}  {m.get('text', '')}" for m in messages]
    return lines


@app.command("show")
def show(alert_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One alert and why it fired: the numbers, the distinguishing terms, the most negative messages."""
    alert, rule_name = _tx(lambda s: repo.get_alert(s, alert_id))
    if as_json:
        typer.echo(json.dumps(_alert_row(alert) | {"rule_name": rule_name, "explanation": alert.explanation}))
        return
    for line in describe(alert, rule_name):
        typer.echo(line)


@app.command("ack")
def ack(alert_id: str) -> None:
    """Acknowledge an open alert."""
    _tx(lambda s: repo.transition(s, alert_id, "ack"))
    typer.echo(f"alert {alert_id} acknowledged")


@app.command("resolve")
def resolve(alert_id: str) -> None:
    """Resolve an alert."""
    _tx(lambda s: repo.transition(s, alert_id, "resolve"))
    typer.echo(f"alert {alert_id} resolved")


@rules_app.command("list")
def rules_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List rules."""
    rows = [repo.rule_to_dict(r) for r in _tx(repo.list_rules)]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(
            f"{r['id']:3} {r['name']:28} {'on ' if r['enabled'] else 'off'} scope={json.dumps(r['scope'])} "
            f"window={r['window_s']}s min_volume={r['min_volume']} abs>={r['abs_threshold']} "
            f"z>={r['z_threshold']} {r['baseline']} cooldown={r['cooldown_s']}s severity={r['severity']}"
        )


@rules_app.command("add")
def rules_add(
    name: str = typer.Argument(...),
    entity: list[str] = typer.Option([], "--entity", help="Entity key (repeatable); _all = whole stream."),
    group: str | None = typer.Option(None, "--group"),
    all_entities: bool = typer.Option(False, "--all-entities"),
    stream: str = typer.Option("news"),
    window: str = typer.Option("15m"),
    min_volume: int = typer.Option(5),
    abs_threshold: float = typer.Option(0.6),
    z: float = typer.Option(2.0, "--z"),
    baseline: str = typer.Option("ewma", help="ewma or mad"),
    severity: str = typer.Option("warning"),
    cooldown: str = typer.Option("1h"),
    resolve_after: str = typer.Option("15m"),
    webhook: list[str] = typer.Option([], "--webhook", help="URL (repeatable); prefix slack: for Slack format."),
) -> None:
    """Add a rule."""
    # webhook URLs are checked as the API checks them, under TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS
    context = rule_context(AlerterSettings().webhook_policy())
    try:
        spec = RuleSpec.model_validate(
            {
                "name": name,
                "stream": stream,
                "scope": Scope(entities=entity, group=group, all_entities=all_entities),
                "window_s": parse_duration(window),
                "min_volume": min_volume,
                "abs_threshold": abs_threshold,
                "z_threshold": z,
                "baseline": baseline,
                "severity": severity,
                "cooldown_s": parse_duration(cooldown),
                "resolve_after_s": parse_duration(resolve_after),
                "channels": [
                    {
                        "type": "webhook",
                        "url": w.removeprefix("slack:"),
                        "format": "slack" if w.startswith("slack:") else "json",
                    }
                    for w in webhook
                ],
            },
            context=context,
        )
    except (ValidationError, ValueError) as exc:
        msg = format_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        typer.echo(f"error: invalid rule: {msg}", err=True)
        raise typer.Exit(2) from exc

    async def add(s: AsyncSession) -> tuple[AlertRule, list[str]]:
        rule = await repo.create_rule(s, spec)
        return rule, await _scope_warnings(s, rule)

    rule, warnings = _tx(add)
    typer.echo(f"rule {rule.id} {rule.name} added")
    _warn(warnings)


async def _scope_warnings(session: AsyncSession, rule: AlertRule) -> list[str]:
    """What the saved rule's scope names that the watchlist lacks (entities, a group)."""
    return scope_warnings(rule.scope or {}, await store.entity_groups(session))


def _warn(warnings: list[str]) -> None:
    """The rule is saved; each warning on stderr (exit 0: a rule may come before its
    entities; a repeated channel an update dropped is said, its URL masked)."""
    for line in warnings:
        typer.echo(f"warning: {line}", err=True)


@rules_app.command("update")
def rules_update(
    rule: str,
    set_: list[str] = typer.Option(..., "--set", help="field=value, e.g. --set min_volume=10 --set window_s=900"),
) -> None:
    """Change rule fields (validated as a whole)."""
    changes: dict[str, Any] = {}
    for item in set_:
        key, _, value = item.partition("=")
        try:
            changes[key] = json.loads(value)
        except json.JSONDecodeError:
            changes[key] = value
    policy = AlerterSettings().webhook_policy()

    async def update(s: AsyncSession) -> tuple[repo.RuleUpdate, list[str]]:
        updated = await repo.update_rule(s, rule, changes, policy)
        return updated, [*updated.warnings, *await _scope_warnings(s, updated.rule)]

    updated, warnings = _tx(update)
    typer.echo(f"rule {updated.rule.id} {updated.rule.name} updated{_resolved(updated)}")
    _warn(warnings)


def _resolved(updated: repo.RuleUpdate) -> str:
    n = len(updated.resolved)
    return f"; {n} open alert(s) it no longer evaluates resolved" if n else ""


@rules_app.command("disable")
def rules_disable(rule: str) -> None:
    """Disable a rule (its open alerts are resolved)."""
    policy = AlerterSettings().webhook_policy()
    updated = _tx(lambda s: repo.update_rule(s, rule, {"enabled": False}, policy))
    typer.echo(f"rule {updated.rule.id} {updated.rule.name} disabled{_resolved(updated)}")
    _warn(updated.warnings)


@rules_app.command("delete")
def rules_delete(rule: str) -> None:
    """Delete a rule and its alerts; refused (exit 1) while it has open alerts: disable it first."""
    _tx(lambda s: repo.delete_rule(s, rule))
    typer.echo(f"rule {rule} deleted")


def _when(text: str, option: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO date or time (e.g. 2020-03-01)", param_hint=option) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@app.command("backtest")
def backtest_cmd(
    rule: str = typer.Option(..., "--rule", help="Rule id or name."),
    from_: str = typer.Option(..., "--from", help="ISO time, e.g. 2020-03-01"),
    to: str = typer.Option(..., "--to", help="ISO time, at most 92 days after --from"),
    entity: str | None = typer.Option(None, "--entity"),
    plot_path: Path | None = typer.Option(None, "--plot", help="Write a PNG chart here (a path ending in .png)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Replay stored buckets through the detector and print the alerts it would fire."""
    start, end = _when(from_, "--from"), _when(to, "--to")
    try:
        check_range(start, end)
    except RangeRefused as exc:
        raise typer.BadParameter(str(exc), param_hint="'--from' / '--to'") from None
    if plot_path:
        _refuse_unplottable(plot_path)
    settings = AlerterSettings()

    async def go(s: AsyncSession) -> Any:
        r = await repo.get_rule(s, rule)
        return await backtest(s, r, settings, start, end, entity, keep_series=plot_path is not None)

    events, series = _tx(go)
    rows = [
        {
            "kind": e.kind,
            "rule": e.rule,
            "entity": e.entity,
            "model_version": e.model_version,
            "at": e.observation.at.isoformat(),
            "share": round(e.observation.share, 4),
            "baseline": round(e.observation.baseline.mean, 4),
            # the entity's longer history (cold start) rather than the baseline's windows
            "baseline_history": e.observation.baseline.history_start is not None,
            # ... and that history is the whole stream's (no history of its own)
            "baseline_stream": e.observation.baseline.stream_prior,
            "z": None if e.observation.z is None else round(e.observation.z, 3),
            "volume": e.observation.volume,
            "alert_id": e.alert_id,
        }
        for e in events
    ]
    if as_json:
        typer.echo(json.dumps(rows))
    else:
        for r in rows:
            typer.echo(
                f"{r['at']}  {r['kind']:7} {r['entity']:14} share={r['share']} baseline={r['baseline']}"
                f"{' (stream)' if r['baseline_stream'] else ' (history)' if r['baseline_history'] else ''} "
                f"z={r['z']} volume={r['volume']}"
            )
        fired = sum(r["kind"] == "fire" for r in rows)
        typer.echo(f"{fired} alert{'' if fired == 1 else 's'} would have fired")
    # the chart comes after the alerts, so that one it cannot write hides none of them
    if plot_path:
        _write_chart(series, events, plot_path, quiet=as_json)


def _refuse_unplottable(path: Path) -> None:
    try:
        check_plot_path(path)
        check_plot()
    except (PlotPathRefused, PlotUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _write_chart(
    series: dict[tuple[str, str], list[Observation]], events: list[BacktestEvent], path: Path, *, quiet: bool
) -> None:
    try:
        plot(series, events, path)
    except OSError as exc:
        typer.echo(f"error: cannot write the chart to {path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from exc
    if not quiet:
        typer.echo(f"chart written to {path}")
