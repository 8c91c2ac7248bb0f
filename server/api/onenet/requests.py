"""Requests as OneNET's front servers take them, before any route sees them:

- a request target in absolute form (`GET http://api.heclouds.com/devices/1`, which HTTP/1.1
  servers must accept, RFC 9112 3.2.2, and which a client sends through an HTTP proxy) is served
  by its path, so a client whose host is built in can be pointed here with `HTTP_PROXY`;
- repeated slashes in the path are one slash (`//devices/1` is `/devices/1`): the official PHP
  SDK's base URL ends in `/` and every path it appends starts with one;
- on the OneNET-compatible routes a body is JSON whatever its Content-Type says: the PHP SDK sends
  JSON text with curl's default `application/x-www-form-urlencoded`, and OneNET parses it as JSON.
  The native `/api/v1` stays strict.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from server.api.errors import is_onenet_path

_ABSOLUTE = re.compile(r"^https?://[^/]*")
_RAW_ABSOLUTE = re.compile(rb"^https?://[^/]*")
_SLASHES = re.compile(r"/{2,}")
_RAW_SLASHES = re.compile(rb"/{2,}")
JSON = b"application/json"


def collapse_slashes(path: str) -> str:
    return _SLASHES.sub("/", path)


class OneNetRequests:
    """ASGI middleware applying the rules of the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if "//" in path:
            scope = dict(scope)
            path = collapse_slashes(_ABSOLUTE.sub("", path)) or "/"
            scope["path"] = path
            if scope.get("raw_path"):
                raw = _RAW_SLASHES.sub(b"/", _RAW_ABSOLUTE.sub(b"", scope["raw_path"]))
                scope["raw_path"] = raw or b"/"
        if scope["type"] == "http" and is_onenet_path(path):
            headers = [(k, v) for k, v in scope.get("headers", []) if k != b"content-type"]
            if len(headers) != len(scope.get("headers", [])) or scope.get("method") in ("POST", "PUT"):
                scope = dict(scope)
                scope["headers"] = [*headers, (b"content-type", JSON)]
        await self.app(scope, receive, send)
