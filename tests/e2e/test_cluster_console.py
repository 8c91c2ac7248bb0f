"""The console's overview shows the cluster's nodes, their liveness and their devices (a node
subprocess, its console in Debian's chromium)."""

from __future__ import annotations

from pathlib import Path as FsPath

import pytest

from tests.e2e.test_console_browser import CHROMIUM, CHROMIUM_ARGS
from tests.integration.cluster_support import ADMIN_KEY, nodes, shared_nats_url, start_device
from tests.support import missing

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


async def test_the_overview_lists_each_node_with_its_liveness_and_devices(
    postgres_url: str, tmp_path: FsPath
) -> None:
    if not CHROMIUM.exists():
        missing("chromium is not installed (Debian package chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing("playwright is not installed (pip install playwright, a dev dependency)")
        raise
    async with nodes(["A", "B"], postgres_url, shared_nats_url(), tmp_path) as cluster:
        device = await start_device("869975030019301", cluster["A"])
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    page = await browser.new_page()
                    await page.goto(f"{cluster['B'].http_url}/#key={ADMIN_KEY}")
                    node_a = page.get_by_test_id("node-A")
                    node_b = page.get_by_test_id("node-B")
                    await node_a.wait_for(timeout=10_000)
                    # (the cards' names are upper-cased by the style sheet)
                    assert (await node_a.inner_text()).lower().split("\n") == ["node a", "up", "1 devices"]
                    assert "(this one)" in (await node_b.inner_text()).lower()
                finally:
                    await browser.close()
        finally:
            await device.client.stop()
