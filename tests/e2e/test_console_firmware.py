"""The console's Firmware pages in Debian's Chromium (Playwright): upload a package, set a hosted
module's FOTA faults, start an update task and watch its progress bars move live to 100 %, then a
failed device shown with its reason and Update Result."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path as FsPath
from typing import Any

import pytest

from emulator.hosting import ModuleHost
from lwm2m.firmware_package import pack
from server.api.app import create_app
from server.api.serve import serve_http
from server.console import mount_console
from server.lwm2m_server import Lwm2mServer
from tests.conftest import make_settings
from tests.e2e.test_console_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.support import missing

ADMIN_KEY = "console-fota-admin"
IMEI, IMSI = "869975030000777", "460041234567777"
ENDPOINT = f"{IMEI};{IMSI}"
TIMEOUT_MS = 15_000


@pytest.fixture
async def console_url(tmp_path: FsPath) -> AsyncIterator[tuple[str, Lwm2mServer, str]]:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/testbed.db", api_key=ADMIN_KEY, firmware_dir=str(tmp_path / "fw")
    )
    server = Lwm2mServer(settings)
    await server.start()
    host = ModuleHost()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(server.stop)
        module_id = await host.start_module("ML307R", imei=IMEI, imsi=IMSI, request_timeout=3.0)
        stack.push_async_callback(host.close)
        emulated = host.get(module_id)
        assert emulated is not None
        lines = [
            f'AT+MIPLCREATEEX="127.0.0.1:{server.listeners["default"].port}",2',
            'AT+MIPLADDOBJ=0,3303,1,"1",1,0',
            "AT+MIPLOPEN=0,3600",
        ]
        emulated.remember_login(lines)
        for line in lines:
            await host.send(module_id, line)
        await emulated.expect(r"\+MIPLEVENT: 0,6", timeout=10)
        app = create_app(server, module_host=host)
        mount_console(app)
        http = await serve_http(app, "127.0.0.1", 0)
        stack.push_async_callback(http.stop)
        server.fota.http_base = http.url
        yield http.url, server, module_id


async def test_the_firmware_page_uploads_starts_a_task_and_shows_live_progress_and_failures(
    console_url: tuple[str, Lwm2mServer, str], tmp_path: FsPath
) -> None:
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is not installed (Debian package chromium)")
    try:
        from playwright.async_api import async_playwright, expect
    except ImportError:
        missing("playwright is not installed (pip install playwright, a dev dependency)")
        raise
    url, _server, module_id = console_url
    package = tmp_path / "app-1.2.0.tbfw"
    package.write_bytes(pack("ML307R", "1.2.0", bytes(range(256)) * 32))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page: Any = await context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{url}/#key={ADMIN_KEY}")
            await page.wait_for_selector("#live-state[data-state=on]")
            await page.get_by_test_id("nav-firmware").click()

            await page.get_by_test_id("firmware-file").set_input_files(str(package))
            await page.get_by_test_id("firmware-version").fill("1.2.0")
            await page.get_by_test_id("firmware-submit").click()
            await expect(page.get_by_test_id("firmware-row")).to_have_count(1)
            await expect(page.get_by_test_id("firmware-row")).to_contain_text("1.2.0")

            await page.get_by_test_id("fault-module").fill(module_id)
            await page.get_by_test_id("fault-text").fill("rate=3000")
            await page.get_by_test_id("fault-submit").click()
            await expect(page.locator("#notice")).to_contain_text("FOTA faults rate=3000")

            await page.get_by_test_id("task-endpoints").fill(ENDPOINT)
            await page.get_by_test_id("task-submit").click()
            await page.wait_for_url("**/#/firmware/tasks/*")
            device = page.get_by_test_id("task-device")
            await expect(device).to_have_attribute("data-status", "downloading")
            bar = device.get_by_test_id("device-progress")
            await page.wait_for_function(
                "() => { const b = document.querySelector('[data-testid=device-progress]');"
                " const v = b && Number(b.getAttribute('aria-valuenow')); return v > 0 && v < 100; }"
            )
            await page.screenshot(path=str(ARTIFACTS / "firmware-01-progress.png"), full_page=True)
            await expect(device).to_have_attribute("data-status", "succeeded", timeout=30_000)
            await expect(bar).to_have_attribute("aria-valuenow", "100")
            await expect(page.get_by_test_id("task-overall-bar")).to_have_attribute("aria-valuenow", "100")
            await expect(page.get_by_test_id("task-summary")).to_have_attribute("data-status", "finished")
            await page.screenshot(path=str(ARTIFACTS / "firmware-02-done.png"), full_page=True)

            # A failing update: the device row says why, with the object's Update Result.
            package.write_bytes(pack("ML307R", "1.3.0", b"\x01" * 3000))
            await page.get_by_test_id("nav-firmware").click()
            await page.get_by_test_id("firmware-file").set_input_files(str(package))
            await page.get_by_test_id("firmware-version").fill("1.3.0")
            await page.get_by_test_id("firmware-submit").click()
            await expect(page.get_by_test_id("firmware-row")).to_have_count(2)
            await page.get_by_test_id("fault-module").fill(module_id)
            await page.get_by_test_id("fault-text").fill("corrupt")
            await page.get_by_test_id("fault-submit").click()
            await expect(page.locator("#notice")).to_contain_text("FOTA faults corrupt")
            await page.get_by_test_id("task-firmware").select_option(label="2: 1.3.0")
            await page.get_by_test_id("task-endpoints").fill(ENDPOINT)
            await page.get_by_test_id("task-submit").click()
            await page.wait_for_url("**/#/firmware/tasks/*")
            failed = page.get_by_test_id("task-device")
            await expect(failed).to_have_attribute("data-status", "failed", timeout=30_000)
            await expect(failed.get_by_test_id("device-reason")).to_contain_text(
                "integrity check failure for new downloaded package (Update Result 5)"
            )
            await page.screenshot(path=str(ARTIFACTS / "firmware-03-failed.png"), full_page=True)
            assert errors == []
            await context.close()
        finally:
            await browser.close()
