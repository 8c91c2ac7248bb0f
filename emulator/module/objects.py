"""Device instance and object commands (manual §3.1 - §3.5, §4.6): AT+MIPLCREATE (default and
config-blob forms), AT+MIPLCREATEEX, AT+MIPLDELETE, AT+MIPLADDOBJ, AT+MIPLDELOBJ.
"""

from __future__ import annotations

import logging
from typing import Final

from emulator.at.params import HexParam, IntParam, StrParam, sig
from emulator.at.results import CIS_NOT_ALLOWED, CIS_RESOURCE, CIS_SYNTAX, Reply
from emulator.at.table import CommandSpec, Invocation
from emulator.module.config_blob import COAP_PORT, DTLS_PORT, parse_config, split_host
from emulator.module.core import REF_PARAM, ModuleCore, err
from emulator.module.device import REF, Device, ObjectEntry
from emulator.module.login import Login

log = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP_HOST: Final = "nbiotbt.heclouds.com"
MAX_PSK_BYTES: Final = 16


class ObjectCommands:
    """Creating and deleting the device instance, adding and deleting its objects."""

    def __init__(self, core: ModuleCore, login: Login) -> None:
        self._core = core
        self._login = login
        # AT+MIPLCREATE's config blob, as its segments arrive.
        self._create_segments: list[str] = []
        self._create_total: int | None = None

    def commands(self) -> list[CommandSpec]:
        u16 = IntParam
        return [
            CommandSpec(
                "+MIPLCREATE",
                execute=self._create_default,
                set=self._create_segment,
                signature=sig(
                    IntParam("totalsize", 1, 1 << 16),
                    HexParam("config"),
                    IntParam("index", 0, 255),
                    IntParam("currentsize", 0, 1 << 16),
                    IntParam("flag", 0, 255),
                ),
            ),
            CommandSpec(
                "+MIPLCREATEEX",
                set=self._create_ex,
                signature=sig(
                    StrParam("host", 255),
                    IntParam("flag", 0, 3),
                    StrParam("authcode", 64),
                    StrParam("PSK", 64),
                    StrParam("PSKID", 64),
                    IntParam("psk_encode", 0, 1),
                    required=2,
                ),
            ),
            CommandSpec("+MIPLDELETE", set=self._delete, signature=sig(REF_PARAM)),
            CommandSpec(
                "+MIPLADDOBJ",
                set=self._add_object,
                signature=sig(
                    REF_PARAM,
                    u16("objid"),
                    IntParam("inscount", 1, 255),
                    StrParam("bitmap", 255),
                    IntParam("atts", 0, 65535),
                    IntParam("acts", 0, 65535),
                    required=4,
                ),
            ),
            CommandSpec("+MIPLDELOBJ", set=self._delete_object, signature=sig(REF_PARAM, u16("objid"))),
        ]

    def _create_default(self, _inv: Invocation) -> Reply:
        """AT+MIPLCREATE: bootstrap to OneNET (manual §3.1 "执行命令配置默认以bootstrap方式连接至
        OneNET重庆主平台")."""
        if self._core.device is not None:
            return err(CIS_RESOURCE)
        self._core.device = Device(DEFAULT_BOOTSTRAP_HOST, COAP_PORT, bootstrap=True, dtls=False)
        return Reply([f"+MIPLCREATE: {REF}"])

    def _create_segment(self, inv: Invocation) -> Reply:
        """AT+MIPLCREATE=<totalsize>,<config>,<index>,<currentsize>,<flag>. `<flag>` 0 ends the
        stream; sizes count bytes of the blob (the well-known one-segment example says 49 for 98 hex
        digits) — hex-digit counts are accepted too *(choice)*."""
        if self._core.device is not None:
            return err(CIS_RESOURCE)
        total, config, _index, current, flag = inv.values
        assert isinstance(config, str) and isinstance(total, int) and isinstance(current, int)
        if current not in (len(config) // 2, len(config)):
            self.reset_create()
            return err(CIS_SYNTAX)
        if self._create_total is not None and self._create_total != total:
            self.reset_create()
            return err(CIS_SYNTAX)
        self._create_total = total
        self._create_segments.append(config)
        if flag != 0:
            return Reply()
        blob_hex = "".join(self._create_segments)
        self.reset_create()
        if total not in (len(blob_hex) // 2, len(blob_hex)):
            return err(CIS_SYNTAX)
        parsed = parse_config(bytes.fromhex(blob_hex))
        if isinstance(parsed, str):
            log.info("AT+MIPLCREATE config rejected: %s", parsed)
            return err(CIS_SYNTAX)
        psk = parsed.psk
        self._core.device = Device(
            parsed.host,
            parsed.port,
            bootstrap=parsed.bootstrap,
            dtls=parsed.dtls,
            auth_code=parsed.auth_code,
            psk=psk.encode() if psk else None,
            psk_text=psk,
            user_data=parsed.user_data,
        )
        return Reply([f"+MIPLCREATE: {REF}"])

    def reset_create(self) -> None:
        """Forget the segments of an unfinished AT+MIPLCREATE."""
        self._create_segments = []
        self._create_total = None

    def _create_ex(self, inv: Invocation) -> Reply:
        """AT+MIPLCREATEEX=<host>,<flag>[,<authcode>,<PSK>[,<PSKID>[,<psk_encode>]]] (manual §4.6).
        Port 5684 means DTLS; the PSK is at most 16 bytes; flag bit 0 bootstrap, bit 1 no monitor."""
        if self._core.device is not None:
            return err(CIS_RESOURCE)
        host_text, flag, auth, psk_text, pskid, encode = inv.values
        address = split_host(str(host_text).strip())
        if address is None:
            return err(CIS_SYNTAX)
        host, port = address
        assert isinstance(flag, int)
        psk: bytes | None = None
        if psk_text:
            assert isinstance(psk_text, str)
            if encode == 1:
                try:
                    psk = bytes.fromhex(psk_text)
                except ValueError:
                    return err(CIS_SYNTAX)
            else:
                psk = psk_text.encode("utf-8")
            if len(psk) > MAX_PSK_BYTES or not psk:
                return err(CIS_SYNTAX)
        self._core.device = Device(
            host,
            port,
            bootstrap=bool(flag & 1),
            dtls=port == DTLS_PORT,
            auth_code=str(auth) if auth else None,
            psk=psk,
            psk_text=str(psk_text) if psk_text else None,
            psk_identity=str(pskid).encode() if pskid else None,
            monitor=not flag & 2,
        )
        return Reply([f"+MIPLCREATEEX: {REF}"])

    def _delete(self, inv: Invocation) -> Reply:
        """AT+MIPLDELETE=<ref>: closes the socket at once and drops everything (§3.2 note)."""
        if self._core.device_at(inv.number(0)) is None:
            return err(CIS_RESOURCE)
        self._login.end(abort=True)
        self._core.device = None
        self._core.values.clear()
        return Reply()

    def _add_object(self, inv: Invocation) -> Reply:
        """AT+MIPLADDOBJ: `<bitmap>` has one 0/1 per instance, its length is `<inscount>`. Adding an
        object twice is 651 *(choice)*."""
        device = self._core.device_at(inv.number(0))
        if device is None:
            return err(CIS_RESOURCE)
        _ref, objid, count, bitmap, atts, acts = inv.values
        assert isinstance(objid, int) and isinstance(count, int) and isinstance(bitmap, str)
        if len(bitmap) != count or set(bitmap) - {"0", "1"}:
            return err(CIS_SYNTAX)
        if objid in device.objects:
            return err(CIS_NOT_ALLOWED)
        instances = tuple(i for i, bit in enumerate(bitmap) if bit == "1")
        device.objects[objid] = ObjectEntry(objid, count, instances, int(atts or 0), int(acts or 0))
        return Reply()

    def _delete_object(self, inv: Invocation) -> Reply:
        """AT+MIPLDELOBJ=<ref>,<objid>: the object, its resource list and its observations."""
        device = self._core.device_at(inv.number(0))
        objid = inv.number(1)
        if device is None or objid not in device.objects:
            return err(CIS_RESOURCE)
        del device.objects[objid]
        device.resource_lists.pop(objid, None)
        observations = self._core.observations
        for mid in [m for m, o in observations.items() if o.path.object_id == objid]:
            del observations[mid]
        return Reply()
