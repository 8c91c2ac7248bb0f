"""What a firmware download needs besides object 5 (emulator.module.fota): the faults a test asks
for (`FotaFaults`, text form "cut=50,corrupt,no-storage,out-of-memory,update-fails,rate=2048,
no-return"), the network side a CoAP download pulls blocks from (`PackageSource`, answered by
`AiocoapClientPort`), the failure that ends a download with an Update Result, and the few lines
of HTTP/1.1 an HTTP download reads.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, fields
from typing import Final, Protocol

from lwm2m.firmware_update import UpdateResult

# Fault names of the text form "cut=50,corrupt,no-storage,out-of-memory,update-fails,rate=2048,no-return".
FAULT_FLAGS: Final = {
    "corrupt": "corrupt",
    "no-storage": "no_storage",
    "out-of-memory": "out_of_memory",
    "update-fails": "update_fails",
    "no-return": "never_returns",
}


@dataclass(slots=True)
class FotaFaults:
    """Faults of the next update(s). `cut_at_percent` is used once (the retry resumes)."""

    cut_at_percent: int | None = None
    corrupt: bool = False
    no_storage: bool = False
    out_of_memory: bool = False
    update_fails: bool = False
    link_rate: int | None = None  # bytes per second
    never_returns: bool = False

    @classmethod
    def parse(cls, text: str) -> FotaFaults:
        """Faults from their text form; ValueError names what is wrong."""
        faults = cls()
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            name, sep, value = item.partition("=")
            if name in FAULT_FLAGS and not sep:
                setattr(faults, FAULT_FLAGS[name], True)
            elif name in ("cut", "rate") and sep and value.isdigit():
                number = int(value)
                if name == "cut":
                    if not 0 <= number < 100:
                        raise ValueError("cut=N takes a percentage 0..99")
                    faults.cut_at_percent = number
                else:
                    if number <= 0:
                        raise ValueError("rate=N takes bytes per second > 0")
                    faults.link_rate = number
            else:
                known = ", ".join([*FAULT_FLAGS, "cut=N", "rate=N"])
                raise ValueError(f"unknown FOTA fault {item!r}; known: {known}")
        return faults

    def describe(self) -> str:
        parts = [k for k, attr in FAULT_FLAGS.items() if getattr(self, attr)]
        if self.cut_at_percent is not None:
            parts.append(f"cut={self.cut_at_percent}")
        if self.link_rate is not None:
            parts.append(f"rate={self.link_rate}")
        return ",".join(parts)

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class BlockAnswer:
    """One Block2 response: CoAP code (int), payload, more-flag, ETag, Size2."""

    code: int
    payload: bytes
    more: bool
    etag: bytes | None = None
    size: int | None = None


class PackageSource(Protocol):
    """What the module's network side offers the download (`AiocoapClientPort`)."""

    async def fetch_block(
        self,
        scheme: str,
        host: str,
        port: int,
        path: tuple[str, ...],
        query: tuple[str, ...],
        number: int,
        szx: int,
    ) -> BlockAnswer: ...

    def route(self, host: str, port: int) -> tuple[str, int]: ...


class DownloadFailed(Exception):
    def __init__(self, result: UpdateResult, detail: str = "") -> None:
        self.result = result
        super().__init__(f"{result.name}: {detail}")


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    parts = status_line.decode("latin-1").split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise DownloadFailed(UpdateResult.CONNECTION_LOST, "not an HTTP answer")
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


def range_start(content_range: str) -> int | None:
    # "bytes 1024-4095/4096"
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None
