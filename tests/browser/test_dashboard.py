"""The dashboard in headless Chromium (Debian's binary) against the API on the real stack."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser.seed import CHROMIUM, CHROMIUM_ARGS, ENTITIES, SPIKE
from integration.services.api.helpers import insert_alert
from playwright.async_api import Page, Route, async_playwright, expect
from sqlalchemy import delete, update

from shared.db.models import Alert

pytestmark = [pytest.mark.browser, pytest.mark.integration]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")
async def test_dashboard_loads_charts_and_live_alerts(dashboard: dict[str, Any]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 768})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.goto(dashboard["url"] + "/")

            for key in ("_all", *ENTITIES):
                await expect(page.locator(f"#watchlist tbody tr[data-entity='{key}']")).to_have_count(1)
            await expect(page.locator("#watchlist tbody tr[data-entity='bp'] .badge")).to_have_text("1")
            await expect(page.locator("#watchlist svg.spark.line").nth(len(ENTITIES))).to_be_attached()
            await expect(page.locator("#drill-chart svg.trend path.neg-line")).to_have_count(1)
            assert len(await page.locator("#drill-chart svg.trend rect.vol-bar").all()) >= 40
            await expect(page.locator("#models")).to_contain_text("sentiment-v7")
            await expect(page.locator("#models")).to_contain_text("CPU (2 cores)")
            await expect(page.locator("#routing svg rect.hbar").nth(9)).to_be_attached()
            await expect(page.locator("#feed li[data-alert-id='seed-bp-spike']")).to_be_visible()
            # the alerter's explanation names the window's negative share "share"
            await expect(page.locator("#feed li[data-alert-id='seed-bp-spike'] .alert-meta")).to_contain_text(
                "82% negative"
            )
            await expect(page.locator("#feed li[data-alert-id='seed-ftse-old'] .alert-meta")).to_contain_text(
                "61% negative"
            )
            await expect(page.locator("#conn")).to_have_class("conn live")

            await page.locator("#watchlist tbody tr[data-entity='bp']").click()
            await expect(page.locator("#drill-title")).to_have_text("BP")
            await expect(page.locator("#drill-chart g.marker[data-alert-id='seed-bp-spike']")).to_have_count(1)
            await expect(page.locator("#explain")).to_contain_text("refinery outage")
            await expect(page.locator("#explain .term").first).to_have_text("refinery ×9")
            await expect(page.locator("#explain .term").first).to_have_attribute(
                "title", "in 9 of the window's negative messages; in 1 messages of the baseline period; z 4.2"
            )
            await expect(page.locator("#explain .facts")).to_contain_text("z 4.10")
            # in minute buckets the 5-minute window is wider than a bucket: its marker stands at its end
            await page.locator("#granularity").select_option("minute")
            await expect(page.locator("#drill-chart text.axis-x").first).to_have_text(re.compile(r"^\d\d:\d\d$"))
            await expect(page.locator("#drill-chart g.marker.selected[data-alert-id='seed-bp-spike']")).to_have_count(1)
            marker_x = await page.locator("#drill-chart g.marker.selected line.marker-line").get_attribute("x1")
            window = page.locator("#drill-chart rect.alert-window")
            window_x, window_w = await window.get_attribute("x"), await window.get_attribute("width")
            window_end = float(window_x or "nan") + float(window_w or "nan")
            assert float(window_w or "nan") > 5, window_w
            assert abs(float(marker_x or "nan") - window_end) < 0.5, (marker_x, window_x, window_w)
            await page.locator("#granularity").select_option("hour")
            await expect(page.locator("#drill-chart text.axis-x").first).to_have_text(re.compile(r"h$"))

            await page.evaluate("window.__noReload = true")
            await insert_alert(
                dashboard["sessions"],
                alert_id="live-tesco-1",
                rule_id=dashboard["rule_id"],
                entity="tesco",
                at=dashboard["end"],
                explanation={"share": 0.71},
            )
            fresh = page.locator("#feed li[data-alert-id='live-tesco-1']")
            await expect(fresh).to_be_visible(timeout=10_000)
            await expect(fresh).to_contain_text("Tesco")
            await expect(fresh).to_contain_text("71% negative")
            assert await page.evaluate("window.__noReload === true"), "the page reloaded"
            await expect(page.locator("#watchlist tbody tr[data-entity='tesco'] .badge")).to_have_text("1")

            await page.locator("#watchlist tbody tr[data-entity='bp']").click()
            await expect(page.locator("#explain")).to_contain_text("refinery outage")
            await page.wait_for_timeout(2600)  # let the new-alert highlight fade before the screenshot
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
        finally:
            await browser.close()
    assert not problems, problems


@contextlib.asynccontextmanager
async def dashboard_page(problems: list[str]) -> AsyncIterator[Page]:
    """A fresh page in headless Chromium; console errors and page errors go to ``problems``."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 768})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            yield page
        finally:
            await browser.close()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")
