"""The web console in a real browser: Debian's headless Chromium driven by Playwright against the
real API (`create_app` + `serve_http`), a real `Lwm2mServer` on loopback UDP with SQLite, real
emulated LwM2M clients and an emulated AT module hosted for the module console.

Acceptance of issue 7: open the console, see the demo devices appear, open one, press read and
see the value, observe it and see a notification arrive live, type AT commands into a module
console and see the responses and the +MIPLEVENT URC (manual §3.6) next to the cloud's view,
create a device through the form and see its connect commands. Screenshots go to
tests/artifacts/console/ (git-ignored), one per step, at desktop and phone width.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

import pytest
import pytest_asyncio

from emulator.hosting import ModuleHost
from server.api.app import create_app
from server.api.demo import ensure_demo_products
from server.api.serve import serve_http
from server.console import mount_console
from server.lwm2m_server import Lwm2mServer
from server.settings import ListenerSettings
from tests.conftest import make_settings
from tests.e2e.test_device_management import Device, device
from tests.support import missing

CHROMIUM = FsPath("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = FsPath(__file__).resolve().parents[1] / "artifacts" / "console"
ADMIN_KEY = "console-admin-key"
ONENET_KEY = "console-onenet-master"
DEMO_IMEIS = ["869975030000101", "869975030000102"]
DEMO_IMSI = "460041234500001"
MODULE_IMEI = "869975030000461"
MODULE_IMSI = "460041234567890"
TIMEOUT_MS = 10_000

# One browser for the module (launching Chromium costs seconds), so the tests share its event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Cloud:
    server: Lwm2mServer
    url: str
    devices: dict[str, tuple[int, Device]]  # endpoint -> (device id, emulated client)
    module_id: str
    coap_port: int


@pytest_asyncio.fixture(loop_scope="module")
async def cloud(tmp_path: FsPath) -> AsyncIterator[Cloud]:
    # The demo devices are OneNET devices, so they register on a OneNET listener.
    listener = ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=None, carrier="onenet")
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/testbed.db", api_key=ADMIN_KEY, listeners=[listener]
    )
    server = Lwm2mServer(settings)
    await server.start()
    products = await ensure_demo_products(server, ONENET_KEY)
    host = ModuleHost()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(server.stop)
        devices: dict[str, tuple[int, Device]] = {}
        for n, imei in enumerate(DEMO_IMEIS):
            provisioned = await server.provisioning.create_device(
                product_id=products["onenet"].id,
                imei=imei,
                imsi=DEMO_IMSI,
                title=f"demo sensor {n + 1}",
                obsv=n == 0,  # the first is observed on registration (OneNET auto-observe), not the second
            )
            endpoint = server.endpoint_of(provisioned)
            assert endpoint is not None
            devices[endpoint] = (provisioned.id, await stack.enter_async_context(device(server, endpoint)))
        # The module's device is provisioned too: the OneNET listener accepts provisioned devices.
        await server.provisioning.create_device(
            product_id=products["onenet"].id, imei=MODULE_IMEI, imsi=MODULE_IMSI, title="module on the bench"
        )
        module_id = await host.start_module("ML307R", imei=MODULE_IMEI, imsi=MODULE_IMSI, request_timeout=3.0)
        stack.push_async_callback(host.close)
        app = create_app(server, module_host=host)
        mount_console(app)
        http = await serve_http(app, "127.0.0.1", 0)
        stack.push_async_callback(http.stop)
        _host, coap_port = server.listeners["default"].address
        yield Cloud(server, http.url, devices, module_id, coap_port)


@pytest.fixture(scope="module")
def chromium() -> FsPath:
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is not installed (Debian package chromium)")
    return CHROMIUM


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(chromium: FsPath) -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing("playwright is not installed (pip install playwright, a dev dependency)")
        raise
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


class Console:
    """Browser pages on the console; their contexts close before the cloud stops (an open event
    stream would otherwise hold the HTTP server's graceful shutdown)."""

    def __init__(self, browser: Any, cloud: Cloud) -> None:
        self.browser = browser
        self.cloud = cloud
        self.contexts: list[Any] = []

    async def open(self, fragment: str = f"#key={ADMIN_KEY}", *, width: int = 1280, height: int = 900) -> Any:
        context = await self.browser.new_context(viewport={"width": width, "height": height})
        self.contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        await page.goto(f"{self.cloud.url}/{fragment}")
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def console(cloud: Cloud, browser: Any) -> AsyncIterator[Console]:
    opened = Console(browser, cloud)
    yield opened
    await opened.close()


async def open_console(console: Console) -> Any:
    page = await console.open()
    await page.wait_for_selector("#live-state[data-state=on]")
    return page


async def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


async def test_console_shows_the_demo_devices_and_reads_and_observes_a_value(console: Console) -> None:
    page = await open_console(console)
    cloud = console.cloud
    from playwright.async_api import expect

    # The key moved from the address bar into localStorage.
    assert "key=" not in page.url
    assert await page.evaluate("localStorage.getItem('testbed.apiKey')") == ADMIN_KEY

    onenet = page.get_by_test_id("carrier-onenet")
    await expect(onenet.locator(".big")).to_have_text("3")  # two demo sensors and the module's device
    await expect(onenet).to_contain_text("2 online · 1 offline")
    await expect(page.get_by_test_id("count-registrations").locator(".big")).to_have_text("2")
    await expect(page.locator("#event-feed li[data-kind='registration.registered']")).to_have_count(2)
    await shot(page, "01-overview")

    await page.get_by_test_id("nav-devices").click()
    rows = page.locator("#device-rows tr[data-testid=device-row]")
    await expect(rows).to_have_count(3)
    await expect(page.locator("#device-rows tr[data-online=true]")).to_have_count(2)
    await page.get_by_test_id("device-search").fill(DEMO_IMEIS[1])
    await expect(rows).to_have_count(1)
    await shot(page, "02-devices")

    endpoint = f"{DEMO_IMEIS[1]};{DEMO_IMSI}"
    device_id, emulated = cloud.devices[endpoint]
    await rows.first.click()
    await page.wait_for_url(f"**/#/devices/{device_id}")
    await expect(page.get_by_test_id("device-endpoint")).to_have_text(endpoint)
    value = page.get_by_test_id("value-/3303/0/5700")
    await expect(value).to_have_text("—")  # nothing stored before the first read

    emulated.tree.set_value("/3303/0/5700", 23.25)
    await page.get_by_test_id("read-/3303/0/5700").click()
    await expect(value).to_have_text("23.25")
    await expect(page.get_by_test_id("op-result")).to_contain_text("read /3303/0/5700: ok")
    await shot(page, "03-device-read", full_page=False)

    observe = page.get_by_test_id("observe-/3303/0/5700")
    await observe.click()
    await expect(observe).to_have_text("cancel")
    emulated.tree.set_value("/3303/0/5700", 26.5)
    await expect(value).to_have_text("26.5")  # the notification arrived over the event stream
    await expect(page.locator("#device-timeline li[data-kind=notification]").first).to_contain_text("26.5")
    await expect(page.get_by_test_id("chart")).to_have_attribute("data-points", "3")
    await shot(page, "04-device-observe", full_page=False)
    await observe.click()
    await expect(observe).to_have_text("observe")
    assert cloud.server.observations(endpoint) == []

    await page.get_by_test_id("write-/3311/0/5851").click()
    await expect(page.get_by_test_id("op-kind")).to_have_value("write")
    await expect(page.get_by_test_id("op-path")).to_have_value("/3311/0/5851")
    await page.get_by_test_id("op-arg").fill("55")
    await page.get_by_test_id("op-send").click()
    await expect(page.get_by_test_id("op-result")).to_contain_text("write /3311/0/5851: ok")
    assert emulated.tree.get_value("/3311/0/5851") == 55

    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "05-device-phone", full_page=False)
    assert page.errors == []


