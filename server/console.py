"""The web console: the static files of `web/` served by the API's FastAPI app.

`mount_console(app)` adds `GET /` (web/index.html) and `/static/...` (web/static/). The console is
plain HTML, CSS and JavaScript modules with no build step, so the repository's `web/` folder is
served as it is, located relative to this package the way `server.store.database` finds
`migrations/` (an editable install or a source checkout; the Docker image copies the whole tree).

Design choices:
- Content types come from an explicit table for the few extensions the console uses, so a host
  with an odd `mimetypes` database cannot serve JavaScript modules as `text/plain` (browsers
  refuse to run module scripts without a JavaScript type).
- `index.html` is sent with `Cache-Control: no-cache` so a new console version shows up on reload.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parents[1] / "web"

CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def _register_content_types() -> None:
    for suffix, content_type in CONTENT_TYPES.items():
        mimetypes.add_type(content_type, suffix)


def mount_console(app: FastAPI, web_dir: Path = WEB_DIR) -> None:
    """Serve the console of `web_dir` at `/` and `/static/`; raises FileNotFoundError without it."""
    index = web_dir / "index.html"
    static = web_dir / "static"
    if not index.is_file() or not static.is_dir():
        raise FileNotFoundError(f"web console not found under {web_dir}")
    _register_content_types()

    async def console_index() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers={"cache-control": "no-cache"})

    app.add_api_route("/", console_index, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=static), name="console-static")
