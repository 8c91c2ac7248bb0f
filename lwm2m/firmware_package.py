"""The testbed's firmware package format: a small header before the payload (pure, no I/O).

    offset  size  field
    0       4     magic b"TBFW"
    4       1     header format, 1
    5       1     model length M (bytes of UTF-8)
    6       M     model, e.g. "ML307R"
    6+M     1     version length V
    7+M     V     version, e.g. "1.2.0"
    7+M+V   4     payload length L, big-endian
    11+M+V  32    SHA-256 of the payload
    43+M+V  L     payload

`pack` builds one; `parse_header` reads the header (enough to refuse a package for another model
before its payload arrives); `verify` checks a whole package. Errors are `PackageError` with a
`kind`: "format" (not a package of ours: Update Result 6, unsupported package type) or
"integrity" (length or SHA-256 differ: Update Result 5).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, Literal

MAGIC: Final = b"TBFW"
FORMAT_VERSION: Final = 1
MAX_TEXT: Final = 255
FIXED_SIZE: Final = 4 + 1 + 1 + 1 + 4 + 32


class PackageError(ValueError):
    def __init__(self, kind: Literal["format", "integrity"], detail: str) -> None:
        self.kind = kind
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class PackageHeader:
    model: str
    version: str
    length: int
    sha256: bytes
    header_size: int

    @property
    def total_size(self) -> int:
        return self.header_size + self.length


def pack(model: str, version: str, payload: bytes) -> bytes:
    """A package of `payload` for `model` at `version`."""
    model_bytes, version_bytes = model.encode("utf-8"), version.encode("utf-8")
    if not model_bytes or not version_bytes:
        raise ValueError("model and version must not be empty")
    if len(model_bytes) > MAX_TEXT or len(version_bytes) > MAX_TEXT:
        raise ValueError(f"model and version are at most {MAX_TEXT} bytes")
    if len(payload) >= 1 << 32:
        raise ValueError("payload too large")
    return b"".join(
        (
            MAGIC,
            bytes((FORMAT_VERSION, len(model_bytes))),
            model_bytes,
            bytes((len(version_bytes),)),
            version_bytes,
            len(payload).to_bytes(4, "big"),
            hashlib.sha256(payload).digest(),
            payload,
        )
    )


def parse_header(data: bytes) -> PackageHeader | None:
    """The header at the start of `data`; None when `data` is too short to hold all of it.
    Raises PackageError("format") when it is not a header of ours."""
    if len(data) < 6:
        if not MAGIC.startswith(bytes(data[:4])):
            raise PackageError("format", "not a testbed firmware package (bad magic)")
        return None
    if bytes(data[:4]) != MAGIC:
        raise PackageError("format", "not a testbed firmware package (bad magic)")
    if data[4] != FORMAT_VERSION:
        raise PackageError("format", f"unknown package format {data[4]}")
    model_len = data[5]
    version_at = 6 + model_len
    if len(data) < version_at + 1:
        return None
    version_len = data[version_at]
    size = FIXED_SIZE + model_len + version_len
    if len(data) < size:
        return None
    try:
        model = bytes(data[6:version_at]).decode("utf-8")
        version = bytes(data[version_at + 1 : version_at + 1 + version_len]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PackageError("format", "model or version is not UTF-8") from exc
    at = version_at + 1 + version_len
    length = int.from_bytes(data[at : at + 4], "big")
    return PackageHeader(model, version, length, bytes(data[at + 4 : at + 36]), size)


def verify(data: bytes) -> PackageHeader:
    """The header of the complete package `data`, after checking its length and SHA-256."""
    header = parse_header(data)
    if header is None:
        raise PackageError("format", "truncated package header")
    payload = memoryview(data)[header.header_size :]
    if len(payload) != header.length:
        raise PackageError("integrity", f"payload is {len(payload)} bytes, the header says {header.length}")
    if hashlib.sha256(payload).digest() != header.sha256:
        raise PackageError("integrity", "SHA-256 of the payload does not match the header")
    return header
