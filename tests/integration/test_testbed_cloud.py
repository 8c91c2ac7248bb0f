"""The one composition root (`testbed.cloud.Cloud`): settings in, a running cloud out, and
everything it started released by `stop()`, after a failed start too."""

from __future__ import annotations

import gc
import socket
from pathlib import Path

import httpx
import pytest

from emulator.hosting import ModuleHost
from server.settings import CARRIER_ADDRESSES, ListenerSettings
from testbed.cloud import Cloud
from testbed.gc_tuning import freeze_long_lived_objects
from testbed.hosting import module_routes
from tests.conftest import make_settings

ADMIN_KEY = "composition-root-admin-key"


def _tcp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_a_cloud_serves_its_api_with_hosted_modules_and_stops_everything(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/cloud.db", api_key=ADMIN_KEY, firmware_dir=str(tmp_path / "fw")
    )
    cloud = Cloud(settings, http=True, http_port=0, console=True, modules=True, announce_firmware_url=True)
    async with cloud:
        server = cloud.server
        assert set(server.listeners) == {"default"}
        assert isinstance(cloud.module_host, ModuleHost)
        assert cloud.http_url is not None and cloud.http_url.startswith("http://127.0.0.1:")
        assert server.fota.http_base == cloud.http_url
        async with httpx.AsyncClient(base_url=cloud.http_url, headers={"api-key": ADMIN_KEY}) as client:
            models = await client.get("/api/v1/modules/models")
            console = await client.get("/")
        assert models.status_code == 200 and "ML307R" in models.json()["items"]
        assert console.status_code == 200 and "html" in console.headers["content-type"]
        port = cloud.http_handle.port if cloud.http_handle else 0
    assert cloud.module_host is None and cloud.http_handle is None
    with pytest.raises(RuntimeError, match="not started"):
        _ = cloud.server
    assert _tcp_port_free(port)


async def test_a_failed_start_releases_what_it_bound_and_stop_is_harmless(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/cloud.db")
        listener = settings.listeners[0].model_copy(update={"port": taken})
        cloud = Cloud(settings.model_copy(update={"listeners": [listener]}))
        with pytest.raises(OSError):
            await cloud.start()
        await cloud.stop()
        with pytest.raises(RuntimeError, match="not started"):
            _ = cloud.server


async def test_hosted_modules_reach_a_carrier_listener_wherever_it_listens(tmp_path: Path) -> None:
    onenet = ListenerSettings(name="onenet", host="0.0.0.0", port=0, dtls_port=0, carrier="onenet")
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/cloud.db", listeners=[onenet])
    async with Cloud(settings) as cloud:
        coap = cloud.server.listeners["onenet"].address[1]
        dtls = cloud.server.dtls["onenet"].address[1]
        routes = module_routes(cloud.server)
    default = CARRIER_ADDRESSES["onenet"][2]
    # A wildcard listener is reached on 127.0.0.1, on the ports it really has.
    assert routes == {f"{default}:5683": ("127.0.0.1", coap), f"{default}:5684": ("127.0.0.1", dtls)}


def test_freezing_moves_live_objects_out_of_the_collectors_reach() -> None:
    before = gc.get_freeze_count()
    try:
        freeze_long_lived_objects()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
