"""The device page's Create and Delete of object instances in a real browser (Debian's Chromium
through Playwright), against the real API and an emulated LwM2M client: the create button of a
multi-instance object prepares the form, the delete button of an instance removes it on the
client. The fixtures are the console tests' own."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import test_console_browser as console_tests
from tests.e2e.test_console_browser import DEMO_IMEIS, DEMO_IMSI, Console, open_console

cloud = console_tests.cloud
chromium = console_tests.chromium
browser = console_tests.browser
console = console_tests.console

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_device_page_creates_and_deletes_instances_of_multi_instance_objects(console: Console) -> None:
    from playwright.async_api import expect

    page: Any = await open_console(console)
    endpoint = f"{DEMO_IMEIS[1]};{DEMO_IMSI}"
    device_id, emulated = console.cloud.devices[endpoint]
    await page.goto(f"{console.cloud.url}/#/devices/{device_id}")
    await expect(page.get_by_test_id("device-endpoint")).to_have_text(endpoint)
    await expect(page.get_by_test_id("create-/3")).to_have_count(0)  # the Device object is single-instance

    await page.get_by_test_id("create-/3303").click()
    await expect(page.get_by_test_id("op-kind")).to_have_value("create")
    await expect(page.get_by_test_id("op-path")).to_have_value("/3303/")
    await page.get_by_test_id("op-path").fill("/3303/7")
    await page.get_by_test_id("op-arg").fill('{"5700": 30.25, "5701": "Cel"}')
    await page.get_by_test_id("op-send").click()
    await expect(page.get_by_test_id("op-result")).to_contain_text("create /3303/7: ok")
    assert emulated.tree.get_value("/3303/7/5700") == 30.25

    await page.get_by_test_id("delete-/3303/0").click()
    await expect(page.get_by_test_id("op-result")).to_contain_text("delete /3303/0: ok")
    assert emulated.tree.get_value("/3303/0/5700") is None
    assert page.errors == []
