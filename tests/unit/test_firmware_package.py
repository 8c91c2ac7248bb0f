"""The testbed's firmware package format (lwm2m.firmware_package): header fields, checks."""

from __future__ import annotations

import hashlib

import pytest

from lwm2m.firmware_package import MAGIC, PackageError, pack, parse_header, verify


def test_a_package_carries_magic_model_version_length_and_sha256_before_the_payload() -> None:
    payload = b"firmware image"
    data = pack("ML307R", "1.2.0", payload)
    assert data.startswith(MAGIC + b"\x01\x06ML307R\x051.2.0")
    header = verify(data)
    assert (header.model, header.version, header.length) == ("ML307R", "1.2.0", len(payload))
    assert header.sha256 == hashlib.sha256(payload).digest()
    assert data[header.header_size :] == payload and header.total_size == len(data)


def test_the_header_is_read_from_the_first_bytes_alone() -> None:
    data = pack("MN316", "2.0", b"x" * 5000)
    assert parse_header(data[:10]) is None
    header = parse_header(data[:100])
    assert header is not None and header.model == "MN316" and header.length == 5000


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"PK\x03\x04 a zip file", "format"),
        (MAGIC + b"\x02\x01X\x011" + bytes(36), "format"),
        (pack("ML307R", "1", b"abc")[:-1], "integrity"),
        (pack("ML307R", "1", b"abc")[:-1] + b"x", "integrity"),
    ],
)
def test_what_is_not_a_whole_package_of_ours_is_refused_by_kind(data: bytes, kind: str) -> None:
    with pytest.raises(PackageError) as caught:
        verify(data)
    assert caught.value.kind == kind


def test_pack_refuses_empty_or_oversized_names() -> None:
    with pytest.raises(ValueError):
        pack("", "1.0", b"x")
    with pytest.raises(ValueError):
        pack("M" * 256, "1.0", b"x")
