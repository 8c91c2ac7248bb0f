"""Object 5 of the emulated module (emulator.module.fota) without a network: the State and Update
Result transitions the object definition (lwm2m/model/builtin/5.xml) gives, and the faults."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from emulator.module.fota import BlockAnswer, FirmwareUpdate, FotaFaults
from lwm2m.firmware_package import pack
from lwm2m.firmware_update import State, UpdateResult
from lwm2m.numbers import CoapCode

PACKAGE = pack("ML307R", "1.2.0", bytes(range(256)) * 10)


class Blocks:
    """A package source answering Block2 requests from `data`."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.asked: list[int] = []

    async def fetch_block(
        self,
        scheme: str,
        host: str,
        port: int,
        path: tuple[str, ...],
        query: tuple[str, ...],
        number: int,
        szx: int,
    ) -> BlockAnswer:
        self.asked.append(number)
        size = 16 << szx
        chunk = self.data[number * size : (number + 1) * size]
        return BlockAnswer(69, chunk, (number + 1) * size < len(self.data), b"tag", len(self.data))

    def route(self, host: str, port: int) -> tuple[str, int]:
        return host, port


def make(
    faults: str = "", source: Blocks | None = None
) -> tuple[FirmwareUpdate, list[tuple[int, int]], list]:
    changes: list[tuple[int, int]] = []
    reboots: list[tuple[str | None, bool]] = []
    later: list[Callable[[], None]] = []
    fota: FirmwareUpdate

    def changed() -> None:
        changes.append((int(fota.state), int(fota.result)))

    fota = FirmwareUpdate(
        "ML307R",
        changed=changed,
        reboot=lambda version, back: reboots.append((version, back)),
        source=lambda: source,
        call_later=lambda _delay, callback: later.append(callback),
        faults=FotaFaults.parse(faults),
        szx=2,  # 64-byte blocks
    )
    return fota, changes, [reboots, later]


async def settle(fota: FirmwareUpdate) -> None:
    for _ in range(200):
        if fota.state is not State.DOWNLOADING:
            return
        await asyncio.sleep(0.001)


async def test_a_pull_goes_idle_downloading_downloaded_then_updating_and_reboots_on_success() -> None:
    fota, changes, (reboots, later) = make(source=Blocks(PACKAGE))
    assert fota.write(1, "coap://127.0.0.1:5683/fw/1") is CoapCode.CHANGED
    await settle(fota)
    assert changes == [(1, 0), (2, 0)]
    assert (fota.pkg_name, fota.pkg_version) == ("ML307R", "1.2.0")
    assert fota.execute(2) is CoapCode.CHANGED
    assert changes[-1] == (3, 0)
    later.pop()()
    assert reboots == [("1.2.0", True)]
    assert (fota.state, fota.result) == (State.IDLE, UpdateResult.SUCCESS)


@pytest.mark.parametrize(
    ("uri", "result"),
    [("ftp://example.org/fw", 9), ("https://example.org/fw", 9), ("not a uri", 7), ("coap://", 7)],
)
async def test_a_uri_the_module_cannot_use_leaves_it_idle_with_7_or_9(uri: str, result: int) -> None:
    fota, changes, _ = make(source=Blocks(PACKAGE))
    assert fota.write(1, uri) is CoapCode.CHANGED
    assert changes == [(0, result)]


async def test_update_is_only_executable_in_downloaded_and_cancel_not_while_updating() -> None:
    fota, _changes, (_reboots, _later) = make(source=Blocks(PACKAGE))
    assert fota.execute(2) is CoapCode.METHOD_NOT_ALLOWED
    fota.write(1, "coap://h/fw/1")
    await settle(fota)
    fota.execute(2)
    assert fota.execute(10) is CoapCode.METHOD_NOT_ALLOWED
    assert fota.write(1, "") is CoapCode.METHOD_NOT_ALLOWED


async def test_cancel_and_an_empty_uri_reset_the_object() -> None:
    fota, _changes, _ = make(source=Blocks(PACKAGE))
    fota.write(1, "coap://h/fw/1")
    await settle(fota)
    assert fota.execute(10) is CoapCode.CHANGED
    assert (fota.state, fota.result) == (State.IDLE, UpdateResult.CANCELLED)
    assert fota.downloaded == 0
    fota.write(1, "coap://h/fw/1")
    await settle(fota)
    assert fota.write(1, "") is CoapCode.CHANGED
    assert (fota.state, fota.result) == (State.IDLE, UpdateResult.INITIAL)


@pytest.mark.parametrize(
    ("faults", "package", "result"),
    [
        ("corrupt", PACKAGE, UpdateResult.INTEGRITY_FAILURE),
        ("no-storage", PACKAGE, UpdateResult.NOT_ENOUGH_FLASH),
        ("out-of-memory", PACKAGE, UpdateResult.OUT_OF_RAM),
        ("", pack("MN316", "1.2.0", b"x" * 100), UpdateResult.UNSUPPORTED_PACKAGE),
        ("", b"just some bytes, not a package", UpdateResult.UNSUPPORTED_PACKAGE),
        ("cut=40", PACKAGE, UpdateResult.CONNECTION_LOST),
    ],
)
async def test_a_failed_download_ends_idle_with_its_update_result(
    faults: str, package: bytes, result: int
) -> None:
    fota, _changes, _ = make(faults, Blocks(package))
    fota.write(1, "coap://h/fw/1")
    await settle(fota)
    assert (fota.state, fota.result) == (State.IDLE, result)


async def test_a_cut_download_resumes_at_the_first_missing_block_when_the_uri_comes_again() -> None:
    source = Blocks(PACKAGE)
    fota, _changes, _ = make("cut=50", source)
    fota.write(1, "coap://h/fw/1")
    await settle(fota)
    assert fota.result is UpdateResult.CONNECTION_LOST and fota.downloaded > 0
    first = list(source.asked)
    source.asked.clear()
    fota.write(1, "coap://h/fw/1")
    await settle(fota)
    assert fota.state is State.DOWNLOADED
    assert source.asked[0] == first[-1] + 1


async def test_a_failed_update_returns_to_downloaded_with_8() -> None:
    fota, _changes, (reboots, later) = make("update-fails", Blocks(PACKAGE))
    fota.write(1, "coap://h/fw/1")
    await settle(fota)
    fota.execute(2)
    later.pop()()
    assert (fota.state, fota.result) == (State.DOWNLOADED, UpdateResult.UPDATE_FAILED)
    assert reboots == []


async def test_a_pushed_package_is_checked_like_a_pulled_one() -> None:
    fota, _changes, _ = make()
    assert fota.write(0, PACKAGE) is CoapCode.CHANGED
    assert fota.state is State.DOWNLOADED
    fota, _changes, _ = make("no-storage")
    assert fota.write(0, PACKAGE) is CoapCode.REQUEST_ENTITY_TOO_LARGE
    assert fota.result is UpdateResult.NOT_ENOUGH_FLASH


def test_faults_have_a_text_form_and_unknown_ones_are_refused() -> None:
    faults = FotaFaults.parse("cut=50,corrupt,rate=2048,no-return")
    assert (faults.cut_at_percent, faults.corrupt, faults.link_rate, faults.never_returns) == (
        50,
        True,
        2048,
        True,
    )
    assert FotaFaults.parse(faults.describe()) == faults
    for bad in ("explode", "cut=150", "rate=0", "corrupt=1"):
        with pytest.raises(ValueError):
            FotaFaults.parse(bad)