async def test_module_console_sends_at_commands_and_shows_the_urc_beside_the_cloud_view(
    console: Console,
) -> None:
    from playwright.async_api import expect

    page = await open_console(console)
    cloud = console.cloud
    await page.get_by_test_id("nav-modules").click()
    await page.locator(f"tr[data-testid=module-row][data-id='{cloud.module_id}']").click()
    await expect(page.get_by_test_id("at-state")).to_have_attribute("data-state", "open")

    terminal = page.get_by_test_id("at-terminal")
    at_input = page.get_by_test_id("at-input")
    for line, answer in [
        ("AT+CGSN=1", f'+CGSN: "{MODULE_IMEI}"'),
        (f'AT+MIPLCREATEEX="127.0.0.1:{cloud.coap_port}",2', "+MIPLCREATEEX: 0"),
        ('AT+MIPLADDOBJ=0,3303,1,"1",1,0', "OK"),
        ("AT+MIPLOPEN=0,3600", "+MIPLEVENT: 0,6"),
    ]:
        answers = terminal.locator("[data-testid=at-line]:not([data-kind=sent])", has_text=answer)
        seen = await answers.count()
        await at_input.fill(line)
        await at_input.press("Enter")
        await expect(terminal.locator("[data-kind=sent]", has_text=line)).to_have_count(1)
        await expect(answers).to_have_count(seen + 1)
    await expect(terminal.locator("[data-kind=urc]", has_text="+MIPLEVENT: 0,6")).to_have_count(1)

    endpoint = f"{MODULE_IMEI};{MODULE_IMSI}"
    assert cloud.server.registration(endpoint) is not None
    cloud_view = page.get_by_test_id("cloud-events")
    await expect(cloud_view.locator("li[data-kind='registration.registered']")).to_contain_text(endpoint)
    await shot(page, "06-module-console")
    assert page.errors == []


