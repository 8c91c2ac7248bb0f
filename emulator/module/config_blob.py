"""The AT+MIPLCREATE configuration blob (manual §3.1; layout in platforms.md "module side").

    byte 0      (version << 4) | item count          e.g. 0x13
    u16         total length of the blob (big-endian)
    items       0xF0 | id, u16 size including this 3-byte header
      id 1  init  empty (F10003)
      id 2  net   u16 MTU, u8 link/band type, [u8 flags: bit 7 bootstrap, bit 6 DTLS]  (SDK 2.x only)
                  then five u16-length-prefixed strings: APN, user, password, host "ip:port",
                  user data ("AuthCode:xx;PSK:yy;")
      id 3  sys   u8 log flags, u16 log buffer size, u16-length user data

Older firmware has no net flags byte. Both layouts are tried and the one whose string lengths add
up to the item size exactly wins (platforms.md, inferred). Without the flags byte, bootstrap is
inferred from the host (OneNET's bootstrap server 183.230.40.39 / nbiotbt.heclouds.com) and DTLS
from port 5684.

`parse_config` returns a `CreateConfig` or an error string; it never raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

BOOTSTRAP_HOSTS: Final = frozenset({"183.230.40.39", "nbiotbt.heclouds.com"})
DTLS_PORT: Final = 5684
COAP_PORT: Final = 5683


@dataclass(frozen=True, slots=True)
class CreateConfig:
    host: str
    port: int
    bootstrap: bool
    dtls: bool
    mtu: int = 1024
    apn: str = ""
    user_data: dict[str, str] = field(default_factory=dict)

    @property
    def auth_code(self) -> str | None:
        return self.user_data.get("AuthCode") or None

    @property
    def psk(self) -> str | None:
        return self.user_data.get("PSK") or None


def split_host(text: str, default_port: int = COAP_PORT) -> tuple[str, int] | None:
    """`"ip:port"` or `"name"` -> (host, port); None when the port is not a number."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return (text, default_port) if text else None
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def parse_user_data(text: str) -> dict[str, str]:
    """`"AuthCode:abc;PSK:xyz;"` -> {"AuthCode": "abc", "PSK": "xyz"}."""
    pairs: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition(":")
        if sep and key.strip():
            pairs[key.strip()] = value.strip()
    return pairs


def _strings(data: bytes, offset: int, count: int) -> tuple[list[str], int] | None:
    out: list[str] = []
    for _ in range(count):
        if offset + 2 > len(data):
            return None
        size = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if offset + size > len(data):
            return None
        out.append(data[offset : offset + size].decode("utf-8", errors="replace"))
        offset += size
    return out, offset


def _parse_net(body: bytes) -> CreateConfig | str:
    if len(body) < 3:
        return "net item too short"
    mtu = int.from_bytes(body[0:2], "big")
    for has_flags in (True, False):
        start = 4 if has_flags else 3
        if start > len(body):
            continue
        parsed = _strings(body, start, 5)
        if parsed is None or parsed[1] != len(body):
            continue
        apn, _user, _password, host_text, user_data = parsed[0]
        address = split_host(host_text.strip())
        if address is None:
            return "net item host is not ip:port"
        host, port = address
        if has_flags:
            flags = body[3]
            bootstrap, dtls = bool(flags & 0x80), bool(flags & 0x40)
        else:
            bootstrap, dtls = host in BOOTSTRAP_HOSTS, port == DTLS_PORT
        return CreateConfig(host, port, bootstrap, dtls, mtu, apn, parse_user_data(user_data))
    return "net item lengths do not add up"


def _sys_item_ok(body: bytes) -> bool:
    """u8 log flags, u16 log buffer size, u16-length user data."""
    return len(body) >= 5 and 5 + int.from_bytes(body[3:5], "big") == len(body)


def parse_config(blob: bytes) -> CreateConfig | str:
    if len(blob) < 3:
        return "config too short"
    count = blob[0] & 0x0F
    total = int.from_bytes(blob[1:3], "big")
    if total != len(blob):
        return f"config length {len(blob)} but header says {total}"
    offset = 3
    net: CreateConfig | None = None
    for _ in range(count):
        if offset + 3 > len(blob) or blob[offset] & 0xF0 != 0xF0:
            return "malformed item header"
        item_id = blob[offset] & 0x0F
        size = int.from_bytes(blob[offset + 1 : offset + 3], "big")
        if size < 3 or offset + size > len(blob):
            return "item size out of bounds"
        if item_id == 2:
            result = _parse_net(blob[offset + 3 : offset + size])
            if isinstance(result, str):
                return result
            net = result
        elif item_id == 3 and not _sys_item_ok(blob[offset + 3 : offset + size]):
            return "sys item lengths do not add up"
        offset += size
    if offset != len(blob):
        return "trailing bytes after the items"
    if net is None:
        return "no net item"
    return net
