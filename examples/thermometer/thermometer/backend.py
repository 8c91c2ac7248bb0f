"""The backend: reads the thermometer through OneNET's northbound API (platforms.md "Northbound
HTTP API"): `GET /nbiot` (a real-time read, answered by the device) and
`GET /devices/getbyimei` (is the device online?). Works against api.heclouds.com or the testbed.
"""

from __future__ import annotations

from typing import Any

import httpx

TEMPERATURE = (3303, 0, 5700)


class OneNetError(Exception):
    """A OneNET envelope with errno != 0."""

    def __init__(self, errno: int, error: str) -> None:
        super().__init__(f"OneNET errno {errno}: {error}")
        self.errno = errno
        self.error = error


class Backend:
    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"api-key": api_key}, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _data(self, response: httpx.Response) -> Any:
        body = response.json()
        if body.get("errno") != 0:
            raise OneNetError(int(body.get("errno", -1)), str(body.get("error", "")))
        return body.get("data")

    def is_online(self, imei: str) -> bool:
        return bool(self._data(self.http.get("/devices/getbyimei", params={"imei": imei}))["online"])

    def read_temperature(self, imei: str) -> float:
        obj_id, inst_id, res_id = TEMPERATURE
        params = {"imei": imei, "obj_id": obj_id, "obj_inst_id": inst_id, "res_id": res_id}
        data = self._data(self.http.get("/nbiot", params=params))
        return float(data[0]["res"][0]["val"])
