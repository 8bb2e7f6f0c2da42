"""``tonewatch status`` and ``tonewatch demo``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, TypeVar, cast

import typer
from pydantic import ValidationError

from services.cli.ingest import NEWS_BACKFILL, NEWS_SPEEDUP
from services.cli.stack import start_stack
from shared.config import ServiceSettings
from shared.stack.settings import StackSettings, kafka_bootstrap, postgres_url, redis_url


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("demo")(demo)


def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Health of the Kafka, PostgreSQL and Redis the services use (``TW_KAFKA__*``,
    ``TW_POSTGRES__*``, ``TW_REDIS__*``), consumer lag of each service's group and
    throughput. Exit 1 when one is down or lag/throughput cannot be read."""
    from services.aggregator.config import AggregatorSettings
    from services.classifier.config import ClassifierSettings
    from services.ops import consumer_groups, consumer_lag, dependencies, health, throughput
    from services.router.config import RouterSettings
    from shared.logs import scrub

    settings = ServiceSettings()
    # A service whose settings are invalid (it would refuse to start, exit 2) is a failing
    # check: its line says why, and the stack, the other groups' lag and throughput are
    # still shown. Its group is left out of the lag: which group it is comes from the settings.
    invalid: dict[str, str] = {}
    classifier = _service_settings("classifier", ClassifierSettings, invalid)
    aggregator = _service_settings("aggregator", AggregatorSettings, invalid)
    router = _service_settings("router", RouterSettings, invalid)
    groups = [g for g in consumer_groups(classifier, aggregator, router) if g.service not in invalid]
    deps = dependencies(settings)
    problems = asyncio.run(health(deps))
    data: dict[str, Any] = {
        "stack": {name: problems[name] is None for name in deps},
        "endpoints": {name: dep.target for name, dep in deps.items()},
        "groups": {g.service: g.group_id for g in groups},
    }
    if invalid:
        data["invalid_config"] = invalid
    down = {name: why for name, why in problems.items() if why is not None}
    if down:
        data["down"] = down
    errors: list[str] = []
    # Lag needs only Kafka and throughput only PostgreSQL: each is shown when its
    # dependency answers, whatever the others do.
    if "kafka" not in down:
        try:
            data["lag"] = asyncio.run(consumer_lag(settings, groups))
        except Exception as exc:  # noqa: BLE001 - status reports, never crashes
            errors.append(scrub(f"lag: {type(exc).__name__}: {exc}"))
    if "postgres" not in down:
        try:
            data["throughput"] = asyncio.run(throughput(settings))
        except Exception as exc:  # noqa: BLE001 - status reports, never crashes
            errors.append(scrub(f"throughput: {type(exc).__name__}: {exc}"))
    if errors:
        data["error"] = "; ".join(errors)
    if as_json:
        typer.echo(json.dumps(data))
    else:
        for name, ok in data["stack"].items():
            line = f"{name:10} {'healthy' if ok else 'DOWN':8} {data['endpoints'][name]}"
            typer.echo(line + (f" ({down[name]})" if name in down else ""))
        for service, why in invalid.items():
            typer.echo(f"{service:10} {why}")
        for service, lag in data.get("lag", {}).items():
            by_topic = ", ".join(f"{t}={n}" for t, n in lag.items()) or "-"
            typer.echo(f"{service:10} lag {by_topic} (group {data['groups'][service]})")
        if "throughput" in data:
            t = data["throughput"]
            typer.echo(
                f"throughput (last {t['window_min']} min): stored {t['stored_per_s']}/s, routed {t['routed_per_s']}/s"
            )
        if "error" in data:
            typer.echo(f"error: {data['error']}", err=True)
    if down or invalid or "error" in data:
        raise typer.Exit(1)


_S = TypeVar("_S", bound=ServiceSettings)


def _service_settings(service: str, cls: type[_S], invalid: dict[str, str]) -> _S:
    """A service's settings; when they are invalid, why (in ``invalid``, one line as the CLI
    gives it for any command, without the values) and its defaults, not read from the
    environment, in their place."""
    from shared.logs import scrub

    try:
        return cls()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
        invalid[service] = scrub(f"invalid configuration ({exc.title}): {problems}")
        return cast(_S, cls.model_construct())  # BaseSettings types it as its own class


def _wait_http(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own localhost URL
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(1)
    return False


def stack_endpoints(stack: StackSettings) -> dict[str, str]:
    """The services' connection settings for the local stack as it is configured
    (``TW_STACK_*`` ports, password): a demo on other ports reaches it too."""
    return {
        "TW_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap(stack),
        "TW_POSTGRES__URL": postgres_url(stack),
        "TW_REDIS__URL": redis_url(stack),
    }


def demo(
    limit: int | None = typer.Option(None, min=1, help="Replay only the first N headlines."),
    news_speedup: float = NEWS_SPEEDUP,
    news_backfill: float = NEWS_BACKFILL,
    logs_dir: Path = typer.Option(Path(".tonewatch/demo"), help="Where service logs go."),
) -> None:
    """Everything a newcomer needs: stack up, migrate, watchlist, start all services,
    replay the demo data, print the dashboard URL. Ctrl-C stops the services."""
    from shared.db import migrate

    stack_settings = StackSettings()
    stack = start_stack(stack_settings, lambda line: typer.echo(line, err=True), install_prereqs=os.geteuid() == 0)
    if not stack.ok:
        typer.echo("error: the local stack is not healthy; see `tonewatch stack status`", err=True)
        raise typer.Exit(1)
    for name, value in stack_endpoints(stack_settings).items():
        os.environ.setdefault(name, value)  # for this command and the services it starts
    settings = ServiceSettings()
    migrate.upgrade(settings.postgres)
    me = [sys.executable, "-m", "services"]
    subprocess.run([*me, "entities", "import"], check=True)  # noqa: S603
    logs_dir.mkdir(parents=True, exist_ok=True)
    services_log = (logs_dir / "services.log").open("ab")
    ingest_log = (logs_dir / "ingest.log").open("ab")
    services = subprocess.Popen([*me, "run", "all"], stdout=services_log, stderr=subprocess.STDOUT)  # noqa: S603
    api_port = int(os.environ.get("TW_API_PORT", "8080"))
    url = f"http://127.0.0.1:{api_port}/"
    if not _wait_http(url + "healthz", 120):
        typer.echo(f"error: the API did not come up; see {logs_dir / 'services.log'}", err=True)
        services.terminate()
        raise typer.Exit(1)
    replay_cmd = [*me, "ingest", "demo", "--news-speedup", str(news_speedup), "--news-backfill", str(news_backfill)]
    if limit:
        replay_cmd += ["--limit", str(limit)]
    replay = subprocess.Popen(replay_cmd, stdout=ingest_log, stderr=subprocess.STDOUT)  # noqa: S603
    typer.echo(f"\ntonewatch demo is running. Dashboard: {url}\nLogs: {logs_dir}/\nCtrl-C stops it.\n")
    try:
        while services.poll() is None:
            time.sleep(1)
        typer.echo(f"services exited with {services.returncode}; see {logs_dir / 'services.log'}", err=True)
    except KeyboardInterrupt:
        typer.echo("stopping...", err=True)
    finally:
        for proc in (replay, services):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (replay, services):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        services_log.close()
        ingest_log.close()
