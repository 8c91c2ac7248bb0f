"""The firmware store: packages uploaded once (a database row and a file under
`Settings.firmware_dir`), each held once in memory while it is served.

A package is stored as uploaded (the testbed's own format, `lwm2m.firmware_package`, or any other
bytes: the module judges what it downloads). Its SHA-256 is computed on upload; the ETag the CoAP
and HTTP sides give is its first 8 bytes. A product's key sees only its product's packages; the
admin's packages (no product) are visible to the admin only. A package used by a task that has
not finished cannot be deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from server.services.errors import BadArgument, ItemInUse, UnknownItem
from server.store.fota_repository import FotaRepository


class UnknownFirmware(UnknownItem):
    """No package with that id (or none the caller may see)."""


class FirmwareInUse(ItemInUse):
    """A task that has not finished uses the package."""


class FirmwareTooLarge(BadArgument):
    pass


@dataclass(frozen=True, slots=True)
class FirmwarePackage:
    id: int
    product_id: str | None
    version: str
    models: tuple[str, ...]
    filename: str
    size: int
    sha256: str
    created_at: float

    @property
    def etag(self) -> bytes:
        return bytes.fromhex(self.sha256[:16])

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "product_id": self.product_id,
            "version": self.version,
            "models": list(self.models),
            "filename": self.filename,
            "size": self.size,
            "sha256": self.sha256,
            "created_at": self.created_at,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FirmwarePackage:
        return cls(
            id=int(row["id"]),
            product_id=row["product_id"],
            version=row["version"],
            models=tuple(row["models"] or ()),
            filename=row["filename"],
            size=int(row["size"]),
            sha256=row["sha256"],
            created_at=float(row["created_at"]),
        )


class FirmwareStore:
    def __init__(self, repository: FotaRepository, folder: str | FsPath, max_size: int) -> None:
        self.repository = repository
        self.folder = FsPath(folder)
        self.max_size = max_size
        self._packages: dict[int, FirmwarePackage] = {}
        self._contents: dict[int, bytes] = {}
        # Set by the update tasks: whether a task that has not finished uses a package.
        self.in_use: Any = lambda _firmware_id: False

    async def load(self) -> None:
        self._packages = {
            row["id"]: FirmwarePackage.from_row(row) for row in await self.repository.firmware()
        }

    def _file(self, firmware_id: int) -> FsPath:
        return self.folder / f"{firmware_id}.bin"

    async def add(
        self,
        data: bytes,
        *,
        version: str,
        models: tuple[str, ...] = (),
        product_id: str | None = None,
        filename: str = "firmware.bin",
    ) -> FirmwarePackage:
        if not data:
            raise BadArgument("the package is empty")
        if len(data) > self.max_size:
            raise FirmwareTooLarge(f"the package is {len(data)} bytes, the limit is {self.max_size}")
        if not version or len(version) > 64:
            raise BadArgument("version must be 1..64 characters")
        row = {
            "product_id": product_id,
            "version": version,
            "models": list(models),
            "filename": filename[:255] or "firmware.bin",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "created_at": time.time(),
        }
        firmware_id = await self.repository.insert_firmware(row)
        self.folder.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._file(firmware_id).write_bytes, data)
        package = FirmwarePackage.from_row({**row, "id": firmware_id})
        self._packages[firmware_id] = package
        self._contents[firmware_id] = data
        return package

    def list(self, product_id: str | None = None, *, admin: bool = True) -> list[FirmwarePackage]:
        """Packages the caller sees: all for the admin, else those of `product_id`."""
        return [p for p in self._packages.values() if admin or (product_id and p.product_id == product_id)]

    def get(self, firmware_id: int) -> FirmwarePackage:
        package = self._packages.get(firmware_id)
        if package is None:
            raise UnknownFirmware(f"no firmware {firmware_id}")
        return package

    def find(self, firmware_id: int) -> FirmwarePackage | None:
        return self._packages.get(firmware_id)

    def content(self, firmware_id: int) -> bytes:
        """The package's bytes, read from its file once and then held (one copy for all)."""
        data = self._contents.get(firmware_id)
        if data is None:
            self.get(firmware_id)
            data = self._file(firmware_id).read_bytes()
            self._contents[firmware_id] = data
        return data

    async def delete(self, firmware_id: int) -> None:
        self.get(firmware_id)
        if self.in_use(firmware_id):
            raise FirmwareInUse(f"firmware {firmware_id} is used by a task that has not finished")
        await self.repository.delete_firmware(firmware_id)
        self._packages.pop(firmware_id, None)
        self._contents.pop(firmware_id, None)
        self._file(firmware_id).unlink(missing_ok=True)
