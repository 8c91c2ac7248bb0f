"""pytest plugin `lwm2m_testbed` (entry point `pytest11`): a private carrier cloud and emulated
modules as fixtures, for end-to-end tests of a backend or a firmware without the carriers.

Fixtures (all function-scoped, none autouse; plain synchronous objects, usable from sync and
async tests alike because the cloud runs on its own thread):

- `private_cloud` -> `testbed.testkit.PrivateCloud`: LwM2M server, OneNET / CTWing listeners on
  5683 at per-cloud loopback addresses, the HTTP API on an ephemeral port, a temporary SQLite
  database (or `--lwm2m-database-url` / `LWM2M_TESTBED_DATABASE_URL`).
- `onenet_product`, `ctwing_product` -> `CarrierProduct(id, name, carrier, api_key, base_url)`.
- `module_factory` -> `ModuleFactory`: `module_factory("ML305A", imei=..., carrier="ctwing")`.
- `module` -> `Module`: one module, provisioned in `onenet_product` (or `ctwing_product`), chosen
  with `@pytest.mark.lwm2m_module(model=..., imei=..., imsi=..., carrier=...)`.

The import is cheap: the server and the emulator load when a fixture is first used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from testbed.testkit import CarrierProduct, Module, ModuleFactory, PrivateCloud

DATABASE_URL_ENV = "LWM2M_TESTBED_DATABASE_URL"
MARKER = "lwm2m_module"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lwm2m_testbed", "lwm2m-testbed private cloud")
    group.addoption(
        "--lwm2m-database-url",
        default=None,
        help=f"SQLAlchemy URL of the private cloud's database (default: a temporary SQLite file; "
        f"env {DATABASE_URL_ENV})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(model='ML307R', imei=None, imsi=None, carrier='onenet'): the emulated module "
        "the `module` fixture starts",
    )


def _database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = request.config.getoption("--lwm2m-database-url") or os.environ.get(DATABASE_URL_ENV)
    if url:
        return str(url)
    directory = tmp_path_factory.mktemp("lwm2m-cloud")
    return f"sqlite+aiosqlite:///{directory}/testbed.db"


@pytest.fixture
def private_cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateCloud]:
    """A fresh private carrier cloud, stopped after the test."""
    from testbed.testkit import PrivateCloud

    cloud = PrivateCloud(_database_url(request, tmp_path_factory)).start()
    try:
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture
def onenet_product(private_cloud: PrivateCloud) -> CarrierProduct:
    """A OneNET product with its master API key and the API's base URL."""
    return private_cloud.create_product("onenet")


@pytest.fixture
def ctwing_product(private_cloud: PrivateCloud) -> CarrierProduct:
    """A CTWing product with its master API key and the API's base URL."""
    return private_cloud.create_product("ctwing")


@pytest.fixture
def module_factory(private_cloud: PrivateCloud, request: pytest.FixtureRequest) -> Iterator[ModuleFactory]:
    """Start emulated modules on `private_cloud`; all are powered off after the test. Modules of a
    carrier are provisioned in the test's `onenet_product` / `ctwing_product` when the test uses
    that fixture, else in a product the factory creates."""
    from testbed.testkit import ModuleFactory

    products = {
        name.removesuffix("_product"): request.getfixturevalue(name)
        for name in ("onenet_product", "ctwing_product")
        if name in request.fixturenames
    }
    factory = ModuleFactory(private_cloud, products)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def module(module_factory: ModuleFactory, request: pytest.FixtureRequest) -> Module:
    """One emulated module (ML307R on OneNET unless the `lwm2m_module` marker says otherwise)."""
    marker = request.node.get_closest_marker(MARKER)
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    carrier = options.get("carrier", "onenet")
    fixture_name = f"{carrier}_product"
    if "product" not in options and fixture_name in ("onenet_product", "ctwing_product"):
        options["product"] = request.getfixturevalue(fixture_name)
    return module_factory(**options)