async def test_provisioning_form_creates_a_device_and_shows_its_connect_commands(console: Console) -> None:
    from playwright.async_api import expect

    page = await open_console(console)
    cloud = console.cloud
    await page.get_by_test_id("nav-provision").click()
    product = page.get_by_test_id("prov-product")
    await expect(product.locator("option", has_text="(onenet)")).to_have_count(1)
    await product.select_option(label="Demo onenet (onenet)")
    await page.get_by_test_id("prov-imei").fill("869975030000999")
    await page.get_by_test_id("prov-imsi").fill("460041234509999")
    await page.get_by_test_id("prov-title").fill("bench sample")
    await page.get_by_test_id("prov-auth-code").fill("auth123")
    await page.get_by_test_id("prov-submit").click()

    commands = page.get_by_test_id("connect-command")
    await expect(commands.first).to_be_visible()
    texts = await commands.all_inner_texts()
    assert all(text.startswith("AT+") for text in texts) and any("MIPL" in text for text in texts)
    created = [d for d in cloud.server.provisioning.devices() if d.imei == "869975030000999"]
    assert len(created) == 1 and created[0].title == "bench sample" and created[0].carrier == "onenet"
    done = page.get_by_test_id("provision-done")
    await expect(done).to_have_attribute("data-id", str(created[0].id))
    await shot(page, "07-provisioned")

    await page.get_by_test_id("provision-device-link").click()
    await expect(page.get_by_test_id("device-header")).to_contain_text("bench sample")
    assert page.errors == []


async def test_console_without_a_key_asks_for_one_and_reports_the_refusal(console: Console) -> None:
    from playwright.async_api import expect

    page = await console.open("#/devices", width=390, height=844)
    await expect(page.get_by_test_id("key-form")).to_be_visible()
    await expect(page.get_by_test_id("notice")).to_contain_text("Devices:")
    await page.get_by_test_id("key-input").fill(ADMIN_KEY)
    await page.get_by_test_id("key-save").click()
    await expect(page.get_by_test_id("key-form")).to_be_hidden()
    await expect(page.locator("#device-rows tr[data-testid=device-row]")).to_have_count(3)
    await shot(page, "08-key-form-phone")


async def test_console_files_are_served_with_their_content_types(cloud: Cloud) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=cloud.url) as client:
        index = await client.get("/")
        script = await client.get("/static/js/app.js")
        style = await client.get("/static/css/console.css")
        absent = await client.get("/static/js/nothing.js")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/app.js">' in index.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    assert absent.status_code == 404