async def test_alert_stream_reopens_after_an_error_reply(dashboard: dict[str, Any]) -> None:
    """A non-200 reply (503 while PostgreSQL is down, 502 from a proxy) closes an EventSource for
    good: the page reopens it after a backoff and takes the snapshot again."""
    problems: list[str] = []
    refused: list[str] = []

    async def unavailable(route: Route) -> None:
        refused.append(route.request.url)
        await route.fulfill(
            status=503,
            content_type="application/json",
            body=json.dumps({"error": {"code": "unavailable", "message": "database unavailable", "details": []}}),
        )

    async with dashboard_page(problems) as page:
        await page.route("**/v1/alerts/stream", unavailable, times=2)  # backoff: 1 s, then 2 s
        await page.goto(dashboard["url"] + "/")
        await expect(page.locator("#conn")).to_have_class("conn live", timeout=10_000)
        assert len(refused) == 2, refused
        await expect(page.locator("#feed li[data-alert-id='seed-bp-spike']")).to_be_visible()  # the snapshot

        await insert_alert(
            dashboard["sessions"],
            alert_id="live-hsbc-reopened",
            rule_id=dashboard["rule_id"],
            entity="hsbc",
            at=dashboard["end"],
            explanation={"share": 0.66},
        )
        await expect(page.locator("#feed li[data-alert-id='live-hsbc-reopened']")).to_be_visible(timeout=10_000)
    # Chromium reports each refused EventSource response on the console
    assert not [m for m in problems if "503" not in m], problems


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")
async def test_feed_times_move_on_without_stream_events(dashboard: dict[str, Any]) -> None:
    problems: list[str] = []
    async with dashboard_page(problems) as page:
        await page.clock.install(time=datetime.now(UTC))
        await page.goto(dashboard["url"] + "/")
        await expect(page.locator("#conn")).to_have_class("conn live")
        await insert_alert(
            dashboard["sessions"],
            alert_id="live-hsbc-now",
            rule_id=dashboard["rule_id"],
            entity="hsbc",
            at=datetime.now(UTC),
            explanation={"share": 0.64},
        )
        meta = page.locator("#feed li[data-alert-id='live-hsbc-now'] .alert-meta")
        await expect(meta).to_contain_text("just now", timeout=10_000)
        await page.clock.fast_forward(70_000)  # past a periodic refresh; no stream event comes
        await expect(meta).to_contain_text("1 min ago")
    assert not problems, problems


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")
async def test_a_late_reply_does_not_replace_the_newer_view(dashboard: dict[str, Any]) -> None:
    problems: list[str] = []

    async def slow(route: Route) -> None:
        await asyncio.sleep(2)
        await route.continue_()

    async with dashboard_page(problems) as page:
        await page.goto(dashboard["url"] + "/")
        await page.locator("#watchlist tbody tr[data-entity='bp']").click()
        await expect(page.locator("#drill-title")).to_have_text("BP")
        await expect(page.locator("#drill-summary")).to_contain_text("1 alert")
        summary = await page.locator("#drill-summary").text_content()

        await page.route(lambda url: "/v1/trends?" in url and "entity=hsbc" in url, slow)
        await page.locator("#watchlist tbody tr[data-entity='hsbc']").click()
        await page.locator("#watchlist tbody tr[data-entity='bp']").click()
        await page.wait_for_timeout(3000)  # HSBC's trend lands after BP's
        await expect(page.locator("#drill-title")).to_have_text("BP")
        await expect(page.locator("#drill-summary")).to_have_text(summary or "")
        await expect(page.locator("#explain")).to_contain_text("refinery outage")

        # a burst of alerts reloads the watchlist once (debounced), not once per alert
        reloads: list[str] = []
        page.on("request", lambda r: reloads.append(r.url) if "/v1/entities?" in r.url else None)
        for i in range(6):
            await insert_alert(
                dashboard["sessions"],
                alert_id=f"burst-{i}",
                rule_id=dashboard["rule_id"],
                entity="lloyds",
                at=dashboard["end"] - timedelta(minutes=i),
                explanation={"share": 0.6},
            )
        await expect(page.locator("#feed li[data-alert-id^='burst-']")).to_have_count(6, timeout=10_000)
        await expect(page.locator("#watchlist tbody tr[data-entity='lloyds'] .badge")).to_have_text("6")
        await page.wait_for_timeout(1000)
        assert len(reloads) <= 3, reloads  # the bursts' reloads (one, two if split over polls) and a refresh
    assert not problems, problems


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")
async def test_an_alert_chosen_in_the_feed_stays_chosen_outside_the_range(dashboard: dict[str, Any]) -> None:
    """An alert older than the drill-down's default range: its explanation is shown, and the trend
    moves to its window (which here crosses midnight, so the header names both dates)."""
    problems: list[str] = []
    at = (dashboard["end"] - timedelta(days=10)).replace(hour=0, minute=2)
    await insert_alert(
        dashboard["sessions"],
        alert_id="old-bp-spike",
        rule_id=dashboard["rule_id"],
        entity=SPIKE,
        at=at,
        status="resolved",
        explanation={
            "share": 0.9,
            "volume": 20,
            "top_terms": [],
            "top_messages": [{"id": "old-1", "text": "BP ten days ago: pipeline leak", "negative_prob": 0.97}],
        },
    )
    start = at - timedelta(minutes=5)
    async with dashboard_page(problems) as page:
        await page.clock.install(time=datetime.now(UTC))
        await page.goto(dashboard["url"] + "/")
        await page.locator("#feed li[data-alert-id='old-bp-spike']").click()
        await expect(page.locator("#drill-title")).to_have_text("BP")
        await expect(page.locator("#explain")).to_contain_text("pipeline leak")
        await expect(page.locator("#explain .ex-head")).to_contain_text(
            f"window {start:%Y-%m-%d %H:%M} → {at:%Y-%m-%d %H:%M} UTC"
        )
        await expect(page.locator("#drill-chart g.marker.selected[data-alert-id='old-bp-spike']")).to_have_count(1)
        await page.clock.fast_forward(11_000)  # a periodic refresh keeps it
        await page.wait_for_timeout(1000)
        await expect(page.locator("#explain")).to_contain_text("pipeline leak")
        await expect(page.locator("#drill-chart g.marker.selected[data-alert-id='old-bp-spike']")).to_have_count(1)
    assert not problems, problems


