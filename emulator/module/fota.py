"""Object 5 (Firmware Update) as the emulated module answers it itself, never through the MCU
(manual §3.3 note: "FOTA功能会默认使用3/0, 4/0, 5/0资源的读、写、执行操作"), and the module's
flash that holds a downloaded package across power cycles.

States and Update Results follow the object definition (`lwm2m/model/builtin/5.xml`,
`lwm2m.firmware_update`):
- Write of a non-empty Package URI in Idle (or after a failure): Update Result 0, State
  Downloading, the download starts. A URI that does not parse (no scheme or host) is Update Result
  7 (invalid URI); a scheme the module does not speak (anything but coap, coaps, http) is 9
  (unsupported protocol); either way State stays Idle. The write itself is answered 2.04: the
  outcome is in the resources, as the object reports it.
- Push: a Write of the Package resource (the whole package; the client's CoAP layer assembles
  Block1) goes through the same checks; a package larger than the flash is answered 4.13.
- Writing an empty URI or an empty / NUL package resets: Idle, Update Result 0, image removed.
- The download ends in Downloaded, or in Idle with 2 (not enough flash), 3 (out of RAM),
  4 (connection lost), 5 (SHA-256 of the payload differs), 6 (not a package of ours, or one for
  another model).
- Execute Update only in Downloaded (else 4.05): State Updating; then the module reboots (as
  after a power cycle) on the new version, with State Idle and Update Result 1 kept across the
  reboot; a failed update returns to Downloaded with Update Result 8 (*(choice)*: the object
  allows Downloaded or Idle; the image is kept, so the update can be run again).
- Execute Cancel (resource 10) outside Updating: Idle, Update Result 10; in Updating 4.05.

Resumable download (as carrier platforms do it, e.g. Huawei IoTDA's segmented download with
resume): what was downloaded stays in flash after a failure; writing the same URI again resumes
at the first missing block (CoAP Block2) or byte (HTTP Range), unless the package changed (ETag).

Faults a test asks for (`FotaFaults`, emulator.module.fota_link, from the CLI flag `--fota-fault`, the test kit and the
console): the download cut at N % (once: the retry resumes), a corrupted package, not enough
flash, out of RAM, the update failing, a slow link in bytes/s, and a reboot that never comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final
from urllib.parse import SplitResult, urlsplit

from emulator.module.fota_link import (
    BlockAnswer,
    DownloadFailed,
    FotaFaults,
    PackageSource,
    range_start,
    read_head,
)
from lwm2m.firmware_package import PackageError, PackageHeader, parse_header, verify
from lwm2m.firmware_update import (
    DELIVERY_BOTH,
    PROTOCOL_COAP,
    PROTOCOL_COAPS,
    PROTOCOL_HTTP,
    Resource,
    State,
    UpdateResult,
)
from lwm2m.node import MultipleResource, ObjectInstance, SingleResource, Value
from lwm2m.numbers import CoapCode, ResourceType

__all__ = ["BlockAnswer", "DownloadFailed", "FirmwareUpdate", "FotaFaults", "PackageSource"]

log = logging.getLogger(__name__)

# Flash set aside for a package (*(choice)*: the OneMO models' FOTA partitions are not documented).
DEFAULT_STORAGE: Final = 4 * 1024 * 1024
# Block size the module asks for (Block2 SZX 6 = 1024 bytes, the largest RFC 7959 allows).
DEFAULT_SZX: Final = 6
# Seconds between the 2.04 of Execute Update and the reboot (the answer must leave first).
INSTALL_DELAY: Final = 0.2
FETCH_TIMEOUT: Final = 10.0
SCHEMES: Final = {"coap": 5683, "coaps": 5684, "http": 80}
CONTENT: Final = int(CoapCode.CONTENT)


class FirmwareUpdate:
    """Object 5 of one module with its flash; it outlives the module's power cycles."""

    def __init__(
        self,
        model: str,
        *,
        changed: Callable[[], None],
        reboot: Callable[[str | None, bool], None],
        source: Callable[[], PackageSource | None],
        call_later: Callable[[float, Callable[[], None]], object],
        storage: int = DEFAULT_STORAGE,
        szx: int = DEFAULT_SZX,
        faults: FotaFaults | None = None,
    ) -> None:
        self.model = model
        self._changed = changed
        self._reboot = reboot
        self._source = source
        self._call_later = call_later
        self.storage = storage
        self.szx = szx
        self.faults = faults or FotaFaults()
        self.state = State.IDLE
        self.result = UpdateResult.INITIAL
        self.uri = ""
        self.pkg_name = ""
        self.pkg_version = ""
        # The flash: the package bytes so far and what they belong to (URI, ETag).
        self.image = bytearray()
        self.image_uri: str | None = None
        self.image_etag: bytes | None = None
        self.total: int | None = None
        self._task: asyncio.Task[None] | None = None

    # --- the object as the server sees it --------------------------------------------------------

    def instance(self) -> ObjectInstance:
        def single(rid: int, value: str | int, rtype: ResourceType) -> SingleResource:
            return SingleResource(rid, value, rtype)

        protocols: dict[int, Value] = {
            i: p for i, p in enumerate((PROTOCOL_COAP, PROTOCOL_COAPS, PROTOCOL_HTTP))
        }
        resources: dict[Resource, SingleResource | MultipleResource] = {
            Resource.PACKAGE_URI: single(1, self.uri, ResourceType.STRING),
            Resource.STATE: single(3, int(self.state), ResourceType.INTEGER),
            Resource.UPDATE_RESULT: single(5, int(self.result), ResourceType.INTEGER),
            Resource.PKG_NAME: single(6, self.pkg_name, ResourceType.STRING),
            Resource.PKG_VERSION: single(7, self.pkg_version, ResourceType.STRING),
            Resource.PROTOCOL_SUPPORT: MultipleResource(8, protocols, ResourceType.INTEGER),
            Resource.DELIVERY_METHOD: single(9, DELIVERY_BOTH, ResourceType.INTEGER),
        }
        return ObjectInstance(0, {int(k): v for k, v in resources.items()})

    @property
    def downloaded(self) -> int:
        return len(self.image)

    # --- operations -----------------------------------------------------------------------------

    def write(self, resource_id: int, value: object) -> CoapCode:
        if resource_id == Resource.PACKAGE_URI:
            return self._write_uri(value if isinstance(value, str) else "")
        if resource_id == Resource.PACKAGE:
            data = bytes(value) if isinstance(value, bytes | bytearray) else b""
            return self._write_package(data)
        if resource_id in (Resource.STATE, Resource.UPDATE_RESULT, Resource.PKG_NAME, Resource.PKG_VERSION):
            return CoapCode.METHOD_NOT_ALLOWED
        return CoapCode.NOT_FOUND

    def execute(self, resource_id: int) -> CoapCode:
        if resource_id == Resource.UPDATE:
            if self.state is not State.DOWNLOADED:
                return CoapCode.METHOD_NOT_ALLOWED
            self._set(State.UPDATING, UpdateResult.INITIAL)
            self._call_later(INSTALL_DELAY, self._install)
            return CoapCode.CHANGED
        if resource_id == Resource.CANCEL:
            if self.state is State.UPDATING:
                return CoapCode.METHOD_NOT_ALLOWED
            self._stop_download()
            self._forget_image()
            self._set(State.IDLE, UpdateResult.CANCELLED)
            return CoapCode.CHANGED
        return CoapCode.METHOD_NOT_ALLOWED

    def _write_uri(self, uri: str) -> CoapCode:
        if self.state is State.UPDATING:
            return CoapCode.METHOD_NOT_ALLOWED
        self._stop_download()
        self.uri = uri
        if not uri:
            self._forget_image()
            self._set(State.IDLE, UpdateResult.INITIAL)
            return CoapCode.CHANGED
        parts = urlsplit(uri)
        if not parts.scheme or not parts.hostname:
            self._set(State.IDLE, UpdateResult.INVALID_URI)
            return CoapCode.CHANGED
        if parts.scheme.lower() not in SCHEMES:
            self._set(State.IDLE, UpdateResult.UNSUPPORTED_PROTOCOL)
            return CoapCode.CHANGED
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            self._set(State.IDLE, UpdateResult.INVALID_URI)
            return CoapCode.CHANGED
        if self.image_uri != uri:
            self._forget_image()
            self.image_uri = uri
        self._set(State.DOWNLOADING, UpdateResult.INITIAL)
        self._task = asyncio.get_running_loop().create_task(self._download(uri))
        return CoapCode.CHANGED

    def _write_package(self, data: bytes) -> CoapCode:
        if self.state is State.UPDATING:
            return CoapCode.METHOD_NOT_ALLOWED
        self._stop_download()
        self._forget_image()
        if data in (b"", b"\0"):
            self._set(State.IDLE, UpdateResult.INITIAL)
            return CoapCode.CHANGED
        self._set(State.DOWNLOADING, UpdateResult.INITIAL)
        try:
            self.image += data
            self._check_progress()
            self._finish()
        except DownloadFailed as exc:
            self._forget_image()
            self._set(State.IDLE, exc.result)
            if exc.result is UpdateResult.NOT_ENOUGH_FLASH:
                return CoapCode.REQUEST_ENTITY_TOO_LARGE
        return CoapCode.CHANGED

    # --- download ------------------------------------------------------------------------------

    async def _download(self, uri: str) -> None:
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        try:
            source = self._source()
            if scheme in ("coap", "coaps"):
                if source is None:
                    raise DownloadFailed(UpdateResult.CONNECTION_LOST, "no network")
                await self._pull_coap(
                    source, scheme, parts.hostname or "", parts.port or SCHEMES[scheme], parts
                )
            else:
                await self._pull_http(source, parts.hostname or "", parts.port or 80, parts)
            self._finish()
        except DownloadFailed as exc:
            log.info("firmware download from %s failed: %s", uri, exc)
            if exc.result is not UpdateResult.CONNECTION_LOST:
                self._forget_image()
            self._set(State.IDLE, exc.result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a network error of any kind is a lost connection
            log.info("firmware download from %s failed: %s", uri, exc)
            self._set(State.IDLE, UpdateResult.CONNECTION_LOST)

    async def _pull_coap(
        self, source: PackageSource, scheme: str, host: str, port: int, parts: SplitResult
    ) -> None:
        path = tuple(p for p in parts.path.split("/") if p)
        query = tuple(q for q in parts.query.split("&") if q)
        size = 16 << self.szx
        offset = len(self.image) // size * size
        del self.image[offset:]
        number = offset // size
        while True:
            try:
                answer = await asyncio.wait_for(
                    source.fetch_block(scheme, host, port, path, query, number, self.szx), FETCH_TIMEOUT
                )
            except (TimeoutError, OSError) as exc:
                raise DownloadFailed(UpdateResult.CONNECTION_LOST, str(exc)) from exc
            if answer.code != CONTENT:
                if answer.code in (
                    int(CoapCode.NOT_FOUND),
                    int(CoapCode.FORBIDDEN),
                    int(CoapCode.UNAUTHORIZED),
                ):
                    raise DownloadFailed(UpdateResult.INVALID_URI, f"answered {answer.code}")
                raise DownloadFailed(UpdateResult.CONNECTION_LOST, f"answered {answer.code}")
            if number > 0 and answer.etag != self.image_etag:
                # The package changed since the first block: start again.
                self.image.clear()
                number = 0
                self.image_etag = None
                continue
            self.image_etag = answer.etag
            if answer.size is not None:
                self.total = answer.size
            self.image += answer.payload
            self._check_progress()
            if not answer.more:
                return
            number += 1
            await self._throttle(len(answer.payload))

    async def _pull_http(
        self, source: PackageSource | None, host: str, port: int, parts: SplitResult
    ) -> None:
        address = source.route(host, port) if source is not None else (host, port)
        target = parts.path or "/"
        query = parts.query
        if query:
            target += "?" + query
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), FETCH_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise DownloadFailed(UpdateResult.CONNECTION_LOST, str(exc)) from exc
        try:
            offset = len(self.image)
            request = f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
            if offset:
                request += f"Range: bytes={offset}-\r\n"
            writer.write((request + "\r\n").encode("latin-1"))
            status, headers = await asyncio.wait_for(read_head(reader), FETCH_TIMEOUT)
            if status == 200:
                self.image.clear()
            elif status == 206:
                start = range_start(headers.get("content-range", ""))
                if start != offset:
                    raise DownloadFailed(UpdateResult.CONNECTION_LOST, "unexpected Content-Range")
            elif status in (401, 403, 404):
                raise DownloadFailed(UpdateResult.INVALID_URI, f"HTTP {status}")
            else:
                raise DownloadFailed(UpdateResult.CONNECTION_LOST, f"HTTP {status}")
            etag = headers.get("etag", "").encode() or None
            if offset and status == 206 and self.image_etag is not None and etag != self.image_etag:
                raise DownloadFailed(UpdateResult.CONNECTION_LOST, "the package changed")
            self.image_etag = etag
            length = headers.get("content-length", "")
            remaining = int(length) if length.isdigit() else None
            if remaining is not None:
                self.total = len(self.image) + remaining
            while remaining is None or remaining > 0:
                chunk = await asyncio.wait_for(reader.read(min(1024, remaining or 1024)), FETCH_TIMEOUT)
                if not chunk:
                    if remaining is None:
                        return
                    raise DownloadFailed(UpdateResult.CONNECTION_LOST, "connection closed early")
                self.image += chunk
                if remaining is not None:
                    remaining -= len(chunk)
                self._check_progress()
                await self._throttle(len(chunk))
        except (OSError, TimeoutError) as exc:
            raise DownloadFailed(UpdateResult.CONNECTION_LOST, str(exc)) from exc
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _throttle(self, size: int) -> None:
        rate = self.faults.link_rate
        await asyncio.sleep(size / rate if rate else 0)

    def _check_progress(self) -> None:
        """Faults and the header checks, after each block."""
        faults = self.faults
        if faults.out_of_memory:
            raise DownloadFailed(UpdateResult.OUT_OF_RAM, "fault: out of RAM")
        header = self._header()
        if header is not None:
            if header.model.upper() != self.model.upper():
                raise DownloadFailed(UpdateResult.UNSUPPORTED_PACKAGE, f"package for {header.model}")
            self.total = header.total_size
            if faults.no_storage or header.total_size > self.storage:
                raise DownloadFailed(UpdateResult.NOT_ENOUGH_FLASH, f"{header.total_size} bytes")
        total = self.total
        cut = faults.cut_at_percent
        if cut is not None and total and len(self.image) * 100 >= cut * total and len(self.image) < total:
            faults.cut_at_percent = None
            raise DownloadFailed(UpdateResult.CONNECTION_LOST, f"fault: link cut at {cut} %")

    def _header(self) -> PackageHeader | None:
        try:
            return parse_header(bytes(self.image[:600]))
        except PackageError as exc:
            raise DownloadFailed(UpdateResult.UNSUPPORTED_PACKAGE, str(exc)) from exc

    def _finish(self) -> None:
        if self.faults.corrupt and self.image:
            self.image[-1] ^= 0xFF
        try:
            header = verify(bytes(self.image))
        except PackageError as exc:
            result = (
                UpdateResult.INTEGRITY_FAILURE
                if exc.kind == "integrity"
                else UpdateResult.UNSUPPORTED_PACKAGE
            )
            raise DownloadFailed(result, str(exc)) from exc
        if header.model.upper() != self.model.upper():
            raise DownloadFailed(UpdateResult.UNSUPPORTED_PACKAGE, f"package for {header.model}")
        self.pkg_name, self.pkg_version = header.model, header.version
        self._set(State.DOWNLOADED, UpdateResult.INITIAL)

    # --- update --------------------------------------------------------------------------------

    def _install(self) -> None:
        if self.state is not State.UPDATING:
            return
        if self.faults.update_fails:
            self._set(State.DOWNLOADED, UpdateResult.UPDATE_FAILED)
            return
        if self.faults.never_returns:
            self._reboot(None, False)
            return
        version = self.pkg_version
        self._forget_image()
        self.uri = ""
        self.state, self.result = State.IDLE, UpdateResult.SUCCESS
        self._reboot(version, True)

    # --- plumbing -----------------------------------------------------------------------------

    def _set(self, state: State, result: UpdateResult) -> None:
        if (state, result) == (self.state, self.result):
            return
        self.state, self.result = state, result
        self._changed()

    def _stop_download(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()

    def _forget_image(self) -> None:
        self.image.clear()
        self.image_uri = None
        self.image_etag = None
        self.total = None

    def shutdown(self) -> None:
        """The module stops (power off): a download in progress is cut (its bytes stay)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            self._task = None
            if self.state is State.DOWNLOADING:
                self.state, self.result = State.IDLE, UpdateResult.CONNECTION_LOST
