"""Products and devices: who may connect, under which carrier's rules, with which keys.

A product belongs to one carrier (`onenet`, `ctwing`, `yanfei`, `huawei`, `custom`) and has a
master API key; a device belongs to a product and is known by its IMEI (and IMSI, auth code,
observe flag, device API key). A device gets its endpoint name when it first registers (the
carrier profile decides which provisioned device a registering endpoint is). Endpoints that
register at a listener accepting anybody become devices without a product.

The service keeps every product and device in memory (indexed by id, key, IMEI and endpoint), in
step with the database: registration checks run on the hot path and must not query the database.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from server.domain import Device as Device  # re-exported: the record moved to the domain
from server.services.errors import BadArgument
from server.store.repository import ProvisioningRepository, Store

CARRIERS = ("onenet", "ctwing", "yanfei", "huawei", "custom")


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str
    carrier: str
    master_key: str
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_key(length: int = 28) -> str:
    """An API key: URL-safe random text."""
    return secrets.token_urlsafe(length)[:length]


def new_access_key() -> str:
    """A product key in OneNET's format: Base64 of 20 random bytes (28 characters ending in `=`),
    so that applications can sign OneNET's `authorization` token with Base64Decode(key). Keys
    issued before (URL-safe text) stay valid as `api-key`s; only a token needs the new format."""
    return base64.b64encode(secrets.token_bytes(20)).decode()


class Provisioning:
    def __init__(self, store: Store | None = None) -> None:
        self.repository = ProvisioningRepository(store) if store is not None else None
        self._products: dict[str, Product] = {}
        self._products_by_key: dict[str, Product] = {}
        self._devices: dict[int, Device] = {}
        self._by_endpoint: dict[str, Device] = {}
        self._by_imei: dict[str, list[Device]] = {}
        self._by_key: dict[str, Device] = {}
        # Called with (device id, the row or None when deleted) after each change of the index.
        self._watchers: list[Callable[[int, Device | None], None]] = []
        self._creating: dict[str, asyncio.Future[Device]] = {}

    def watch(self, watcher: Callable[[int, Device | None], None]) -> None:
        """Call `watcher(device_id, device or None)` after every change of a device row."""
        self._watchers.append(watcher)

    def attach(self, store: Store) -> None:
        self.repository = ProvisioningRepository(store)

    def _repo(self) -> ProvisioningRepository:
        if self.repository is None:
            raise RuntimeError("provisioning has no store yet")
        return self.repository

    async def load(self) -> None:
        repo = self._repo()
        self._products.clear()
        self._products_by_key.clear()
        for row in await repo.products():
            self._index_product(Product(**row))
        for index in (self._devices, self._by_endpoint, self._by_imei, self._by_key):
            index.clear()
        for row in await repo.devices():
            self._index_device(Device.from_row(row))

    # --- products ------------------------------------------------------------------------------

    def _index_product(self, product: Product) -> None:
        old = self._products.get(product.id)
        if old is not None:
            self._products_by_key.pop(old.master_key, None)
        self._products[product.id] = product
        self._products_by_key[product.master_key] = product

    async def create_product(
        self,
        name: str,
        carrier: str,
        *,
        master_key: str | None = None,
        product_id: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Product:
        if carrier not in CARRIERS:
            raise BadArgument(f"unknown carrier {carrier!r}; one of {', '.join(CARRIERS)}")
        key = master_key or new_access_key()
        if key in self._products_by_key:
            raise BadArgument("that master key is taken")
        pid = product_id or secrets.token_hex(6)
        if pid in self._products:
            raise BadArgument(f"product {pid} exists")
        product = Product(pid, name, carrier, key, dict(attributes or {}))
        await self._repo().insert_product(product.as_dict())
        self._index_product(product)
        return product

    async def update_product(self, product_id: str, **values: Any) -> Product:
        product = self.product(product_id)
        if product is None:
            raise BadArgument(f"no product {product_id}")
        updated = replace(product, **values)
        await self._repo().update_product(product_id, values)
        self._index_product(updated)
        return updated

    def product(self, product_id: str) -> Product | None:
        return self._products.get(product_id)

    def product_by_key(self, master_key: str) -> Product | None:
        return self._products_by_key.get(master_key)

    def products(self, carrier: str | None = None) -> list[Product]:
        return [p for p in self._products.values() if carrier is None or p.carrier == carrier]

    async def delete_product(self, product_id: str) -> None:
        for device in self.devices(product_id=product_id):
            await self.delete_device(device.id)
        product = self._products.pop(product_id, None)
        if product is not None:
            self._products_by_key.pop(product.master_key, None)
            await self._repo().delete_product(product_id)

    # --- devices -------------------------------------------------------------------------------

    def _index_device(self, device: Device) -> None:
        self._unindex_device(device.id)
        self._devices[device.id] = device
        if device.endpoint:
            self._by_endpoint[device.endpoint] = device
        if device.imei:
            self._by_imei.setdefault(device.imei, []).append(device)
        if device.api_key:
            self._by_key[device.api_key] = device
        for watcher in self._watchers:
            watcher(device.id, device)

    # Set by a cluster node (server.cluster): other nodes write devices to the same store, so a
    # first-seen endpoint's device may be stored already (`ensure_endpoint` inserts or finds it).
    shared_store: bool = False

    def remember(self, device: Device) -> None:
        """Index a device another cluster node stored (server.cluster): the row is the truth."""
        self._index_device(device)

    def _unindex_device(self, device_id: int) -> None:
        old = self._devices.pop(device_id, None)
        if old is None:
            return
        if old.endpoint and self._by_endpoint.get(old.endpoint) is old:
            del self._by_endpoint[old.endpoint]
        if old.imei:
            remaining = [d for d in self._by_imei.get(old.imei, []) if d.id != device_id]
            if remaining:
                self._by_imei[old.imei] = remaining
            else:
                self._by_imei.pop(old.imei, None)
        if old.api_key:
            self._by_key.pop(old.api_key, None)

    async def create_device(
        self,
        *,
        product_id: str | None,
        carrier: str | None = None,
        imei: str | None = None,
        imsi: str | None = None,
        title: str | None = None,
        auth_code: str | None = None,
        obsv: bool = True,
        endpoint: str | None = None,
        api_key: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Device:
        product = self.product(product_id) if product_id is not None else None
        if product_id is not None and product is None:
            raise BadArgument(f"no product {product_id}")
        carrier = product.carrier if product is not None else (carrier or "custom")
        if imei is not None:
            if not (imei.isdigit() and 1 <= len(imei) <= 32):
                raise BadArgument("imei must be digits")
            for other in self._by_imei.get(imei, []):
                if other.carrier == carrier:
                    raise BadArgument(f"a {carrier} device with IMEI {imei} exists")
        if imsi is not None and not (imsi.isdigit() and len(imsi) <= 32):
            raise BadArgument("imsi must be digits")
        if endpoint is not None and endpoint in self._by_endpoint:
            raise BadArgument(f"endpoint {endpoint!r} is taken")
        row = _device_row(
            product_id, carrier, imei, imsi, title, auth_code, obsv, endpoint, api_key, attributes
        )
        device_id = await self._repo().insert_device(row)
        device = Device(id=device_id, **row)
        self._index_device(device)
        return device

    async def adopt(self, anonymous: Device, *, product_id: str, **values: Any) -> Device:
        """Provision the anonymous row of an endpoint that registered before it was created: the
        row (its id, endpoint, registrations and data) becomes the product's device."""
        product = self.product(product_id)
        if product is None:
            raise BadArgument(f"no product {product_id}")
        imei = values.get("imei")
        if imei is not None:
            for other in self._by_imei.get(imei, []):
                if other.carrier == product.carrier and other.id != anonymous.id:
                    raise BadArgument(f"a {product.carrier} device with IMEI {imei} exists")
        changes: dict[str, Any] = {
            "product_id": product_id,
            "carrier": product.carrier,
            "api_key": values.pop("api_key", None) or anonymous.api_key or new_key(),
            "attributes": {**anonymous.attributes, **(values.pop("attributes", None) or {})},
        }
        changes.update(
            {k: v for k, v in values.items() if k in Device.__dataclass_fields__ and k != "endpoint"}
        )
        return await self.update_device(anonymous.id, **changes)

    async def update_device(self, device_id: int, **values: Any) -> Device:
        device = self._devices.get(device_id)
        if device is None:
            raise BadArgument(f"no device {device_id}")
        updated = replace(device, **values)
        await self._repo().update_device(device_id, values)
        self._index_device(updated)
        return updated

    async def delete_device(self, device_id: int) -> None:
        if device_id in self._devices:
            self._unindex_device(device_id)
            for watcher in self._watchers:
                watcher(device_id, None)
            await self._repo().delete_device(device_id)

    async def bind_endpoint(self, device: Device, endpoint: str) -> Device:
        """Record the endpoint name a provisioned device registered with."""
        if device.endpoint == endpoint:
            return device
        holder = self._by_endpoint.get(endpoint)
        if holder is not None and holder.id != device.id:
            if holder.product_id is None:
                await self.delete_device(holder.id)  # an earlier anonymous sighting of the same endpoint
            else:
                raise BadArgument(f"endpoint {endpoint!r} belongs to device {holder.id}")
        return await self.update_device(device.id, endpoint=endpoint)

    async def ensure_endpoint(self, endpoint: str, carrier: str = "custom") -> Device:
        """The device of an endpoint, created without a product when first seen."""
        device = self._by_endpoint.get(endpoint)
        if device is not None:
            return device
        pending = self._creating.get(endpoint)
        if pending is not None:  # another registration of the endpoint is creating its row
            return await asyncio.shield(pending)
        if self.shared_store:
            create = self._insert_or_find(carrier, endpoint)
        else:
            create = self.create_device(product_id=None, carrier=carrier, endpoint=endpoint, api_key=None)
        task = asyncio.ensure_future(create)
        self._creating[endpoint] = task
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._creating.pop(endpoint, None)
            else:
                task.add_done_callback(lambda _t: self._creating.pop(endpoint, None))

    async def _insert_or_find(self, carrier: str, endpoint: str) -> Device:
        """A cluster's first sighting of an endpoint: its device row is inserted unless another
        node stored one, in the same statement (no round trip to look first)."""
        row = _device_row(None, carrier or "custom", None, None, None, None, True, endpoint, None, None)
        stored = await self._repo().insert_or_find_device(row)
        device = Device.from_row(stored) if isinstance(stored, dict) else Device(id=stored, **row)
        known = self._by_endpoint.get(endpoint)  # indexed meanwhile (the other node's event)
        if known is not None:
            return known
        self._index_device(device)
        return device

    def device(self, device_id: int) -> Device | None:
        return self._devices.get(device_id)

    def device_by_endpoint(self, endpoint: str) -> Device | None:
        return self._by_endpoint.get(endpoint)

    def devices_by_imei(self, imei: str, carrier: str | None = None) -> list[Device]:
        return [d for d in self._by_imei.get(imei, []) if carrier is None or d.carrier == carrier]

    def device_by_key(self, api_key: str) -> Device | None:
        return self._by_key.get(api_key)

    def devices(self, *, product_id: str | None = None, carrier: str | None = None) -> list[Device]:
        return [
            d
            for d in self._devices.values()
            if (product_id is None or d.product_id == product_id)
            and (carrier is None or d.carrier == carrier)
        ]


def _device_row(
    product_id: str | None,
    carrier: str,
    imei: str | None,
    imsi: str | None,
    title: str | None,
    auth_code: str | None,
    obsv: bool,
    endpoint: str | None,
    api_key: str | None,
    attributes: dict[str, Any] | None,
) -> dict[str, Any]:
    """The columns of a new device row (a fresh API key unless one is given)."""
    return {
        "product_id": product_id,
        "carrier": carrier,
        "imei": imei,
        "imsi": imsi,
        "title": title,
        "auth_code": auth_code,
        "obsv": obsv,
        "endpoint": endpoint,
        "api_key": api_key or new_key(),
        "attributes": dict(attributes or {}),
        "created_at": time.time(),
    }