LIVE_MAX = 200  # app.js: the live feed keeps the newest 200 alerts
FEED_SHOWN = 60  # and lists the newest 60 of them


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")
async def test_the_live_feed_keeps_the_newest_alerts_up_to_its_cap(dashboard: dict[str, Any]) -> None:
    """More alerts than the cap, arriving out of age order: the feed keeps the newest 200 by
    firing time (its count says so) and lists the newest first. The 200 newest come first and
    push the two seeded ones out; 50 older ones arriving after them are not kept; one newer
    alert then takes the place of the oldest kept."""
    problems: list[str] = []
    # newer than the seeded alerts and any other test's (whole seconds: one timestamp format)
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    keys = list(ENTITIES)
    newest = [(f"cap-new-{i:03d}", base + timedelta(minutes=5, seconds=i), i % 4 == 0) for i in range(LIVE_MAX)]
    older = [(f"cap-old-{i:03d}", base + timedelta(seconds=i), True) for i in range(50)]
    last = ("cap-last", base + timedelta(minutes=30), True)

    async def insert(alerts: list[tuple[str, datetime, bool]]) -> None:
        for n, (alert_id, at, is_open) in enumerate(alerts):
            await insert_alert(
                dashboard["sessions"],
                alert_id=alert_id,
                rule_id=dashboard["rule_id"],
                entity=keys[n % len(keys)],
                at=at,
                status="open" if is_open else "resolved",
                explanation={"share": 0.7},
            )

    def newest_first(alerts: list[tuple[str, datetime, bool]]) -> list[str]:
        return [alert_id for alert_id, _, _ in sorted(alerts, key=lambda a: a[1], reverse=True)]

    feed, count = "#feed li[data-alert-id]", "#feed-count"
    async with dashboard_page(problems) as page:
        await page.goto(dashboard["url"] + "/")
        await expect(page.locator("#conn")).to_have_class("conn live")
        await expect(page.locator("#feed li[data-alert-id='seed-bp-spike']")).to_be_visible()  # the snapshot

        await insert(newest)
        # the newest, inserted last, arrives last; the snapshot's alerts (the seeded bp spike
        # open) are older and dropped
        await expect(page.locator(feed).first).to_have_attribute("data-alert-id", "cap-new-199", timeout=15_000)
        await expect(page.locator(count)).to_have_text(f"{LIVE_MAX // 4} open of the latest {LIVE_MAX}")
        await expect(page.locator(feed)).to_have_count(FEED_SHOWN)
        assert (
            await page.locator(feed).evaluate_all("li => li.map(e => e.dataset.alertId)")
            == (newest_first(newest)[:FEED_SHOWN])
        )

        await insert(older)  # all open, older than every kept alert: none is kept
        await insert([last])  # sent after them (a later poll, or last of the same one)
        await expect(page.locator(feed).first).to_have_attribute("data-alert-id", "cap-last", timeout=15_000)
        kept = sorted([*newest, last], key=lambda a: a[1], reverse=True)[:LIVE_MAX]  # cap-new-000 dropped
        opened = sum(1 for _, _, is_open in kept if is_open)
        await expect(page.locator(count)).to_have_text(f"{opened} open of the latest {LIVE_MAX}")
        assert (
            await page.locator(feed).evaluate_all("li => li.map(e => e.dataset.alertId)")
            == (newest_first(kept)[:FEED_SHOWN])
        )
    assert not problems, problems


