"""The platform side of `testbed scenario`: its `do` steps over the native HTTP API of a running
cloud (`--api URL --api-key KEY`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

Action = Callable[[Sequence[str]], Awaitable[Any]]


def write_value(path: str, text: str) -> Any:
    """A `do write` argument as the native API's JSON value: hex for object 19 (binary app data),
    a number when it reads as one, else the string."""
    if path.strip("/").split("/")[0] == "19":
        return {"hex": text}
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


class ApiActions:
    """The platform side of a scenario over the native HTTP API of a running cloud: `do observe`,
    `read`, `write`, `execute`, `discover`, `psk` on the device whose endpoint (or IMEI, or id)
    is `device`."""

    def __init__(self, base_url: str, api_key: str, device: str, timeout: float) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"api-key": api_key},
            timeout=timeout + 5,
        )
        self.device = device
        self.timeout = max(1.0, min(120.0, timeout))
        self._id: int | None = int(device) if device.isdigit() and len(device) < 10 else None

    async def device_id(self) -> int:
        if self._id is not None:
            return self._id
        # The cloud records an unknown endpoint just after it registers: allow it a moment.
        for _ in range(20):
            response = await self.client.get("/devices", params={"q": self.device, "limit": 1000})
            self._raise_for(response)
            items = [
                d
                for d in response.json()["items"]
                if d["id"] is not None and self.device in (d["endpoint"], d["imei"])
            ]
            items.sort(key=lambda d: not d["online"])
            if items:
                self._id = int(items[0]["id"])
                return self._id
            await asyncio.sleep(0.2)
        raise LookupError(f"the cloud knows no device {self.device!r} (endpoint, IMEI or id)")

    @staticmethod
    def _raise_for(response: httpx.Response) -> None:
        if response.status_code >= 400:
            raise RuntimeError(
                f"HTTP {response.status_code} {response.request.url.path}: {response.text[:300]}"
            )

    async def _post(self, operation: str, body: dict[str, Any]) -> Any:
        device_id = await self.device_id()
        response = await self.client.post(
            f"/devices/{device_id}/{operation}", json={**body, "timeout": self.timeout}
        )
        self._raise_for(response)
        return response.json()

    def actions(self) -> dict[str, Action]:
        def needs(args: Sequence[str], count: int, usage: str) -> None:
            if len(args) < count:
                raise ValueError(f"usage: do {usage}")

        async def observe(args: Sequence[str]) -> Any:
            needs(args, 1, "observe PATH")
            return await self._post("observe", {"path": args[0]})

        async def read(args: Sequence[str]) -> Any:
            needs(args, 1, "read PATH")
            return await self._post("read", {"path": args[0]})

        async def write(args: Sequence[str]) -> Any:
            needs(args, 2, "write PATH VALUE")
            body: dict[str, Any] = {"path": args[0], "value": write_value(args[0], args[1])}
            if isinstance(body["value"], dict):
                # Object 19 application data goes down as octet-stream, as the carriers send it
                # (manual §5.3, §5.6): one value of the multiple resource /19/1/0, not a TLV.
                body["content_format"] = 42
            return await self._post("write", body)

        async def execute(args: Sequence[str]) -> Any:
            needs(args, 1, "execute PATH [ARGUMENTS]")
            return await self._post("execute", {"path": args[0], "arguments": " ".join(args[1:])})

        async def discover(args: Sequence[str]) -> Any:
            needs(args, 1, "discover PATH")
            return await self._post("discover", {"path": args[0]})

        async def psk(args: Sequence[str]) -> Any:
            # The platform changes the device's DTLS PSK between two parts of a flow (manual
            # §5.2: OneNET's access PSK; §5.4: CTWing's device PSK, text or hexadecimal).
            needs(args, 1, "psk KEY [hex|string]")
            encoding = args[1].lower() if len(args) > 1 else "string"
            if encoding not in ("string", "hex"):
                raise ValueError("usage: do psk KEY [hex|string]")
            device_id = await self.device_id()
            response = await self.client.put(
                f"/devices/{device_id}/psk", json={"psk": args[0], "psk_encoding": encoding}
            )
            self._raise_for(response)
            return response.json()

        return {
            "observe": observe,
            "read": read,
            "write": write,
            "execute": execute,
            "discover": discover,
            "psk": psk,
        }

    async def aclose(self) -> None:
        await self.client.aclose()
