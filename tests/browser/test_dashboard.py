"""The dashboard in headless Chromium (Debian's binary) against the API on the real stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser.seed import CHROMIUM, CHROMIUM_ARGS, ENTITIES
from integration.services.api.helpers import insert_alert
from playwright.async_api import async_playwright, expect

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

            await page.evaluate("window.__noReload = true")
            await insert_alert(
                dashboard["sessions"],
                alert_id="live-tesco-1",
                rule_id=dashboard["rule_id"],
                entity="tesco",
                at=dashboard["end"],
                explanation={"negative_share": 0.71},
            )
            fresh = page.locator("#feed li[data-alert-id='live-tesco-1']")
            await expect(fresh).to_be_visible(timeout=10_000)
            await expect(fresh).to_contain_text("Tesco")
            assert await page.evaluate("window.__noReload === true"), "the page reloaded"
            await expect(page.locator("#watchlist tbody tr[data-entity='tesco'] .badge")).to_have_text("1")

            await page.locator("#watchlist tbody tr[data-entity='bp']").click()
            await expect(page.locator("#explain")).to_contain_text("refinery outage")
            await page.wait_for_timeout(2600)  # let the new-alert highlight fade before the screenshot
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
        finally:
            await browser.close()
    assert not problems, problems