FEED_SPY = """
window.__feeds = [];
window.EventSource = class extends window.EventSource {
  constructor(...args) { super(...args); window.__feeds.push(this); }
};
"""
INTERRUPTIONS = {
    # what a refused reply does (503 while PostgreSQL is down): the browser closes the stream and reports an error
    "closed": "(() => { const es = window.__feeds.at(-1); es.close(); es.dispatchEvent(new Event('error')); })()",
    # the server's word that this subscriber fell too far behind
    "resync": "window.__feeds.at(-1).dispatchEvent(new MessageEvent('resync', { data: '{}' }))",
}
DROPPED = "dropped"  # the connection drops: the browser reopens the same EventSource itself, with Last-Event-ID


@contextlib.asynccontextmanager
async def relay(target: str) -> AsyncIterator[tuple[str, Callable[[], int], list[str | None]]]:
    """A TCP relay to the API at ``target``: yields its URL, a function that cuts the
    connections carrying an alert stream (as a dropped network connection does) and returns
    how many it cut, and the ``Last-Event-ID`` of each stream request, in order."""
    host, port = urlsplit(target).hostname, urlsplit(target).port
    conns: dict[asyncio.StreamWriter, bool] = {}  # the page's side -> whether its last request is the stream
    last_event_ids: list[str | None] = []
    relaying: set[asyncio.Task[None]] = set()

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, page: asyncio.StreamWriter | None
    ) -> None:
        try:
            while data := await reader.read(65536):
                if page is not None and b"HTTP/1.1\r\n" in data:
                    conns[page] = data.startswith(b"GET /v1/alerts/stream ")
                    if conns[page]:
                        found = re.search(rb"\r\nlast-event-id: *([^\r]*)\r\n", data, re.IGNORECASE)
                        last_event_ids.append(found[1].decode() if found else None)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns[writer] = False
        task = asyncio.current_task()
        assert task is not None
        relaying.add(task)
        try:
            api_reader, api_writer = await asyncio.open_connection(host, port)
            await asyncio.gather(pipe(reader, api_writer, writer), pipe(api_reader, writer, None))
        finally:
            writer.close()
            conns.pop(writer, None)
            relaying.discard(task)

    def cut_streams() -> int:
        streams = [w for w, is_stream in conns.items() if is_stream]
        for w in streams:
            w.transport.abort()
        return len(streams)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", cut_streams, last_event_ids
    finally:
        server.close()
        for w in list(conns):
            w.transport.abort()
        await asyncio.gather(*relaying, return_exceptions=True)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")
