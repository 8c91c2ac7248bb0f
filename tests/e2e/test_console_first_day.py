"""The console keeps up (issue 16, "A console that keeps up"), in Debian's Chromium driven by
Playwright against the real API, a real `Lwm2mServer` with the carrier listeners (ephemeral ports
on 127.0.0.1, reached by the manual's host names through the module host's routes, as
`testbed up` routes its hosted modules), real emulated LwM2M clients and AT modules.

One test per bullet: "last seen" moves with every uplink; operations show they are pending and
fail in words; the device list pages and deletes; the device page shows what the device declared
and a chart with units and a time axis; modules start and stop from the console and provisioning
names the carrier's hosts; the AT terminal's quick lines are the model's.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from emulator.hosting import ModuleHost
from lwm2m.node import SingleResource
from lwm2m.numbers import ContentFormat
from lwm2m.path import Path
from server.api.app import create_app
from server.api.demo import ensure_demo_products
from server.api.serve import serve_http
from server.console import mount_console
from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import Product
from server.settings import CARRIER_ADDRESSES, ListenerSettings, carrier_listeners
from testbed.hosting import module_routes
from tests.conftest import make_settings
from tests.e2e.test_console_browser import Console, browser, chromium, shot  # noqa: F401 (fixtures)
from tests.e2e.test_device_management import MODEL, device

ADMIN_KEY = "first-day-admin-key"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Cloud:
    server: Lwm2mServer
    url: str
    host: ModuleHost
    products: dict[str, Product]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cloud(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cloud]:
    tmp = tmp_path_factory.mktemp("first-day")
    carriers = [
        # The bootstrap server writes OneNET access's default address; the routes take it there.
        spec.model_copy(update={"public_host": "127.0.1.2"}) if spec.name == "onenet" else spec
        for spec in carrier_listeners(0, None, dict.fromkeys(CARRIER_ADDRESSES, "127.0.0.1"))
    ]
    default = ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=None, carrier="custom")
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp}/testbed.db", api_key=ADMIN_KEY, listeners=[default, *carriers]
    )
    server = Lwm2mServer(settings)
    await server.start()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(server.stop)
        products = await ensure_demo_products(server, None)
        host = ModuleHost(hosts=module_routes(server))
        stack.push_async_callback(host.close)
        app = create_app(server, module_host=host)
        mount_console(app)
        http = await serve_http(app, "127.0.0.1", 0)
        stack.push_async_callback(http.stop)
        yield Cloud(server, http.url, host, products)


@pytest_asyncio.fixture(loop_scope="module")
async def console(cloud: Cloud, browser: Any) -> AsyncIterator[Console]:  # noqa: F811
    opened = Console(browser, cloud)  # type: ignore[arg-type]
    yield opened
    await opened.close()


async def open_page(console: Console, fragment: str) -> Any:
    page = await console.open(f"#key={ADMIN_KEY}")
    await page.wait_for_selector("#live-state[data-state=on]")
    await page.evaluate(f"location.hash = {fragment!r}")
    return page


async def provision(cloud: Cloud, carrier: str, imei: str, **fields: Any) -> tuple[int, str]:
    created = await cloud.server.provisioning.create_device(
        product_id=cloud.products[carrier].id, imei=imei, imsi=fields.pop("imsi", None), **fields
    )
    endpoint = cloud.server.endpoint_of(created)
    assert endpoint is not None
    return created.id, endpoint


class ModuleLines:
    """The output lines of a hosted module, awaited by pattern."""

    def __init__(self, host: ModuleHost, module_id: str) -> None:
        self.lines: list[str] = []
        self.unsubscribe = host.subscribe(module_id, self.lines.append)
        self.host, self.module_id, self.seen = host, module_id, 0

    async def expect(self, pattern: str, timeout: float = 10) -> re.Match[str]:
        async with asyncio.timeout(timeout):
            while True:
                for index in range(self.seen, len(self.lines)):
                    match = re.search(pattern, self.lines[index])
                    if match:
                        self.seen = index + 1
                        return match
                await asyncio.sleep(0.02)

    async def send(self, line: str, answer: str = r"^(OK|ERROR|\+CIS ERROR: \d+)$") -> re.Match[str]:
        await self.host.send(self.module_id, line)
        return await self.expect(answer)


async def last_seen(locator: Any) -> float:
    return float(await locator.get_attribute("data-last-seen") or 0)


async def wait_above(locator: Any, floor: float) -> float:
    async with asyncio.timeout(10):
        while (value := await last_seen(locator)) <= floor:
            await asyncio.sleep(0.05)
    return value


async def test_last_seen_moves_with_every_uplink(console: Console) -> None:
    """Notify, Send and Update move "last seen", not only registrations; the server keeps it."""
    cloud = console.cloud
    server = cloud.server
    device_id, endpoint = await provision(cloud, "custom", "869975038800001", title="seen sensor")
    async with device(server, endpoint) as dev:
        page = await open_page(console, f"#/devices/{device_id}")
        header = page.get_by_test_id("device-last-seen")
        registered = await wait_above(header, 0)

        await server.observe(endpoint, "/3303/0/5700")
        dev.tree.set_value("/3303/0/5700", 24.5)
        after_notify = await wait_above(header, registered)

        sensor = {Path(3303, 0, 5700): SingleResource(5700, 24.75, MODEL.resource_type(3303, 5700))}
        await dev.client.send(sensor, ContentFormat.SENML_JSON)
        after_send = await wait_above(header, after_notify)

        await dev.client.update()
        after_update = await wait_above(header, after_send)

        dev.tree.set_value("/3303/0/5700", 25.5)
        after_second_notify = await wait_above(header, after_update)
        reg = server.registration(endpoint)
        assert reg is not None and after_second_notify > reg.updated_at  # beyond the registration's time

        # The server's answer carries it too: a fresh page and the device list show the last uplink.
        await page.reload()
        await page.wait_for_selector("#live-state[data-state=on]")
        await wait_above(page.get_by_test_id("device-last-seen"), reg.updated_at)
        await page.evaluate("location.hash = '#/devices'")
        await page.get_by_test_id("device-search").fill("869975038800001")
        row = page.locator(f"tr[data-testid=device-row][data-id='{device_id}'] [data-testid=last-seen]")
        await wait_above(row, reg.updated_at)
        dev.tree.set_value("/3303/0/5700", 26.5)  # and the list follows the next notification live
        await wait_above(row, after_second_notify)
        await shot(page, "11-last-seen")
        await server.cancel_observation(endpoint, server.observations(endpoint)[0].id)
    assert page.errors == []


async def test_operations_show_they_are_pending_and_fail_in_words(console: Console) -> None:
    """An operation on an emulated module is pending (buttons disabled, spinner, elapsed time,
    the AT+MIPLREADRSP the module waits for) until the MCU answers; a failure is explained, in
    the result and in the timeline, and so is a +CIS ERROR in the AT terminal."""
    from playwright.async_api import expect

    cloud = console.cloud
    device_id, endpoint = await provision(cloud, "custom", "869975038800002", imsi="460041234588002")
    module_id = await cloud.host.start_module("ML307R", imei="869975038800002", imsi="460041234588002")
    module = ModuleLines(cloud.host, module_id)
    _host, port = cloud.server.listeners["default"].address
    await module.send(f'AT+MIPLCREATEEX="127.0.0.1:{port}",0', r"^\+MIPLCREATEEX: 0$")
    await module.send('AT+MIPLCFG="platform",0,10')
    await module.send('AT+MIPLADDOBJ=0,3303,1,"1",1,0')
    await module.send("AT+MIPLOPEN=0,3600")
    await module.expect(r"^\+MIPLEVENT: 0,6$")
    assert cloud.server.registration(endpoint) is not None

    page = await open_page(console, f"#/devices/{device_id}")
    read = page.get_by_test_id("read-/3303/0/5700")
    await read.click()
    mid = (await module.expect(r"^\+MIPLREAD: 0,(\d+),3303,0,5700"))[1]
    result = page.get_by_test_id("op-result")
    await expect(result).to_have_attribute("data-state", "pending")
    await expect(read).to_be_disabled()
    await expect(page.get_by_test_id("op-send")).to_be_disabled()
    await expect(page.get_by_test_id("op-spinner")).to_be_visible()
    await expect(page.get_by_test_id("op-waiting")).to_contain_text("waiting for the MCU's AT+MIPLREADRSP")
    elapsed = page.get_by_test_id("op-elapsed")
    first = await elapsed.inner_text()
    await expect(elapsed).not_to_have_text(first)  # the clock runs while the MCU thinks
    await shot(page, "12-pending", full_page=False)
    await module.send(f"AT+MIPLREADRSP=0,{mid},1,3303,0,5700,4,4,21.5,0,0")
    await expect(result).to_contain_text("read /3303/0/5700: ok")
    await expect(page.get_by_test_id("value-/3303/0/5700")).to_have_text("21.5")
    await expect(read).to_be_enabled()

    await read.click()
    mid = (await module.expect(r"^\+MIPLREAD: 0,(\d+),3303,0,5700"))[1]
    await module.send(f"AT+MIPLREADRSP=0,{mid},13")  # result 13: the resource is not found
    await expect(result).to_have_attribute("data-state", "error")
    await expect(result).to_contain_text(
        "CoAP 4.04 Not Found: the device has no such object, instance or resource"
    )
    failed = page.locator("#device-timeline li[data-kind='operation.failed']").first
    await expect(failed).to_contain_text("read /3303/0/5700")
    await expect(failed).to_contain_text("4.04 Not Found")
    async with asyncio.timeout(5):  # the event log keeps it: it is there after a reload
        while not any(e["kind"] == "operation.failed" for e in await cloud.server.store.events(endpoint)):
            await asyncio.sleep(0.05)
    await page.reload()
    await expect(page.locator("#device-timeline li[data-kind='operation.failed']").first).to_contain_text(
        "read /3303/0/5700: CoAP 4.04 Not Found"
    )
    await shot(page, "13-failed-in-words", full_page=False)

    # The console's one table explains every +CIS ERROR code the module can print (manual §6).
    from emulator.at.results import CIS_TEXT

    explained = await page.evaluate(
        "async (codes) => { const r = await import('/static/js/reasons.js');"
        " return codes.map((c) => r.explainCis(c)); }",
        sorted(CIS_TEXT),
    )
    assert all("not in the manual" not in text for text in explained), explained

    await page.evaluate(f"location.hash = '#/modules/{module_id}'")
    await expect(page.get_by_test_id("at-state")).to_have_attribute("data-state", "open")
    at_input = page.get_by_test_id("at-input")
    await at_input.fill('AT+MIPLADDOBJ=0,3303,1,"1",1,0')  # the object exists already
    await at_input.press("Enter")
    terminal = page.get_by_test_id("at-terminal")
    await expect(terminal.locator("[data-kind=explain]").last).to_contain_text("+CIS ERROR: ")
    await expect(terminal.locator("[data-kind=explain]").last).to_contain_text(" — ")
    await cloud.host.remove(module_id)
    module.unsubscribe()
    assert page.errors == []


async def test_device_list_pages_on_the_server_and_deletes_devices(console: Console) -> None:
    from playwright.async_api import expect

    cloud = console.cloud
    server = cloud.server
    product = await server.provisioning.create_product("bench lot", "custom")
    ids = []
    for n in range(30):
        created = await server.provisioning.create_device(
            product_id=product.id, imei=f"8699750387{n:05d}", title=f"bench lot unit {n}"
        )
        ids.append(created.id)
    online_endpoint = server.endpoint_of(server.provisioning.device(ids[0]))
    assert online_endpoint is not None
    async with device(server, online_endpoint):
        page = await open_page(console, "#/devices")
        await page.get_by_test_id("device-search").fill("bench lot unit")
        info = page.get_by_test_id("page-info")
        rows = page.locator("#device-rows tr[data-testid=device-row]")
        await expect(info).to_have_text("1–25 of 30")
        await expect(rows).to_have_count(25)
        await page.get_by_test_id("page-next").click()
        await expect(info).to_have_text("26–30 of 30")
        await expect(rows).to_have_count(5)
        await expect(page.get_by_test_id("page-next")).to_be_disabled()
        await shot(page, "14-device-pages")

        # One device: the first click arms the button, the second deletes.
        doomed = rows.last
        doomed_id = int(await doomed.get_attribute("data-id") or -1)
        await doomed.get_by_test_id("device-delete").click()
        await expect(doomed.get_by_test_id("device-delete")).to_have_text("confirm delete")
        assert server.provisioning.device(doomed_id) is not None
        await doomed.get_by_test_id("device-delete").click()
        await expect(info).to_have_text("26–29 of 29")
        assert server.provisioning.device(doomed_id) is None

        # Every offline device of the product; the online one stays.
        await page.get_by_test_id("bulk-product").select_option(product.id)
        await page.get_by_test_id("bulk-delete").click()
        await page.get_by_test_id("bulk-delete").click()
        await expect(page.get_by_test_id("notice")).to_contain_text("Deleted 28 offline devices")
        await expect(info).to_have_text("1–1 of 1")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-online", "true")
        remaining = [d.id for d in server.provisioning.devices() if d.product_id == product.id]
        assert remaining == [ids[0]]
    assert page.errors == []


async def test_device_page_shows_what_the_device_declared_and_charts_a_path_with_data(
    console: Console,
) -> None:
    from playwright.async_api import expect

    cloud = console.cloud
    server = cloud.server
    device_id, endpoint = await provision(cloud, "custom", "869975038800003", title="declared sensor")
    async with device(server, endpoint) as dev:
        for value in (20.0, 21.5, 23.0):
            dev.tree.set_value("/3303/0/5700", value)
            await server.read(endpoint, "/3303/0/5700")
        await server.read(endpoint, "/3303/0/5701")  # the IPSO sensor's units, "Cel"
        page = await open_page(console, f"#/devices/{device_id}")
        await expect(page.get_by_test_id("declared-registration")).to_contain_text("/3303/0")

        # The chart takes the path that has data, with its units and a time axis.
        chart = page.get_by_test_id("chart")
        await expect(page.get_by_test_id("chart-path")).to_have_value("/3303/0/5700")
        await expect(chart).to_have_attribute("data-points", "3")
        await expect(chart).to_have_attribute("data-units", "Cel")
        await expect(chart.locator("text.value-label").first).to_contain_text("Cel")
        ticks = chart.locator("text.time-tick")
        await expect(ticks).to_have_count(5)
        assert all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in await ticks.all_text_contents())

        # Before a Discover answer the object model stands in; the answer narrows it to what the
        # device declared, and the toggle shows the whole object model again.
        min_measured = page.locator(".resource[data-path='/3303/0/5601']")
        await expect(min_measured).to_be_visible()
        await page.get_by_test_id("discover-/3303/0").click()
        await expect(page.get_by_test_id("op-result")).to_contain_text("discover /3303/0: ok")
        await expect(min_measured).to_be_hidden()
        await expect(page.locator(".resource[data-path='/3303/0/5700']")).to_be_visible()
        await expect(page.locator(".resource[data-path='/3303/0/5701']")).to_be_visible()
        await page.reload()  # the server remembers the answer
        await page.wait_for_selector("#live-state[data-state=on]")
        await expect(page.get_by_test_id("declared-resources")).to_contain_text("/3303/0: 5700, 5701")
        await expect(min_measured).to_be_hidden()
        await page.get_by_test_id("model-toggle").check()
        await expect(min_measured).to_be_visible()
        await shot(page, "15-declared-and-chart")
        assert dev.tree.get_value("/3303/0/5700") == 23.0
    assert page.errors == []


async def test_modules_start_and_stop_from_the_console_and_provisioning_names_carrier_hosts(
    console: Console,
) -> None:
    """Provision a OneNET device: its AT lines log in through the bootstrap server by name
    (nbiotbt.heclouds.com, manual §5.1), not a bare 127.0.0.1; start an emulated module for it
    from the console, type the lines and see it registered; stop it on the modules page."""
    from playwright.async_api import expect

    cloud = console.cloud
    server = cloud.server
    page = await open_page(console, "#/provision")
    await page.get_by_test_id("prov-product").select_option(label="Demo onenet (onenet)")
    await page.get_by_test_id("prov-imei").fill("869975038800004")
    await page.get_by_test_id("prov-imsi").fill("460041234588004")
    await page.get_by_test_id("prov-auth-code").fill("cmiot")
    await page.get_by_test_id("prov-submit").click()
    commands = page.get_by_test_id("connect-command")
    await expect(commands.first).to_be_visible()
    lines = await commands.all_inner_texts()
    assert lines[0] == 'AT+MIPLCREATEEX="nbiotbt.heclouds.com:5683",1,"cmiot"'
    assert not any("127.0.0.1" in line for line in lines)
    await shot(page, "16-provision-carrier-hosts")

    models = await page.get_by_test_id("prov-module-model").locator("option").all_inner_texts()
    assert {"ML307R", "MN316", "M5311"} <= set(models)
    await page.get_by_test_id("prov-module-model").select_option("ML307R")
    await page.get_by_test_id("prov-module-start").click()
    await page.wait_for_url("**/#/modules/*")
    await expect(page.get_by_test_id("at-state")).to_have_attribute("data-state", "open")
    module_id = page.url.rsplit("/", 1)[1]
    at_input = page.get_by_test_id("at-input")
    for line in lines:
        await at_input.fill(line)
        await at_input.press("Enter")
    terminal = page.get_by_test_id("at-terminal")
    await expect(terminal.locator("[data-kind=urc]", has_text="+MIPLEVENT: 0,6")).to_have_count(1)
    reg = server.registration("869975038800004;460041234588004")
    assert reg is not None and reg.listener == "onenet"  # through the bootstrap server to OneNET access

    await page.evaluate("location.hash = '#/modules'")
    row = page.locator(f"tr[data-testid=module-row][data-id='{module_id}']")
    await expect(row).to_contain_text("ML307R")
    await row.get_by_test_id("module-stop").click()
    await expect(row).to_have_count(0)
    assert all(m.id != module_id for m in cloud.host.list())

    # The modules page starts one too: the device is offered again, with a model of the table.
    option = page.get_by_test_id("module-device").locator("option", has_text="869975038800004")
    await expect(option).to_have_count(1)
    await page.get_by_test_id("module-device").select_option(await option.get_attribute("value"))
    await page.get_by_test_id("module-model").select_option("MN316")
    await page.get_by_test_id("module-start").click()
    await page.wait_for_url("**/#/modules/*")
    started = [m for m in cloud.host.list() if m.imei == "869975038800004"]
    assert [m.model for m in started] == ["MN316"]
    await cloud.host.remove(started[0].id)
    assert page.errors == []


async def test_at_terminal_quick_lines_are_the_models_commands(console: Console) -> None:
    from playwright.async_api import expect

    cloud = console.cloud
    shown: dict[str, list[str]] = {}
    for model, imei in (("ML307R", "869975038800005"), ("MN316", "869975038800006")):
        module_id = await cloud.host.start_module(model, imei=imei, imsi="460041234588005")
        page = await open_page(console, f"#/modules/{module_id}")
        quick = page.get_by_test_id("at-quick-line")
        await expect(quick.first).to_be_visible()
        shown[model] = await quick.all_inner_texts()
        info = next(m for m in cloud.host.list() if m.id == module_id)
        assert shown[model] == list(info.quick_lines)
        await quick.filter(has_text="AT+CGMR").click()
        await expect(page.get_by_test_id("at-terminal").locator("[data-kind=out]").last).to_have_text("OK")
        await cloud.host.remove(module_id)
        assert page.errors == []
    assert all("AT+MIPLVER?" not in lines for lines in shown.values())
    assert "AT+MIPLUPDATESET=0,1" in shown["ML307R"] and "AT+MIPLUPDATESET=0,1" not in shown["MN316"]
