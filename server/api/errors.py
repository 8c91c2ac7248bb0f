"""The one place where errors become HTTP answers: OneNET envelopes `{"errno", "error"}`.

HTTP status: on the OneNET-compatible routes (everything outside `/api/`) an API-level error is
answered with HTTP 200 and its errno, as OneNET does: its clients read `errno` from every answer
(the PHP SDK's `_call` decodes the body and takes `errno` 0 as success whatever the HTTP status),
and clients that treat a non-2xx as a transport failure would lose the errno. The native `/api/v1`
keeps the meaningful statuses below. Whatever the route, a request that reaches no route keeps its
404/405, a body over the limit its 413, and a crash (errno 7) its 500: those are not API answers.
The status each error would have on `/api/v1` travels in `ApiError.status`; `status_for` decides.

    ApiError (errno, error, status)      raised by routes and dependencies
    ServerError tree (services/errors)   mapped here:
        UnknownEndpoint, DeviceSleeping  -> 409, errno 2001 "device not online"
        DeviceTimeout                    -> 504, errno 5106, reason 5 (timeout)
        DeviceUnreachable                -> 502, errno 5106, reason 12 (offline)
        RequestFailed (CoAP 4.xx/5.xx)   -> 502, errno 5106, reason from OneNET's table
        UndecodableAnswer                -> 502, errno 5106, reason 7 (response error) and why
        BadArgument                      -> 400, errno 5108 "invalid parameter"
    request validation                   -> 400, errno 3 (missing) or 5108 (invalid)
    anything else                        -> 500, errno 7 "service internal error" (logged)
    an `auth failed` answer              -> also marks the request (`request.state.auth_failed`)
                                            for the failed-key limiter, whatever its status

The 5106 reasons are OneNET's: 0 success, 1 method not allowed, 2 forbidden, 3 not found,
4 internal error, 5 timeout, 6 request parameter error, 7 response error, 8 unauthorized,
9 bad request, 10 not acceptable, 11 unsupported content format, 12 offline, 13 address occupied.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lwm2m.numbers import CoapCode
from server.services.errors import (
    BadArgument,
    DeviceSleeping,
    DeviceTimeout,
    DeviceUnreachable,
    RequestFailed,
    ServerError,
    UndecodableAnswer,
    UnknownEndpoint,
)

log = logging.getLogger(__name__)

SUCC = "succ"
AUTH_FAILED = 1
PARAMETER_REQUIRED = 3
NOT_FOUND = 3
INTERNAL = 7
DEVICE_OFFLINE = 2001
LOGIC_LIMIT = 5006
DEVICE_FAILURE = 5106
INVALID_PARAMETER = 5108

REASONS: dict[int, str] = {
    0: "success",
    1: "method not allowed",
    2: "forbidden",
    3: "not found",
    4: "internal error",
    5: "timeout",
    6: "request parameter error",
    7: "response error",
    8: "unauthorized",
    9: "bad request",
    10: "not acceptable",
    11: "unsupported content format",
    12: "offline",
    13: "address occupied",
}

_REASON_OF_CODE: dict[int, int] = {
    CoapCode.METHOD_NOT_ALLOWED: 1,
    CoapCode.FORBIDDEN: 2,
    CoapCode.NOT_FOUND: 3,
    CoapCode.INTERNAL_SERVER_ERROR: 4,
    CoapCode.UNAUTHORIZED: 8,
    CoapCode.BAD_REQUEST: 9,
    CoapCode.NOT_ACCEPTABLE: 10,
    CoapCode.UNSUPPORTED_CONTENT_FORMAT: 11,
}


class ApiError(Exception):
    """An error answer: OneNET errno and text, and the HTTP status."""

    def __init__(self, errno: int, error: str, status: int = 400, **extra: Any) -> None:
        super().__init__(error)
        self.errno = errno
        self.error = error
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"errno": self.errno, "error": self.error, **self.extra}


def auth_failed(detail: str = "auth failed", status: int = 401) -> ApiError:
    return ApiError(AUTH_FAILED, detail, status)


def not_found(what: str) -> ApiError:
    return ApiError(NOT_FOUND, f"{what} not exist", 404)


def invalid(detail: str) -> ApiError:
    return ApiError(INVALID_PARAMETER, f"invalid parameter: {detail}", 400)


def required(name: str) -> ApiError:
    return ApiError(PARAMETER_REQUIRED, f"parameter required: {name}", 400)


def reason_of(code: int) -> int:
    """OneNET's 5106 reason for a CoAP error code the device answered."""
    if code in _REASON_OF_CODE:
        return _REASON_OF_CODE[code]
    return 4 if code >> 5 == 5 else 7


def device_failure(reason: int, detail: str = "") -> ApiError:
    text = f"device response error: {REASONS[reason]}" + (f" ({detail})" if detail else "")
    status = 504 if reason == 5 else 502
    return ApiError(DEVICE_FAILURE, text, status, reason=reason)


def from_server_error(exc: ServerError) -> ApiError:
    if isinstance(exc, UnknownEndpoint | DeviceSleeping):
        return ApiError(DEVICE_OFFLINE, "device not online", 409)
    if isinstance(exc, DeviceTimeout):
        return device_failure(5)
    if isinstance(exc, DeviceUnreachable):
        return device_failure(12, str(exc))
    if isinstance(exc, RequestFailed):
        return device_failure(reason_of(exc.code), exc.dotted)
    if isinstance(exc, UndecodableAnswer):
        return device_failure(7, str(exc))
    if isinstance(exc, BadArgument):
        return invalid(str(exc))
    return ApiError(INTERNAL, "service internal error", 500)


def from_validation(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "body", "path"))
    if first.get("type") == "missing":
        return required(where or "body")
    message = str(first.get("msg", "invalid"))
    return invalid(f"{where}: {message}" if where else message)


API_PREFIX = "/api/"


def is_onenet_path(path: str) -> bool:
    """Whether `path` is one of the OneNET-compatible routes (mounted at the root)."""
    return not path.startswith(API_PREFIX) and path not in ("/openapi.json", "/docs", "/redoc")


def status_for(path: str, error: ApiError) -> int:
    """HTTP 200 for an API-level error on a OneNET route, else the error's own status."""
    if error.status == 413:
        return 413  # the body over the limit was never read: not an API answer
    if is_onenet_path(path) and (error.status < 500 or error.errno == DEVICE_FAILURE):
        return 200  # a device failure (502/504 on /api/v1) is an API answer too: errno 5106
    return error.status


def _respond(request: Request, error: ApiError, *, api_level: bool = True) -> JSONResponse:
    if error.errno == AUTH_FAILED and error.status == 401:
        request.state.auth_failed = True
    status = status_for(request.url.path, error) if api_level else error.status
    return JSONResponse(error.body(), status_code=status)


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return _respond(request, exc)

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServerError)
        return _respond(request, from_server_error(exc))

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _respond(request, from_validation(exc))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        # No route took the request: not an API answer, the status stays.
        if exc.status_code == 404:
            return _respond(request, ApiError(NOT_FOUND, "no such API", 404), api_level=False)
        if exc.status_code == 405:
            return _respond(request, ApiError(INVALID_PARAMETER, "method not allowed", 405), api_level=False)
        error = ApiError(INVALID_PARAMETER, str(exc.detail), exc.status_code)
        return _respond(request, error, api_level=False)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected API error", exc_info=exc)
        return _respond(request, ApiError(INTERNAL, "service internal error", 500), api_level=False)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(ServerError, server_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
