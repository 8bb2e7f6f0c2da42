"""The dashboard's alert explanation and live feed, in headless Chromium over a stubbed
API (no stack): why an alert crossed the line, whole headlines and when they were
written, the spike's window in the feed, and a long entity name kept in its panel."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browser.seed import CHROMIUM, CHROMIUM_ARGS
from playwright.async_api import Page, Route, async_playwright, expect

from services.api.dashboard import STATIC_DIR

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]
BASE = "http://dashboard.test"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
LONG = (
    "BP refinery outage: regulator opens probe into safety failures after third fire this year, "
    "shares slide as analysts cut targets and lawsuits mount"
)
NAME = "BP p.l.c. " + "Ü" * 150


def _alert(alert_id: str, explanation: dict[str, Any], window_end: datetime) -> dict[str, Any]:
    return {
        "id": alert_id,
        "rule_id": 1,
        "rule_name": "spike",
        "entity": "bp",
        "stream": "news",
        "status": "open",
        "severity": "critical",
        "window_start": (window_end - timedelta(minutes=5)).isoformat(),
        "window_end": window_end.isoformat(),
        "fired_at": datetime.now(UTC).isoformat(),  # a catch-up: fired now, for a window hours ago
        "acknowledged_at": None,
        "resolved_at": None,
        "model_version": "v1",
        "explanation": explanation,
    }


OLD = {"share": 0.82, "volume": 38, "negatives": 31, "baseline_mean": 0.36, "baseline_std": 0.11, "z": 4.1}
NEW = OLD | {
    "baseline_center": 0.36,
    "baseline_std_used": 0.11,
    "baseline_method": "mad",
    "min_volume": 10,
    "abs_threshold": 0.5,
    "z_threshold": 3.0,
    "top_messages": [
        {"id": "m1", "text": LONG, "negative_prob": 0.9, "event_time": (NOW - timedelta(hours=6)).isoformat()},
        {"id": "m2", "text": "no time recorded", "negative_prob": 0.8},
    ],
}


def _api(alert: dict[str, Any]) -> dict[str, Any]:
    """The replies the page asks for, by path."""
    stats = {
        "total": 40,
        "negative_share_total": 0.8,
        "negative_share": [0.2, 0.8],
        "volume": [4, 36],
        "open_alerts": 1,
    }
    buckets = [
        {"bucket": (NOW - timedelta(hours=12 - i)).isoformat(), "count": 4, "negative": 1, "negative_share": 0.25}
        for i in range(12)
    ]
    trend = {"from": buckets[0]["bucket"], "to": NOW.isoformat(), "buckets": buckets}
    return {
        "/v1/status": {"models": [], "classifier": None},
        "/v1/entities": {
            "overall": stats,
            "entities": [{"key": "bp", "name": NAME, "stats": stats}],
            "window": {"to": NOW.isoformat()},
        },
        "/v1/trends": trend,
        "/v1/alerts": [alert],
        f"/v1/alerts/{alert['id']}": alert,
        "/v1/routing": {"queues": [], "to": NOW.isoformat()},
        "/v1/entities/bp/messages": [],
    }


async def _open(page: Page, alert: dict[str, Any]) -> None:
    replies = _api(alert)

    async def handle(route: Route) -> None:
        path = route.request.url.removeprefix(BASE).split("?")[0]
        if path == "/":
            await route.fulfill(path=STATIC_DIR / "index.html")
        elif path.startswith("/static/"):
            await route.fulfill(path=STATIC_DIR / path.removeprefix("/static/"))
        elif path == "/v1/alerts/stream":
            body = f"retry: 600000\nevent: snapshot\ndata: {json.dumps({'alerts': [alert]})}\n\n"
            await route.fulfill(body=body, content_type="text/event-stream")
        elif path in replies:
            await route.fulfill(json=replies[path])
        else:
            await route.fulfill(status=404, json={"detail": path})

    await page.route(f"{BASE}/**", handle)
    await page.goto(BASE + "/")
    await page.locator("#watchlist tbody tr[data-entity='bp']").click()


async def _with_page(alert: dict[str, Any], check: Any) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 768})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await _open(page, alert)
            await check(page)
            assert not errors, errors
        finally:
            await browser.close()


async def test_an_alert_says_which_thresholds_it_crossed() -> None:
    async def check(page: Page) -> None:
        facts = page.locator("#explain .facts")
        await expect(facts.locator(".fact-crossing")).to_have_text("share 82% ≥ 50% · z 4.1 ≥ 3.0 · volume 38 ≥ 10")
        await expect(facts).to_contain_text("baseline median 36% ± 11%")
        await expect(facts).not_to_contain_text("z threshold")  # the thresholds once, beside their measures

    await _with_page(_alert("al-new", NEW, NOW - timedelta(hours=6)), check)


async def test_a_cut_headline_can_be_read_whole_and_says_when_it_was_written() -> None:
    async def check(page: Page) -> None:
        first = page.locator("#explain .msg").first
        await expect(first.locator(".msg-text")).to_have_text(LONG)
        await expect(first.locator(".msg-text")).to_have_attribute("title", LONG)  # the whole of a cut headline
        await expect(first.locator(".msg-meta")).to_have_text("6 h ago")
        await expect(page.locator("#explain .msg").nth(1).locator(".msg-meta")).to_have_count(0)

    await _with_page(_alert("al-new", NEW, NOW - timedelta(hours=6)), check)


async def test_an_old_alert_without_thresholds_shows_its_facts_as_before() -> None:
    async def check(page: Page) -> None:
        facts = page.locator("#explain .facts")
        await expect(facts).to_contain_text("z 4.10")
        await expect(facts).to_contain_text("share 0.82")
        await expect(facts.locator(".fact-crossing")).to_have_count(0)

    await _with_page(_alert("al-old", OLD, NOW - timedelta(hours=6)), check)


async def test_the_feed_shows_the_spikes_window_beside_when_it_fired() -> None:
    end = NOW - timedelta(hours=6)
    span = f"{(end - timedelta(minutes=5)).strftime('%Y-%m-%d %H:%M')} → "

    async def check(page: Page) -> None:
        meta = page.locator("#feed li[data-alert-id='al-late'] .alert-meta")
        await expect(meta).to_contain_text("just now")
        await expect(meta).to_contain_text(f"window {span}")

    await _with_page(_alert("al-late", OLD, end), check)


async def test_a_long_entity_name_is_cut_to_the_drill_down_panel() -> None:
    async def check(page: Page) -> None:
        title = page.locator("#drill-title")
        await expect(title).to_have_text(NAME)
        box = await title.bounding_box()
        panel = await page.locator(".drill").bounding_box()
        assert box is not None and panel is not None
        assert box["x"] + box["width"] <= panel["x"] + panel["width"]
        assert await title.evaluate("e => e.scrollWidth > e.clientWidth")  # cut, with an ellipsis
        await expect(title).to_have_attribute("title", NAME)  # the whole name on hover

    await _with_page(_alert("al-name", OLD, NOW - timedelta(hours=6)), check)
