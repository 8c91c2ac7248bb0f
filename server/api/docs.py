"""The API's documentation, complete and offline: Swagger UI at `/docs` and ReDoc at `/redoc`,
their scripts and styles served from the installed `fastapi-offline` package (MIT; it ships the
swagger-ui and redoc bundles with their licences), never from a CDN, since this tool runs where
there is no internet. ReDoc is told not to fetch Google Fonts.

`install_docs(app)` also completes the OpenAPI document in one place, for every route, including
routes added later:

* the key is a security scheme, not a header parameter of each route: `api-key` (the header
  every OneNET v1 client sends), `api_key` (the query form, for EventSource and WebSocket
  clients) and OneNET's newer `authorization` token; a route's `api-key` / `authorization`
  header parameter becomes the matching security requirement;
* every operation has a tag naming its area (`AREAS` in server.api.operation_docs, first match
  wins), a summary (the route's `summary=`, else the entry of `OPERATIONS`, else the first
  sentence of its docstring) and a description (its docstring, else `OPERATIONS`);
* request and response examples from the module manual's chapter 5 and OneNET's documentation
  (`EXAMPLES`).

`undocumented(schema)` lists the operations that still lack one of them (a test keeps it empty,
so a new route is documented where it is added).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from server.api.operation_docs import AREAS, EXAMPLES, OPERATIONS, TAGS

ASSETS_URL = "/docs-assets"
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "api-key": {
        "type": "apiKey",
        "in": "header",
        "name": "api-key",
        "description": "The admin key (TESTBED_API_KEY, or ./data/api_key) or a product's master key, "
        "as OneNET's `api-key` header (manual §5.2: `api-key: deR2fiWkIRtIWaEaK0vto7ctQUg=`).",
    },
    "api_key": {
        "type": "apiKey",
        "in": "query",
        "name": "api_key",
        "description": "The same key as a query parameter, for clients that cannot set headers "
        "(EventSource, WebSocket).",
    },
    "authorization": {
        "type": "apiKey",
        "in": "header",
        "name": "authorization",
        "description": "OneNET's token (`version=2018-10-31&res=products/{id}&et=...&method=sha1&sign=...`), "
        "for the routes that accept it.",
    },
}
HEADER_SCHEMES = {"api-key": "api-key", "authorization": "authorization"}
QUERY_SCHEMES = {"api_key": "api_key"}


def assets_directory() -> Path:
    """The folder of the swagger-ui and redoc bundles inside the installed fastapi-offline."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets from the package, and complete `app.openapi()`.
    Create the app with `docs_url=None, redoc_url=None`."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_directory()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = complete(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with security schemes, areas, summaries, descriptions and examples."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    schema["tags"] = [{"name": name, "description": text} for name, text in TAGS.items()]
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            key = (method.upper(), path)
            _secure(operation)
            operation["tags"] = [area_of(path)]
            _describe(operation, key)
            _add_examples(operation, EXAMPLES.get(key))
    return schema


def area_of(path: str) -> str:
    for pattern, area in AREAS:
        if re.match(pattern, path):
            return area
    return "Native API" if path.startswith("/api/") else "OneNET API"


def _secure(operation: dict[str, Any]) -> None:
    """Key parameters become security requirements (any one of them suffices)."""
    kept = []
    schemes: list[str] = []
    for parameter in operation.get("parameters", []):
        name = parameter.get("name", "")
        where = parameter.get("in")
        if where == "header" and name.lower() in HEADER_SCHEMES:
            schemes.append(HEADER_SCHEMES[name.lower()])
        elif where == "query" and name in QUERY_SCHEMES:
            schemes.append(QUERY_SCHEMES[name])
        else:
            kept.append(parameter)
    if schemes:
        operation["parameters"] = kept
        if not kept:
            del operation["parameters"]
        operation["security"] = [{scheme: []} for scheme in SECURITY_SCHEMES if scheme in schemes]


def _describe(operation: dict[str, Any], key: tuple[str, str]) -> None:
    """Summary: the route's own `summary=`, else OPERATIONS, else the docstring's first sentence.
    Description: the route's docstring (FastAPI's description), else OPERATIONS."""
    table_summary, table_description = OPERATIONS.get(key, (None, None))
    docstring = " ".join(str(operation.get("description", "")).split())
    summary = operation.get("summary")
    if summary is None or _generated_summary(summary, operation.get("operationId", "")):
        summary = table_summary or docstring.split(". ")[0].rstrip(".") or None
    description = docstring or table_description
    if summary:
        operation["summary"] = summary
    else:
        operation.pop("summary", None)  # a bare function name documents nothing: undocumented()
    if description:
        operation["description"] = description


def _generated_summary(summary: str, operation_id: str) -> bool:
    """FastAPI's default summary is the function name in title case; the operationId starts
    with the function name."""
    return bool(operation_id) and operation_id.startswith(summary.lower().replace(" ", "_"))


def _add_examples(operation: dict[str, Any], examples: dict[str, Any] | None) -> None:
    if not examples:
        return
    if "request" in examples and "requestBody" in operation:
        content = operation["requestBody"].setdefault("content", {}).setdefault("application/json", {})
        content["example"] = examples["request"]
    if "response" in examples:
        ok = operation.setdefault("responses", {}).setdefault("200", {"description": "Successful Response"})
        ok.setdefault("content", {}).setdefault("application/json", {})["example"] = examples["response"]


def undocumented(schema: dict[str, Any]) -> list[str]:
    """Operations without a summary, a description or a known area tag, as "METHOD path: what"."""
    missing = []
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            for field in ("summary", "description"):
                if not str(operation.get(field, "")).strip():
                    missing.append(f"{method.upper()} {path}: no {field}")
            if not operation.get("tags") or any(tag not in TAGS for tag in operation["tags"]):
                missing.append(f"{method.upper()} {path}: no area tag")
    return missing
