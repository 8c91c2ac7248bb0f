"""The API documentation: Swagger UI at /docs and ReDoc at /redoc load in a browser that may
reach nothing but 127.0.0.1 (their assets come from the installed package, not a CDN) and list
the operations; the OpenAPI document names its key schemes instead of a header parameter per
route, and gives every operation a summary, a description and an area tag, with the manual's
chapter-5 examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI

from server.api.docs import install_docs, undocumented
from tests.integration import api_support
from tests.integration.api_support import Api
from tests.support import missing

api = api_support.api

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in schema["paths"].items() for m, op in ops.items()]


async def test_every_operation_has_a_summary_a_description_and_an_area(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    assert len(operations(schema)) > 40
    assert undocumented(schema) == []
    declared = {tag["name"] for tag in schema["tags"]}
    assert {"OneNET devices", "OneNET resources", "Devices", "Device management"} <= declared


async def test_the_key_is_a_security_scheme_not_a_header_parameter(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["api-key"] == {**schemes["api-key"], "type": "apiKey", "in": "header", "name": "api-key"}
    assert schemes["authorization"]["in"] == "header"
    for method, path, operation in operations(schema):
        headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        assert "api-key" not in headers, (method, path)
        assert {"api-key": []} in operation["security"], (method, path)


async def test_the_manuals_chapter_5_request_is_the_example_of_create_device(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    create = schema["paths"]["/devices"]["post"]
    example = create["requestBody"]["content"]["application/json"]["example"]
    assert example["auth_info"] == {"869975030000461": "1064826326459"} and example["psk"] == "1234abcd"
    answer = create["responses"]["200"]["content"]["application/json"]["example"]
    assert answer == {"errno": 0, "data": {"device_id": "516072121", "psk": "1234abcd"}, "error": "succ"}
    accpsk = schema["paths"]["/nbiot/device/accpsk"]["post"]
    assert accpsk["requestBody"]["content"]["application/json"]["example"] == {"key": "abcdefge"}


def test_a_route_added_without_documentation_is_reported() -> None:
    app = FastAPI(docs_url=None, redoc_url=None)
    install_docs(app)

    @app.get("/api/v1/gadgets")
    async def list_gadgets() -> dict[str, Any]:
        return {}

    @app.get("/api/v1/widgets")
    async def list_widgets() -> dict[str, Any]:
        """List the widgets.

        Every widget, newest first."""
        return {}

    missing_docs = undocumented(app.openapi())
    assert missing_docs == ["GET /api/v1/gadgets: no summary", "GET /api/v1/gadgets: no description"]
    widgets = app.openapi()["paths"]["/api/v1/widgets"]["get"]
    assert widgets["summary"] == "List the widgets" and widgets["tags"] == ["Native API"]


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is not installed (Debian package chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing("playwright is not installed (a dev dependency)")
    return CHROMIUM


@pytest.mark.parametrize(
    ("page_path", "listed", "decorative"),
    [
        ("/docs", ".opblock-summary", set()),
        # ReDoc's sidebar shows a vendor logo from its CDN and hides it when that fails.
        ("/redoc", "[data-section-id^='operation/']", {"image"}),
    ],
    ids=["swagger-ui", "redoc"],
)
async def test_docs_load_offline_and_list_the_operations(
    api: Api, chromium: Path, page_path: str, listed: str, decorative: set[str]
) -> None:
    from playwright.async_api import async_playwright

    schema = (await api.client.get("/openapi.json")).json()
    count = len(operations(schema))
    blocked: list[tuple[str, str]] = []

    async def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            blocked.append((route.request.resource_type, route.request.url))
            await route.abort()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.route("**/*", only_loopback)
            await page.goto(api.http.url + page_path)
            await page.wait_for_function(
                "([selector, count]) => document.querySelectorAll(selector).length >= count",
                arg=[listed, count],
                timeout=20_000,
            )
            text = await page.inner_text("body")
        finally:
            await browser.close()
    assert "Create a device" in text and "Read resources" in text
    assert [(kind, url) for kind, url in blocked if kind not in decorative] == []