@pytest.mark.parametrize("interruption", [*INTERRUPTIONS, DROPPED])
async def test_the_feed_is_rebuilt_after_a_gap_in_the_stream(dashboard: dict[str, Any], interruption: str) -> None:
    """The snapshot of a new connection holds the newest 50 alerts only, and a connection the browser
    reopens by itself (a dropped one: with Last-Event-ID) resumes with the alerts changed since, no
    deletion among them: an alert the page holds beyond them that was resolved while the stream was
    down shows as resolved after the reconnect (feed, count), and one deleted meanwhile leaves the
    feed. In the gap, the drill-down's newer fetch wins over the page's live copy."""
    problems: list[str] = []
    sessions, end = dashboard["sessions"], dashboard["end"]
    others = [k for k in ENTITIES if k != SPIKE]
    await insert_alert(
        sessions, alert_id="gap-gone", rule_id=dashboard["rule_id"], entity="hsbc", at=end - timedelta(hours=3)
    )
    async with relay(dashboard["url"]) as (url, cut_streams, last_event_ids), dashboard_page(problems) as page:
        await page.add_init_script(FEED_SPY)
        await page.goto(url + "/")
        await expect(page.locator("#conn")).to_have_class("conn live")
        spike = page.locator("#feed li[data-alert-id='seed-bp-spike']")
        await expect(spike).to_have_class(re.compile(r"\bstatus-open\b"))
        for i in range(50):  # newer than the seeded alerts: the next snapshot holds these only
            await insert_alert(
                sessions,
                alert_id=f"gap-new-{i:02d}",
                rule_id=dashboard["rule_id"],
                entity=others[i % len(others)],
                at=end - timedelta(minutes=90) + timedelta(seconds=i),
                status="resolved",
            )
        await expect(page.locator("#feed li[data-alert-id^='gap-new-']")).to_have_count(50, timeout=10_000)
        opened = int((await page.locator("#feed-count").text_content() or "").removesuffix(" open"))

        reopen = asyncio.Event()

        async def held(route: Route) -> None:
            await reopen.wait()
            await route.continue_()

        await page.route("**/v1/alerts/stream", held, times=1)
        if interruption == DROPPED:
            assert cut_streams() == 1
        else:
            await page.evaluate(INTERRUPTIONS[interruption])
        async with sessions.begin() as session:  # during the gap
            await session.execute(
                update(Alert)
                .where(Alert.id == "seed-bp-spike")
                .values(status="resolved", resolved_at=datetime.now(UTC))
            )
            await session.execute(delete(Alert).where(Alert.id == "gap-gone"))
        # still in the gap: the drill-down's fetch is newer than the page's live copy, and wins
        await page.locator("#watchlist tbody tr[data-entity='bp']").click()
        await expect(page.locator("#explain .ex-head")).to_contain_text("watchlist-spike-browser")
        await expect(page.locator("#explain .ex-head .status")).to_have_text("resolved")
        reopen.set()

        await expect(spike).to_have_class(re.compile(r"\bstatus-resolved\b"), timeout=10_000)
        await expect(page.locator("#feed li[data-alert-id='gap-gone']")).to_have_count(0)
        await expect(page.locator("#feed-count")).to_have_text(f"{opened - 2} open")
        await expect(page.locator("#conn")).to_have_class("conn live")
        await expect(page.locator("#explain .ex-head .status")).to_have_text("resolved")
        if interruption == DROPPED:  # the browser's own reconnection: same EventSource, a resumption
            assert await page.evaluate("window.__feeds.length") == 1
            assert len(last_event_ids) == 2 and last_event_ids[0] is None, last_event_ids
            assert (last_event_ids[1] or "").isdigit(), last_event_ids
    # Chromium reports the dropped stream on the console (net::ERR_INCOMPLETE_CHUNKED_ENCODING)
    dropped = "Failed to load resource: net::ERR_"
    assert not [m for m in problems if not (interruption == DROPPED and m.startswith(dropped))], problems


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")
async def test_the_chart_marks_every_alert_of_a_chosen_older_window(dashboard: dict[str, Any]) -> None:
    """An older alert chosen in the feed moves the chart to its window: the other alerts of that
    window are marked too, though more than 100 newer alerts of the entity come before them."""
    problems: list[str] = []
    sessions, rule_id, end = dashboard["sessions"], dashboard["rule_id"], dashboard["end"]
    old = end - timedelta(days=10)
    await insert_alert(sessions, alert_id="old-bp-before", rule_id=rule_id, entity=SPIKE, at=old, status="resolved")
    for i in range(100):
        at = end - timedelta(hours=3, minutes=i)
        await insert_alert(
            sessions, alert_id=f"bp-recent-{i:02d}", rule_id=rule_id, entity=SPIKE, at=at, status="resolved"
        )
    async with dashboard_page(problems) as page:
        await page.goto(dashboard["url"] + "/")
        await expect(page.locator("#conn")).to_have_class("conn live")
        # it arrives live, older than the snapshot's: the feed lists it
        chosen = old + timedelta(hours=1)
        await insert_alert(
            sessions, alert_id="old-bp-chosen", rule_id=rule_id, entity=SPIKE, at=chosen, status="resolved"
        )
        await page.locator("#feed li[data-alert-id='old-bp-chosen']").click(timeout=10_000)
        await expect(page.locator("#drill-title")).to_have_text("BP")
        await expect(page.locator("#drill-chart g.marker.selected[data-alert-id='old-bp-chosen']")).to_have_count(1)
        await expect(page.locator("#drill-chart g.marker[data-alert-id='old-bp-before']")).to_have_count(1)
        await expect(page.locator("#drill-summary")).to_contain_text("2 alerts")
    assert not problems, problems
