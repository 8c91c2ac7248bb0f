"""The emulated OneMO module: the MIPL command set and its LwM2M state machine (OneMO LwM2M AT
manual V4.4.0 chapters 3 and 4; platforms.md "module side").

Layers: bytes -> `emulator.at.AtEngine` (syntax, parameters, result codes) -> the handlers here
(state, model rules) -> `ClientPort` (the LwM2M client). The client comes back through
`RequestHandler` (server requests -> `+MIPLREAD` ... URCs, answered by the MCU's
`AT+MIPL...RSP`) and `ClientEvents` (-> `+MIPLEVENT`).

States of the device instance (ref 0): none -> CREATED (AT+MIPLCREATE[EX]) -> OPENING
(AT+MIPLOPEN; bootstrap and register run in the client) -> REGISTERED (+MIPLEVENT 6) ->
CLOSING (AT+MIPLCLOSE) -> CREATED (+MIPLEVENT 15); AT+MIPLDELETE drops it from any state.

Error codes (manual §6): 601 malformed or unsupported parameter values, 602 not registered (or
still registering), 651 not allowed in this state, 652 the client refused an uplink, 653 the
device instance, object or message id does not exist (or the instance already exists on create).
Design choices the manual leaves open are marked *(choice)* in the handlers' docstrings.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from emulator.at.engine import AtEngine, EchoSink, LineSink
from emulator.at.params import HexParam, IntParam, Signature, StrParam, one_of, sig
from emulator.at.results import (
    CIS_NOT_ALLOWED,
    CIS_NOT_REGISTERED,
    CIS_RESOURCE,
    CIS_SYNTAX,
    CIS_UPLINK_BUSY,
    CisError,
    Reply,
)
from emulator.at.table import CommandSpec, CommandTable, Invocation
from emulator.client.handler import DiscoverResult, ReadResult
from emulator.module.basic import (
    DEFAULT_ICCID,
    DEFAULT_IMEI,
    DEFAULT_IMSI,
    Identity,
    NetworkState,
    basic_commands,
    default_wall_start,
)
from emulator.module.clock import Handle, Scheduler
from emulator.module.config_blob import COAP_PORT, DTLS_PORT, parse_config, split_host
from emulator.module.device import (
    AUTO_ACK_WRITES,
    BINDINGS,
    CUSTOM,
    DEFAULT_UNDECLARED_TYPE,
    DEVICE_OBJECT,
    MONITOR_OBJECT,
    ONENET,
    REF,
    UNDECLARED_OPAQUE_TYPE,
    Device,
    ObjectEntry,
    State,
    device_object,
    monitor_object,
)
from emulator.module.events import Event, shown_as
from emulator.module.fota import FirmwareUpdate, FotaFaults, PackageSource
from emulator.module.models import OPTIONAL_COMMANDS, ModelCapabilities, NsmiStyle, ReleaseFlags, capabilities
from emulator.module.operations import (
    FLAG_LAST,
    MAX_PAYLOAD,
    MAX_QUEUED,
    MAX_QUEUED_DATA,
    Kind,
    OperationQueue,
    Part,
    PendingOperation,
    build_node,
    covers,
)
from emulator.module.ports import ClientConfig, ClientFactory, ClientPort, Notification, Release
from emulator.module.session import Session
from emulator.module.values import (
    CONTENT_TYPES,
    RESULT_CODES,
    AtType,
    format_for_write,
    parse_value,
    value_size,
)
from lwm2m.firmware_update import OBJECT_ID as FIRMWARE_OBJECT
from lwm2m.node import LwM2MObject, Node, ObjectInstance, SingleResource, Value, iter_values
from lwm2m.numbers import CoapCode, ResourceType
from lwm2m.path import Path

log = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP_HOST: Final = "nbiotbt.heclouds.com"
DEFAULT_OPEN_TIMEOUT: Final = 30
UPDATE_DEFAULT_LIFETIME: Final = 86400
MIN_UPDATE_LIFETIME: Final = 10
AUTO_UPDATE_MIN_LIFETIME: Final = 60
AUTO_UPDATE_LEAD: Final = 30
MAX_LIFETIME: Final = 0x0FFFFFFF
MIN_LIFETIME: Final = 15
MIN_DTLS_NAT: Final = 60
MAX_PSK_BYTES: Final = 16
BLOCKWISE_THRESHOLD: Final = 1024
RELEASE_AFTER_SEND: Final = 0x200
RELEASE_AFTER_ACK: Final = 0x400
READ_RESULTS: Final = frozenset({1, 11, 12, 13, 14, 15})
CHANGE_RESULTS: Final = frozenset({2, 11, 12, 13, 14})
ACK_RESULTS: Final = frozenset({1, 2, 11, 12, 13, 14})  # PARAMETERRSP / OBSERVERSP (examples use 1)
EXTENDED_RESULTS: Final = frozenset({16, 17, 18, 19})
# MCU answer windows: the manual's "read响应（5秒内）" (§5.1) in the direct URC mode; the OneNET
# API's default 25 s when the operation waits in the cache for AT+MIPLMGR (*(choice)*).
DEFAULT_RESPONSE_TIMEOUT: Final = 5.0
DEFAULT_QUEUED_RESPONSE_TIMEOUT: Final = 25.0
# What a RequestHandler call returns when the MCU did not answer in time or the operation was
# dropped from the cache: the client turns it into its response (*(choice)*: 5.03).
NO_ANSWER: Final = CoapCode.SERVICE_UNAVAILABLE

_REF = IntParam("ref", 0, 65535)
_U16 = 65535


def _err(code: int) -> Reply:
    return Reply(result=CisError(code))


def _ids(path: Path) -> str:
    """`<objid>,<insid>,<resid>` with -1 for what the path leaves out."""
    ins = -1 if path.instance_id is None else path.instance_id
    res = -1 if path.resource_id is None else path.resource_id
    return f"{path.object_id},{ins},{res}"


@dataclass(slots=True)
class Observation:
    mid: int
    observation_id: int
    path: Path


class Module:
    """One emulated OneMO module: feed it AT bytes, read response lines from `sink`."""

    def __init__(
        self,
        model: str = "ML307R",
        *,
        imei: str = DEFAULT_IMEI,
        imsi: str = DEFAULT_IMSI,
        iccid: str = DEFAULT_ICCID,
        client_factory: ClientFactory | None = None,
        clock: Scheduler,
        sink: LineSink,
        echo_sink: EchoSink | None = None,
        echo: bool = True,
        wall_start: datetime | None = None,
        response_timeout: float = DEFAULT_RESPONSE_TIMEOUT,
        queued_response_timeout: float = DEFAULT_QUEUED_RESPONSE_TIMEOUT,
        first_mid: int = 18172,
        fota_faults: FotaFaults | None = None,
    ) -> None:
        self.caps: ModelCapabilities = capabilities(model)
        self.identity = Identity(imei, imsi, iccid)
        self.network = NetworkState()
        self.clock = clock
        self.client_factory = client_factory
        self.response_timeout = response_timeout
        self.queued_response_timeout = queued_response_timeout
        self._wall_start = wall_start or default_wall_start()
        self._clock_start = clock.now()
        self._mids = itertools.count(first_mid)
        self.device: Device | None = None
        self.client: ClientPort | None = None
        self._session: Session | None = None
        self.queue = OperationQueue()
        self.observations: dict[int, Observation] = {}
        self.values: dict[tuple[int, int, int], tuple[Value, ResourceType]] = {}
        self.attributes: dict[Path, dict[str, str]] = {}
        self._notify_parts: list[Part] = []
        self._create_segments: list[str] = []
        self._create_total: int | None = None
        self._lifetime = 0
        self._pending_lifetime = 0
        self._registered_at = 0.0
        self._bootstrapping = False
        self._timers: dict[str, Handle] = {}
        # Object 5 and its flash (emulator.module.fota): they outlive power cycles.
        self.fota: FirmwareUpdate | None = None
        if self.caps.fota:
            self.fota = FirmwareUpdate(
                self.caps.name,
                changed=self._fota_changed,
                reboot=self._fota_reboot,
                source=self._fota_source,
                call_later=lambda delay, callback: self.clock.call_later(delay, callback),
                faults=fota_faults,
            )
        # Observations of the module's own objects (/3/0, /5/0): observation id -> path.
        self.builtin_observations: dict[int, Path] = {}
        # Set when a firmware update's reboot never comes back: the module stays silent.
        self.halted = False
        table = CommandTable(
            basic_commands(self.caps, self.identity, self.network, self.wall_time, self._on_attach_change)
        )
        for spec in self._mipl_commands():
            if spec.name in OPTIONAL_COMMANDS and spec.name not in self.caps.optional_commands:
                continue
            table.add(spec)
        self.engine = AtEngine(table, sink, echo=echo, echo_sink=echo_sink, cmee=self.caps.default_cmee)

    # ------------------------------------------------------------------ plumbing

    def feed(self, data: bytes) -> None:
        """Bytes from the MCU (any chunking); responses and URCs go to the sink."""
        if self.halted:
            return
        self.engine.feed(data)

    def send_line(self, line: str) -> None:
        """Convenience for tests and scripts: one command line, CR-terminated."""
        self.feed(line.encode("utf-8") + b"\r")

    def power_off(self) -> ClientPort | None:
        """The supply is cut: no message goes out, timers stop, pending server requests are
        answered as unanswered, and the device instance and the MCU's values are gone (RAM state;
        *(choice)* nothing survives a power cycle). Returns the dropped client (already aborted)
        so an async owner can wait for its socket to close."""
        client = self.client
        self._end_login(abort=True)
        if self.fota is not None:
            self.fota.shutdown()
        self.builtin_observations.clear()
        self.device = None
        self.values.clear()
        self.attributes.clear()
        self._reset_create()
        return client

    def wall_time(self) -> datetime:
        return self._wall_start + timedelta(seconds=self.clock.now() - self._clock_start)

    @property
    def state(self) -> State | None:
        return None if self.device is None else self.device.state

    def _urc(self, line: str) -> None:
        self.engine.urc(line)

    def _event(self, event: Event, ackid: int | None = None) -> None:
        shown = shown_as(event, self.caps.events)
        if shown is not None:
            self._urc(f"+MIPLEVENT: {REF},{int(shown)}" + ("" if ackid is None else f",{ackid}"))

    def _next_mid(self) -> int:
        while True:
            mid = next(self._mids) & _U16
            if mid and mid not in self.queue._ops and mid not in self.observations:
                return mid

    def _set_timer(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer(name)
        self._timers[name] = self.clock.call_later(delay, callback)

    def _cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _on_attach_change(self) -> None:
        """CFUN=0 / CGATT=0 while logging in drops the client, so the login times out (+MIPLEVENT 7
        or 3). *(choice)* A registered module keeps its state: the radio being off shows when the
        lifetime runs out, as on a real module."""
        device = self.device
        if self.network.attached or device is None or device.state is not State.OPENING:
            return
        client, self.client, self._session = self.client, None, None
        if client is not None:
            client.abort()

    def _device(self, ref: int | None) -> Device | None:
        return self.device if ref == REF else None

    def _nsmi(self, mid: int) -> None:
        device = self.device
        if device is None or not device.nsmi or self.caps.nsmi is NsmiStyle.UNSUPPORTED:
            return
        num = mid & 127
        if self.caps.nsmi is NsmiStyle.M5311 and num == 0:
            num = 128
        self._urc(f"+MIPLNSMI: {REF},1,{num}")

    def _allowed_results(self, base: frozenset[int]) -> frozenset[int]:
        extended = self.caps.result_codes & EXTENDED_RESULTS
        return base | extended

    # ------------------------------------------------------------------ command table

    def _mipl_commands(self) -> list[CommandSpec]:
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
            CommandSpec("+MIPLDELETE", set=self._delete, signature=sig(_REF)),
            CommandSpec(
                "+MIPLADDOBJ",
                set=self._add_object,
                signature=sig(
                    _REF,
                    u16("objid"),
                    IntParam("inscount", 1, 255),
                    StrParam("bitmap", 255),
                    IntParam("atts", 0, 65535),
                    IntParam("acts", 0, 65535),
                    required=4,
                ),
            ),
            CommandSpec("+MIPLDELOBJ", set=self._delete_object, signature=sig(_REF, u16("objid"))),
            CommandSpec(
                "+MIPLDISCOVERRSP",
                set=self._discover_rsp,
                signature=sig(
                    _REF,
                    u16("objid"),
                    one_of("result", {1}),
                    IntParam("length", 0, 4096),
                    StrParam("data", 4096),
                ),
            ),
            CommandSpec(
                "+MIPLOPEN",
                set=self._open,
                read=self._open_query,
                signature=sig(
                    _REF,
                    IntParam("lifetime", MIN_LIFETIME, MAX_LIFETIME),
                    IntParam("timeout", 1, 65535),
                    required=2,
                ),
            ),
            CommandSpec(
                "+MIPLUPDATE",
                set=self._update,
                signature=sig(_REF, IntParam("lifetime", 0, 2**31 - 1), IntParam("withObjectFlag", 0, 1)),
            ),
            CommandSpec("+MIPLCLOSE", set=self._close, signature=sig(_REF)),
            CommandSpec(
                "+MIPLNOTIFY",
                set=self._notify,
                signature=sig(
                    _REF,
                    u16("mid"),
                    u16("objid"),
                    u16("insid"),
                    u16("resid"),
                    IntParam("type", 1, 6),
                    IntParam("len", 0, 65535),
                    StrParam("value", 2048),
                    IntParam("index", 0, 255),
                    one_of("flag", self._notify_flags(), allow_hex=True),
                    u16("ackid"),
                    IntParam("contentType", 0, 4),
                    required=10,
                ),
            ),
            CommandSpec(
                "+MIPLREADRSP",
                set=self._read_rsp,
                signature=sig(
                    _REF,
                    u16("mid"),
                    one_of("result", self._allowed_results(READ_RESULTS)),
                    u16("objid"),
                    u16("insid"),
                    u16("resid"),
                    IntParam("type", 1, 6),
                    IntParam("len", 0, 65535),
                    StrParam("value", 2048),
                    IntParam("index", 0, 255),
                    IntParam("flag", 0, 2),
                    required=3,
                ),
            ),
            CommandSpec("+MIPLWRITERSP", set=self._write_rsp, signature=self._rsp_signature(CHANGE_RESULTS)),
            CommandSpec(
                "+MIPLEXECUTERSP", set=self._execute_rsp, signature=self._rsp_signature(CHANGE_RESULTS)
            ),
            CommandSpec("+MIPLPARAMETERRSP", set=self._ack_rsp, signature=self._rsp_signature(ACK_RESULTS)),
            CommandSpec("+MIPLOBSERVERSP", set=self._ack_rsp, signature=self._rsp_signature(ACK_RESULTS)),
            CommandSpec("+MIPLCFG", set=self._cfg, signature=self._cfg_signatures()),
            CommandSpec(
                "+MIPLNMI",
                set=self._nmi,
                read=self._nmi_query,
                signature=sig(_REF, IntParam("nnmi", 0, 2), IntParam("nsmi", 0, self._nsmi_max())),
            ),
            CommandSpec("+MIPLMGR", set=self._mgr, signature=sig(_REF)),
            CommandSpec("+MIPLQMGR", set=self._qmgr, signature=sig(_REF)),
            CommandSpec(
                "+MIPLUPDATESET", set=self._update_set, signature=sig(_REF, IntParam("enable", 0, 1))
            ),
            CommandSpec("+MIPLDEVINFO", read=self._devinfo),
            CommandSpec(
                "+MIPLDTLSNAT",
                set=self._dtls_nat,
                signature=sig(_REF, IntParam("timeout", spans=((0, 0), (MIN_DTLS_NAT, 2**31 - 1)))),
            ),
            CommandSpec("+MIPLLTRDP", execute=self._ltrdp),
        ]

    def _rsp_signature(self, results: frozenset[int]) -> Signature:
        return sig(_REF, IntParam("mid", 0, _U16), one_of("result", self._allowed_results(results)))

    def _notify_flags(self) -> set[int]:
        """AT+MIPLNOTIFY `<flag>`: 1 first, 2 middle, 0 last (§3.9); 0x200 / 0x400 release the RRC
        connection (§3.9 footnote 3) except where the model rejects them."""
        release = (
            set()
            if self.caps.release_flags is ReleaseFlags.REJECTED
            else {RELEASE_AFTER_SEND, RELEASE_AFTER_ACK}
        )
        return {0, 1, 2} | release

    def _nsmi_max(self) -> int:
        """AT+MIPLNMI `<nsmi>` 1 only where the model has send reports (§4.2 note)."""
        return 0 if self.caps.nsmi is NsmiStyle.UNSUPPORTED else 1

    def _cfg_signatures(self) -> tuple[Signature, ...]:
        """The three set forms of AT+MIPLCFG (§4.1 syntax table): "platform" with `<pattern>` 0-4,
        "platform" 10 with `<epname>`, "binding" with `<binding_mode>`; `<platform>` as the model
        has it (§4.1 footnote 7)."""
        platform, binding = StrParam("item", choices=("platform",)), StrParam("item", choices=("binding",))
        forms = [
            sig(
                platform,
                _REF,
                one_of("platform", self.caps.platforms - {CUSTOM}),
                IntParam("pattern", 0, 4),
                required=3,
            ),
            sig(binding, _REF, one_of("binding_mode", BINDINGS)),
        ]
        if CUSTOM in self.caps.platforms:
            forms.insert(
                1, sig(platform, _REF, one_of("platform", {CUSTOM}), StrParam("epname", 128), required=3)
            )
        return tuple(forms)

    # ------------------------------------------------------------------ create / delete

    def _create_default(self, _inv: Invocation) -> Reply:
        """AT+MIPLCREATE: bootstrap to OneNET (manual §3.1 "执行命令配置默认以bootstrap方式连接至
        OneNET重庆主平台")."""
        if self.device is not None:
            return _err(CIS_RESOURCE)
        self.device = Device(DEFAULT_BOOTSTRAP_HOST, COAP_PORT, bootstrap=True, dtls=False)
        return Reply([f"+MIPLCREATE: {REF}"])

    def _create_segment(self, inv: Invocation) -> Reply:
        """AT+MIPLCREATE=<totalsize>,<config>,<index>,<currentsize>,<flag>. `<flag>` 0 ends the
        stream; sizes count bytes of the blob (the well-known one-segment example says 49 for 98 hex
        digits) — hex-digit counts are accepted too *(choice)*."""
        if self.device is not None:
            return _err(CIS_RESOURCE)
        total, config, _index, current, flag = inv.values
        assert isinstance(config, str) and isinstance(total, int) and isinstance(current, int)
        if current not in (len(config) // 2, len(config)):
            self._reset_create()
            return _err(CIS_SYNTAX)
        if self._create_total is not None and self._create_total != total:
            self._reset_create()
            return _err(CIS_SYNTAX)
        self._create_total = total
        self._create_segments.append(config)
        if flag != 0:
            return Reply()
        blob_hex = "".join(self._create_segments)
        self._reset_create()
        if total not in (len(blob_hex) // 2, len(blob_hex)):
            return _err(CIS_SYNTAX)
        parsed = parse_config(bytes.fromhex(blob_hex))
        if isinstance(parsed, str):
            log.info("AT+MIPLCREATE config rejected: %s", parsed)
            return _err(CIS_SYNTAX)
        psk = parsed.psk
        self.device = Device(
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

    def _reset_create(self) -> None:
        self._create_segments = []
        self._create_total = None

    def _create_ex(self, inv: Invocation) -> Reply:
        """AT+MIPLCREATEEX=<host>,<flag>[,<authcode>,<PSK>[,<PSKID>[,<psk_encode>]]] (manual §4.6).
        Port 5684 means DTLS; the PSK is at most 16 bytes; flag bit 0 bootstrap, bit 1 no monitor."""
        if self.device is not None:
            return _err(CIS_RESOURCE)
        host_text, flag, auth, psk_text, pskid, encode = inv.values
        address = split_host(str(host_text).strip())
        if address is None:
            return _err(CIS_SYNTAX)
        host, port = address
        assert isinstance(flag, int)
        psk: bytes | None = None
        if psk_text:
            assert isinstance(psk_text, str)
            if encode == 1:
                try:
                    psk = bytes.fromhex(psk_text)
                except ValueError:
                    return _err(CIS_SYNTAX)
            else:
                psk = psk_text.encode("utf-8")
            if len(psk) > MAX_PSK_BYTES or not psk:
                return _err(CIS_SYNTAX)
        self.device = Device(
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
        if self._device(inv.number(0)) is None:
            return _err(CIS_RESOURCE)
        self._end_login(abort=True)
        self.device = None
        self.values.clear()
        return Reply()

    # ------------------------------------------------------------------ objects

    def _add_object(self, inv: Invocation) -> Reply:
        """AT+MIPLADDOBJ: `<bitmap>` has one 0/1 per instance, its length is `<inscount>`. Adding an
        object twice is 651 *(choice)*."""
        device = self._device(inv.number(0))
        if device is None:
            return _err(CIS_RESOURCE)
        _ref, objid, count, bitmap, atts, acts = inv.values
        assert isinstance(objid, int) and isinstance(count, int) and isinstance(bitmap, str)
        if len(bitmap) != count or set(bitmap) - {"0", "1"}:
            return _err(CIS_SYNTAX)
        if objid in device.objects:
            return _err(CIS_NOT_ALLOWED)
        instances = tuple(i for i, bit in enumerate(bitmap) if bit == "1")
        device.objects[objid] = ObjectEntry(objid, count, instances, int(atts or 0), int(acts or 0))
        return Reply()

    def _delete_object(self, inv: Invocation) -> Reply:
        device = self._device(inv.number(0))
        objid = inv.number(1)
        if device is None or objid not in device.objects:
            return _err(CIS_RESOURCE)
        del device.objects[objid]
        device.resource_lists.pop(objid, None)
        for mid in [m for m, o in self.observations.items() if o.path.object_id == objid]:
            del self.observations[mid]
        return Reply()

    def _discover_rsp(self, inv: Invocation) -> Reply:
        """AT+MIPLDISCOVERRSP=<ref>,<objid>,<result>,<length>,<data>: `<result>` must be 1 and
        `<length>` the length of `<data>` ("5500;5501;5750" is 14). Answers OK only, as the example
        (the syntax table's "+MIPLCREATE: <ref>" is a copy slip of the manual)."""
        device = self._device(inv.number(0))
        _ref, objid, _result, length, data = inv.values
        if device is None or objid not in device.objects:
            return _err(CIS_RESOURCE)
        assert isinstance(data, str) and isinstance(objid, int)
        if length != len(data):
            return _err(CIS_SYNTAX)
        parts = [p for p in data.split(";")] if data else []
        if any(not p.isdigit() or int(p) > _U16 for p in parts):
            return _err(CIS_SYNTAX)
        device.resource_lists[objid] = tuple(int(p) for p in parts)
        return Reply()

    # ------------------------------------------------------------------ login

    def _open(self, inv: Invocation) -> Reply:
        """AT+MIPLOPEN=<ref>,<lifetime>[,<timeout>]: OK, then +MIPLEVENT 6 / 7 (3 when the
        bootstrap does not finish) within `<timeout>` seconds (default 30)."""
        device = self._device(inv.number(0))
        if device is None:
            return _err(CIS_RESOURCE)
        lifetime = inv.number(1) or 0
        timeout = inv.number(2, DEFAULT_OPEN_TIMEOUT) or DEFAULT_OPEN_TIMEOUT
        if device.state is not State.CREATED:
            return _err(CIS_NOT_ALLOWED)
        if device.dtls and device.platform not in self.caps.dtls_platforms:
            return _err(CIS_NOT_ALLOWED)
        device.state = State.OPENING
        self._lifetime = lifetime
        self._bootstrapping = False
        self._set_timer("open", timeout, self._open_timed_out)
        config = self._client_config(device, lifetime, timeout)
        if self.client_factory is not None and self.network.attached:
            session = Session(self)
            self._session = session
            self.client = self.client_factory(session)
            self.client.open(config)
        return Reply()

    def _client_config(self, device: Device, lifetime: int, timeout: int) -> ClientConfig:
        return ClientConfig(
            endpoint=device.endpoint(self.identity.imei, self.identity.imsi),
            server_host=device.host,
            server_port=device.port,
            lifetime=lifetime,
            binding=BINDINGS[device.binding_mode],
            object_links=device.object_links(self._builtin_objects()),
            bootstrap=device.bootstrap,
            dtls=device.dtls,
            psk_identity=device.psk_identity or self.identity.imei.encode(),
            psk=device.psk,
            auth_code=device.auth_code,
            platform=device.platform,
            cipher_suites=self.caps.cipher_suites,
            dtls_nat_interval=device.dtls_nat,
            timeout=timeout,
            monitor=device.monitor and device.platform == ONENET,
            user_data=dict(device.user_data),
        )

    def _open_query(self, _inv: Invocation) -> Reply:
        """AT+MIPLOPEN?: OK then +MIPLEVENT: 0,6 when registered, else 602; OneNET only (651)."""
        device = self.device
        if device is None or device.state is not State.REGISTERED:
            return _err(CIS_NOT_REGISTERED)
        if device.platform != ONENET:
            return _err(CIS_NOT_ALLOWED)
        self._urc(f"+MIPLEVENT: {REF},{int(Event.REG_SUCCESS)}")
        return Reply()

    def _open_timed_out(self) -> None:
        self._timers.pop("open", None)
        device = self.device
        if device is None or device.state is not State.OPENING:
            return
        bootstrap_pending = device.bootstrap and self._bootstrapping
        self._end_login(abort=True)
        self._event(Event.BOOTSTRAP_FAILED if bootstrap_pending else Event.REG_FAILED)

    def _update(self, inv: Invocation) -> Reply:
        """AT+MIPLUPDATE=<ref>,<lifetime>,<withObjectFlag>; lifetime < 10 becomes 86400 (§3.7)."""
        device = self._device(inv.number(0))
        if device is None:
            return _err(CIS_RESOURCE)
        if device.state is not State.REGISTERED or self.client is None:
            return _err(CIS_NOT_REGISTERED)
        lifetime = inv.number(1) or 0
        if lifetime < MIN_UPDATE_LIFETIME:
            lifetime = UPDATE_DEFAULT_LIFETIME
        lifetime = min(lifetime, MAX_LIFETIME)
        self._pending_lifetime = lifetime
        self.client.update(lifetime, inv.number(2) == 1, device.object_links(self._builtin_objects()))
        return Reply()

    def _close(self, inv: Invocation) -> Reply:
        """AT+MIPLCLOSE=<ref>: OK, then +MIPLEVENT: 0,15 once de-registered."""
        device = self._device(inv.number(0))
        if device is None:
            return _err(CIS_RESOURCE)
        if device.state is State.CLOSING:
            return _err(CIS_NOT_ALLOWED)
        if device.state is not State.REGISTERED or self.client is None:
            return _err(CIS_NOT_REGISTERED)
        device.state = State.CLOSING
        self.client.close()
        return Reply()

    def _end_login(self, *, abort: bool) -> None:
        """Back to CREATED: drop the client, timers, observations, the cache and the login's
        resource lists (§3.8 note: after MIPLCLOSE the resource lists must be given again)."""
        for name in list(self._timers):
            self._cancel_timer(name)
        client, self.client, self._session = self.client, None, None
        if abort and client is not None:
            client.abort()
        for op in self.queue.all():
            self._fail(op)
        self.queue = OperationQueue()
        self.observations.clear()
        self._notify_parts = []
        self._bootstrapping = False
        if self.device is not None:
            self.device.state = State.CREATED
            self.device.resource_lists.clear()

    def _start_lifetime(self, lifetime: int) -> None:
        self._lifetime = lifetime
        self._registered_at = self.clock.now()
        self._set_timer("lifetime", lifetime, self._lifetime_expired)
        device = self.device
        if device is not None and device.auto_update and lifetime >= AUTO_UPDATE_MIN_LIFETIME:
            self._set_timer("auto_update", lifetime - AUTO_UPDATE_LEAD, self._auto_update)
        else:
            self._cancel_timer("auto_update")

    def _auto_update(self) -> None:
        self._timers.pop("auto_update", None)
        if self.client is not None and self.device is not None and self.device.state is State.REGISTERED:
            self._pending_lifetime = self._lifetime
            self.client.update(None, False, self.device.object_links(self._builtin_objects()))

    def _lifetime_expired(self) -> None:
        self._timers.pop("lifetime", None)
        self.lifetime_expired()

    def _ltrdp(self, _inv: Invocation) -> Reply:
        """AT+MIPLLTRDP: remaining lifetime, 0 when not registered (§4.9, M5310-A only)."""
        remaining = 0
        if self.device is not None and self.device.state is State.REGISTERED:
            remaining = max(0, int(self._lifetime - (self.clock.now() - self._registered_at)))
        return Reply([f"+MIPLLTRDP: {remaining}"])

    # ------------------------------------------------------------------ configuration

    def _cfg(self, inv: Invocation) -> Reply:
        """AT+MIPLCFG="platform",<ref>,<platform>[,<pattern>|<epname>] / "binding",<ref>,<mode>
        (§4.1; the forms and ranges are `_cfg_signatures`). Only before AT+MIPLOPEN (651 after)."""
        item = str(inv.values[0]).lower()
        device = self._device(inv.number(1))
        value = inv.number(2) or 0
        if device is None:
            return _err(CIS_RESOURCE)
        if device.state is not State.CREATED:
            return _err(CIS_NOT_ALLOWED)
        if item == "binding":
            device.binding_mode = value
            return Reply()
        extra = inv.values[3] if len(inv.values) > 3 else None
        pattern = extra if isinstance(extra, int) else 0
        epname = extra if isinstance(extra, str) else None
        device.platform, device.pattern, device.epname = value, pattern, epname
        return Reply()

    def _nmi(self, inv: Invocation) -> Reply:
        """AT+MIPLNMI=<ref>,<nnmi>,<nsmi> (§4.2); `<nsmi>`=1 is refused where the model has no
        send reports (601, `_nsmi_max`)."""
        device = self._device(inv.number(0))
        if device is None:
            return _err(CIS_RESOURCE)
        device.nnmi, device.nsmi = inv.number(1) or 0, inv.number(2) or 0
        return Reply()

    def _nmi_query(self, _inv: Invocation) -> Reply:
        """AT+MIPLNMI? *(choice)*: §4.2 says the command "sets or queries"; no format is given."""
        if self.device is None:
            return _err(CIS_RESOURCE)
        return Reply([f"+MIPLNMI: {REF},{self.device.nnmi},{self.device.nsmi}"])

    def _update_set(self, inv: Invocation) -> Reply:
        """AT+MIPLUPDATESET=<ref>,<enable>: between create and open (§4.5)."""
        device = self._device(inv.number(0))
        if device is None:
            return _err(CIS_RESOURCE)
        if device.state is not State.CREATED:
            return _err(CIS_NOT_ALLOWED)
        device.auto_update = inv.number(1) == 1
        return Reply()

    def _dtls_nat(self, inv: Invocation) -> Reply:
        """AT+MIPLDTLSNAT=<ref>,<timeout>: 0 (off) or at least 60 s (§4.8, in the signature)."""
        device = self._device(inv.number(0))
        if device is None:
            return _err(CIS_RESOURCE)
        device.dtls_nat = inv.number(1) or 0
        return Reply()

    def _devinfo(self, _inv: Invocation) -> Reply:
        """AT+MIPLDEVINFO?: `+MIPLDEVINFO: "<host>:<port>", <flag>[, "<authcode>"[, "<psk>"]]`
        (§4.7 example `+MIPLDEVINFO: "183.230.40.149:5684", 1, "abcd1234"`). An absent authcode
        before a PSK is an empty field, as §5.2 prints it after a bootstrap:
        `+MIPLDEVINFO:"183.230.40.40:5684",0,, "cPYxj0cTs9qMVL72"` (with §2.2's space after the
        colon). After a bootstrap the host is the LwM2M server learned, by its carrier-side
        address (§4.7 note)."""
        device = self.device
        if device is None:
            return _err(CIS_RESOURCE)
        flag = (1 if device.bootstrap else 0) | (0 if device.monitor else 2)
        fields = [f'"{device.host}:{device.port}"', str(flag)]
        if device.auth_code or device.psk_text:
            fields.append(f'"{device.auth_code}"' if device.auth_code else "")
        if device.psk_text:
            fields.append(f'"{device.psk_text}"')
        line = "+MIPLDEVINFO: " + fields[0]
        for value in fields[1:]:
            line += f", {value}" if value else ","
        return Reply([line])

    # ------------------------------------------------------------------ notify

    def _notify(self, inv: Invocation) -> Reply:
        """AT+MIPLNOTIFY (§3.9). Parts with `<flag>` 1 / 2 wait; `<flag>` 0 (or a release flag)
        sends the object instance's parts as one notification on the matching observation."""
        device = self._device(inv.number(0))
        if device is None:
            return _err(CIS_RESOURCE)
        _ref, mid, objid, insid, resid, type_, _len, value, _index, flag, ackid, ctype = inv.values
        assert isinstance(objid, int) and isinstance(insid, int) and isinstance(resid, int)
        assert isinstance(flag, int) and isinstance(type_, int) and isinstance(mid, int)
        release = Release.NONE
        if flag in (RELEASE_AFTER_SEND, RELEASE_AFTER_ACK):
            if self.caps.release_flags is ReleaseFlags.SUPPORTED and not device.dtls:
                release = Release.AFTER_SEND if flag == RELEASE_AFTER_SEND else Release.AFTER_ACK
            flag = FLAG_LAST
        if self.caps.nsmi is NsmiStyle.M5311 and device.nsmi and mid == 0:
            return _err(CIS_SYNTAX)
        at_type = AtType(type_)
        if at_type is AtType.STRING and not inv.line.args[7].quoted:
            return _err(CIS_SYNTAX)
        if flag != FLAG_LAST and ctype is not None and ctype != 3:
            return _err(CIS_SYNTAX)  # only TLV combines several lines (§3.9 footnote 4)
        parsed = parse_value(at_type, str(value))
        if parsed is None:
            return _err(CIS_SYNTAX)
        node_value, rtype = parsed
        if ctype == 2 and not self.caps.content_type_keeps_value and isinstance(node_value, str):
            node_value, rtype = node_value.encode("utf-8"), ResourceType.OPAQUE
        if device.state is not State.REGISTERED or self.client is None:
            self._notify_parts = []
            return _err(CIS_NOT_REGISTERED)
        parts = self._notify_parts
        if parts and flag == 1:
            parts = []
        elif not parts and flag == 2:
            return _err(CIS_SYNTAX)
        if parts and parts[0].object_id != objid:
            self._notify_parts = []
            return _err(CIS_SYNTAX)
        observation = self._observation_for(mid, objid, insid, resid)
        if observation is None:
            self._notify_parts = []
            return _err(CIS_RESOURCE)
        if sum(value_size(p.value) for p in parts) + value_size(node_value) > MAX_PAYLOAD:
            self._notify_parts = []
            return _err(CIS_NOT_ALLOWED)
        part = Part(objid, insid, resid, node_value, rtype)
        self._remember(part, at_type)
        if flag != FLAG_LAST:
            self._notify_parts = [*parts, part]
            return Reply()
        self._notify_parts = []
        notification = Notification(
            observation_id=observation.observation_id,
            path=observation.path,
            node=build_node(observation.path, [*parts, part]),
            confirmable=ackid is not None,
            ackid=ackid,
            content_format=None if ctype is None else int(CONTENT_TYPES[ctype]),
            release=release,
        )
        if not self.client.notify(notification):
            return _err(CIS_UPLINK_BUSY)
        self._nsmi(mid)
        return Reply()

    def _observation_for(self, mid: int, objid: int, insid: int, resid: int) -> Observation | None:
        if mid and mid in self.observations:
            observation = self.observations[mid]
            if covers(observation.path, objid, insid, resid):
                return observation
        matching = [o for o in self.observations.values() if covers(o.path, objid, insid, resid)]
        return max(matching, key=lambda o: o.path.depth, default=None)

    def _remember(self, part: Part, at_type: AtType) -> None:
        key = (part.object_id, part.instance_id, part.resource_id)
        self.values[key] = (part.value, part.type)
        if self.device is not None:
            self.device.declared[key] = at_type

    # ------------------------------------------------------------------ MCU answers

    def _registered_op(self, ref: int | None, mid: int | None, kind: Kind) -> PendingOperation | Reply:
        device = self._device(ref)
        if device is None:
            return _err(CIS_RESOURCE)
        if device.state is not State.REGISTERED:
            return _err(CIS_NOT_REGISTERED)
        op = self.queue.get(mid or 0)
        if op is None or op.kind is not kind:
            return _err(CIS_RESOURCE)
        return op

    def _read_rsp(self, inv: Invocation) -> Reply:
        """AT+MIPLREADRSP=<ref>,<mid>,<result>[,<objid>,<insid>,<resid>,<type>,<len>,<value>,
        <index>,<flag>] (§3.11); the parts of one answer end with `<flag>` 0."""
        op = self._registered_op(inv.number(0), inv.number(1), Kind.READ)
        if isinstance(op, Reply):
            return op
        result = inv.number(2)
        if result != 1:
            self._resolve(op, ReadResult(RESULT_CODES[result]))
            return Reply()
        if any(v is None for v in inv.values[3:]):
            return _err(CIS_SYNTAX)
        _r, _m, _res, objid, insid, resid, type_, _len, value, _index, flag = inv.values
        assert isinstance(objid, int) and isinstance(insid, int) and isinstance(resid, int)
        assert isinstance(flag, int) and isinstance(type_, int)
        if not covers(op.path, objid, insid, resid) or not op.parts.accepts(flag):
            return _err(CIS_SYNTAX)
        at_type = AtType(type_)
        parsed = parse_value(at_type, str(value))
        if parsed is None:
            return _err(CIS_SYNTAX)
        if op.parts.size_with(value_size(parsed[0])) > MAX_PAYLOAD:
            return _err(CIS_NOT_ALLOWED)
        part = Part(objid, insid, resid, parsed[0], parsed[1])
        self._remember(part, at_type)
        op.parts.items.append(part)
        if flag == FLAG_LAST:
            self._resolve(op, ReadResult(CoapCode.CONTENT, build_node(op.path, op.parts.items)))
        return Reply()

    def _write_rsp(self, inv: Invocation) -> Reply:
        return self._change_rsp(inv, Kind.WRITE)

    def _execute_rsp(self, inv: Invocation) -> Reply:
        return self._change_rsp(inv, Kind.EXECUTE)

    def _change_rsp(self, inv: Invocation, kind: Kind) -> Reply:
        """AT+MIPLWRITERSP / AT+MIPLEXECUTERSP=<ref>,<mid>,<result> (§3.13, §3.15)."""
        op = self._registered_op(inv.number(0), inv.number(1), kind)
        if isinstance(op, Reply):
            return op
        result = inv.number(2)
        assert result is not None
        self._resolve(op, RESULT_CODES[result])
        return Reply()

    def _ack_rsp(self, inv: Invocation) -> Reply:
        """AT+MIPLPARAMETERRSP / AT+MIPLOBSERVERSP: the module already answered the platform
        (§3.17, §3.19 notes), so a well-formed answer is accepted and changes nothing."""
        if self._device(inv.number(0)) is None:
            return _err(CIS_RESOURCE)
        return Reply()

    def _resolve(self, op: PendingOperation, outcome: object) -> None:
        self.queue.pop(op.mid)
        if op.timer is not None:
            op.timer.cancel()
        if not op.future.done():
            op.future.set_result(outcome)
        self._nsmi(op.mid)

    def _fail(self, op: PendingOperation) -> None:
        self.queue.pop(op.mid)
        if op.timer is not None:
            op.timer.cancel()
        if not op.future.done():
            op.future.set_result(ReadResult(NO_ANSWER) if op.kind is Kind.READ else NO_ANSWER)

    def _mgr(self, inv: Invocation) -> Reply:
        """AT+MIPLMGR=<ref>: the oldest unanswered cached operation, again until answered (§4.3)."""
        device = self._device(inv.number(0))
        if device is None:
            return _err(CIS_RESOURCE)
        if device.state is not State.REGISTERED:
            return _err(CIS_NOT_REGISTERED)
        op = self.queue.oldest()
        if device.nnmi == 0 or op is None:
            return Reply()
        return Reply(list(op.lines))

    def _qmgr(self, inv: Invocation) -> Reply:
        """AT+MIPLQMGR=<ref>: `+MIPLQMGR: 0,QUEUES=<n>,DROPPED=<n>,BUFFERS=<n>` (§4.4 example)."""
        if self._device(inv.number(0)) is None:
            return _err(CIS_RESOURCE)
        q = self.queue
        return Reply([f"+MIPLQMGR: {REF},QUEUES={len(q)},DROPPED={q.dropped},BUFFERS={q.buffers}"])

    # ------------------------------------------------------------------ RequestHandler

    def _ready(self) -> Device | None:
        device = self.device
        return device if device is not None and device.state is State.REGISTERED else None

    def _builtin(self, path: Path) -> Node | None:
        device = self.device
        if device is None:
            return None
        if path.object_id == DEVICE_OBJECT and DEVICE_OBJECT not in device.objects:
            instance = device_object(
                self.caps.manufacturer,
                self.caps.name,
                self.identity.imei,
                self.identity.revision or self.caps.revision,
                BINDINGS[device.binding_mode] or "U",
            )
        elif (
            path.object_id == FIRMWARE_OBJECT
            and self.fota is not None
            and FIRMWARE_OBJECT not in device.objects
        ):
            instance = self.fota.instance()
        elif path.object_id == MONITOR_OBJECT and device.monitor and device.platform == ONENET:
            n = self.network
            instance = monitor_object(n.cell_id, n.rsrp, n.snr, n.pci, n.earfcn)
        else:
            return None
        return _select(instance, path)

    # ------------------------------------------------------------------ FOTA (object 5)

    def _builtin_objects(self) -> tuple[int, ...]:
        return (FIRMWARE_OBJECT,) if self.fota is not None else ()

    def _is_fota(self, device: Device, path: Path) -> bool:
        return (
            path.object_id == FIRMWARE_OBJECT
            and self.fota is not None
            and FIRMWARE_OBJECT not in device.objects
        )

    def _fota_write(self, path: Path, node: Node) -> CoapCode:
        """Writes of /5/0/0 (push) and /5/0/1 (the package URI), answered by the module."""
        assert self.fota is not None
        if path.instance_id not in (None, 0):
            return CoapCode.NOT_FOUND
        values = list(iter_values(node, path))
        if not values:
            return CoapCode.BAD_REQUEST
        code = CoapCode.CHANGED
        for vpath, value, _rtype in values:
            if vpath.resource_id is None:
                return CoapCode.BAD_REQUEST
            code = self.fota.write(vpath.resource_id, value)
            if not code.is_success:
                return code
        return code

    def _fota_source(self) -> PackageSource | None:
        client = self.client
        return client if client is not None and hasattr(client, "fetch_block") else None  # type: ignore[return-value]

    def _fota_changed(self) -> None:
        """State or Update Result changed: notify the observers of /5, /5/0 and its resources."""
        client, fota = self.client, self.fota
        if client is None or fota is None or self._ready() is None:
            return
        instance = fota.instance()
        for observation_id, path in list(self.builtin_observations.items()):
            if path.object_id != FIRMWARE_OBJECT:
                continue
            node = _select(instance, path)
            if node is not None:
                client.notify(Notification(observation_id, path, node, confirmable=False))

    def _fota_reboot(self, version: str | None, comes_back: bool) -> None:
        """The update's reboot: as a power cycle (the MIPL configuration is lost), on `version`;
        the power-on lines tell the MCU it may log in again. `comes_back` False: it never does."""
        client = self.power_off()
        if client is not None:
            aclose = getattr(client, "aclose", None)
            if aclose is not None:
                asyncio.get_running_loop().create_task(aclose())
        if version:
            self.identity.revision = version
        if not comes_back:
            self.halted = True
            return
        for line in self.caps.power_on_urcs:
            self._urc(line)

    async def _enqueue(self, kind: Kind, path: Path, lines: list[str], data_size: int, mid: int) -> object:
        device = self.device
        assert device is not None
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        cached = device.nnmi in (1, 2) and not (kind is not Kind.READ and data_size > BLOCKWISE_THRESHOLD)
        op = PendingOperation(kind, mid, path, lines, data_size, future)
        if cached:
            if kind is not Kind.READ and self.queue.buffers + data_size > MAX_QUEUED_DATA:
                self.queue.dropped += 1
                return ReadResult(NO_ANSWER) if kind is Kind.READ else NO_ANSWER
            if len(self.queue) >= MAX_QUEUED:
                oldest = self.queue.oldest()
                if oldest is not None:
                    self._fail(oldest)
                    self.queue.dropped += 1
        self.queue.add(op)
        timeout = self.queued_response_timeout if cached else self.response_timeout
        op.timer = self.clock.call_later(timeout, lambda: self._fail(op))
        if not cached:
            for line in lines:
                self._urc(line)
        elif device.nnmi == 1:
            self._urc(f"+MIPLNMI: {REF}")
        return await future

    async def read(self, path: Path) -> ReadResult:
        """+MIPLREAD: <ref>,<mid>,<objid>,<insid>,<resid>, answered by AT+MIPLREADRSP (§3.10)."""
        device = self._ready()
        if device is None or path.object_id is None:
            return ReadResult(CoapCode.NOT_FOUND if device else NO_ANSWER)
        builtin = self._builtin(path)
        if builtin is not None:
            return ReadResult(CoapCode.CONTENT, builtin)
        if not device.has_instance(path.object_id, path.instance_id) or path.is_resource_instance:
            return ReadResult(CoapCode.NOT_FOUND)
        mid = self._next_mid()
        outcome = await self._enqueue(Kind.READ, path, [f"+MIPLREAD: {REF},{mid},{_ids(path)}"], 0, mid)
        assert isinstance(outcome, ReadResult)
        return outcome

    async def write(self, path: Path, node: Node, replace: bool) -> CoapCode:
        """+MIPLWRITE: <ref>,<mid>,<objid>,<insid>,<resid>,<type>,<len>,<value>,<flag>, one line per
        resource (flag 1 first, 2 middle, 0 last), answered by AT+MIPLWRITERSP (§3.12)."""
        device = self._ready()
        if device is None or path.object_id is None:
            return CoapCode.NOT_FOUND if device else NO_ANSWER
        if self._is_fota(device, path):
            return self._fota_write(path, node)
        if not device.has_instance(path.object_id, path.instance_id):
            return CoapCode.NOT_FOUND
        values = list(iter_values(node, path))
        if not values:
            return CoapCode.BAD_REQUEST
        mid = self._next_mid()
        lines: list[str] = []
        undeclared = UNDECLARED_OPAQUE_TYPE.get(device.platform, DEFAULT_UNDECLARED_TYPE)
        for n, (vpath, value, rtype) in enumerate(values):
            o, i, r = vpath.ids[:3]
            at_type, text = format_for_write(value, device.declared.get((o, i, r)), rtype, undeclared)
            flag = 0 if n == len(values) - 1 else (1 if n == 0 else 2)
            lines.append(f"+MIPLWRITE: {REF},{mid},{o},{i},{r},{int(at_type)},{len(text)},{text},{flag}")
        size = sum(value_size(v) for _p, v, _t in values)
        if path in AUTO_ACK_WRITES.get(device.platform, frozenset()):
            for line in lines:
                self._urc(line)
            return CoapCode.CHANGED
        outcome = await self._enqueue(Kind.WRITE, path, lines, size, mid)
        assert isinstance(outcome, CoapCode)
        return outcome

    async def execute(self, path: Path, arguments: str) -> CoapCode:
        """+MIPLEXECUTE: <ref>,<mid>,<objid>,<insid>,<resid>[,<len>,"<cmd>"] (§3.14)."""
        device = self._ready()
        if device is None or not path.is_resource:
            return CoapCode.METHOD_NOT_ALLOWED if device else NO_ANSWER
        assert path.object_id is not None
        if self._is_fota(device, path):
            assert self.fota is not None and path.resource_id is not None
            return self.fota.execute(path.resource_id) if path.instance_id == 0 else CoapCode.NOT_FOUND
        if not device.has_instance(path.object_id, path.instance_id):
            return CoapCode.NOT_FOUND
        mid = self._next_mid()
        line = f"+MIPLEXECUTE: {REF},{mid},{_ids(path)}"
        if arguments:
            line += f',{len(arguments)},"{arguments}"'
        outcome = await self._enqueue(Kind.EXECUTE, path, [line], len(arguments.encode()), mid)
        assert isinstance(outcome, CoapCode)
        return outcome

    async def write_attributes(self, path: Path, attributes: Mapping[str, str | None]) -> CoapCode:
        """+MIPLPARAMETER: <ref>,<mid>,<objid>,<insid>,<resid>,<len>,"<para>"; the module answers
        the platform itself (§3.16 note), after checking the note's rules. `<para>` lists the
        attributes in the order and spelling the server sent (LwM2M 1.0 `stp`, 1.1 `st`)."""
        device = self._ready()
        if device is None or path.object_id is None:
            return NO_ANSWER
        if not device.has_instance(path.object_id, path.instance_id):
            return CoapCode.NOT_FOUND
        given = {k: v for k, v in attributes.items() if v is not None}
        if not _valid_attributes(path, given):
            return CoapCode.BAD_REQUEST
        para = ";".join(f"{k}={v}" for k, v in given.items())
        self.attributes.setdefault(path, {}).update(given)
        for key, value in attributes.items():
            if value is None:
                self.attributes[path].pop(key, None)
        self._urc(f'+MIPLPARAMETER: {REF},{self._next_mid()},{_ids(path)},{len(para)},"{para}"')
        return CoapCode.CHANGED

    async def discover(self, path: Path) -> DiscoverResult:
        """+MIPLDISCOVER: <ref>,<mid>,<objid> (manual §5.1); answered from AT+MIPLDISCOVERRSP's list
        and the resources the MCU has notified or read."""
        device = self._ready()
        if device is None or path.object_id is None:
            return DiscoverResult(NO_ANSWER)
        objid = path.object_id
        if not device.has_instance(objid, path.instance_id):
            return DiscoverResult(CoapCode.NOT_FOUND)
        self._urc(f"+MIPLDISCOVER: {REF},{self._next_mid()},{objid}")
        entry = device.objects[objid]
        links: list[tuple[Path, dict[str, str]]] = []
        if path.is_object:
            links.append((path, dict(self.attributes.get(path, {}))))
        instances = entry.instances if path.instance_id is None else (path.instance_id,)
        listed = device.resource_lists.get(objid, ())
        for iid in instances:
            ipath = Path(objid, iid)
            if path.is_object:
                links.append((ipath, dict(self.attributes.get(ipath, {}))))
            known = set(listed) | {r for (o, i, r) in self.values if o == objid and i == iid}
            for rid in sorted(known):
                rpath = Path(objid, iid, rid)
                if path.is_resource and rpath != path:
                    continue
                links.append((rpath, dict(self.attributes.get(rpath, {}))))
        return DiscoverResult(CoapCode.CONTENT, links)

    async def observe(self, path: Path, observation_id: int) -> ReadResult:
        """+MIPLOBSERVE: <ref>,<mid>,1,<objid>,<insid>,<resid>, answered by the module (§3.18) with
        the values the MCU last gave."""
        device = self._ready()
        if device is None or path.object_id is None:
            return ReadResult(NO_ANSWER)
        builtin = self._builtin(path)
        if builtin is not None:
            self.builtin_observations[observation_id] = path
            return ReadResult(CoapCode.CONTENT, builtin)
        if not device.has_instance(path.object_id, path.instance_id):
            return ReadResult(CoapCode.NOT_FOUND)
        for mid in [m for m, o in self.observations.items() if o.path == path]:
            del self.observations[mid]
        mid = self._next_mid()
        self.observations[mid] = Observation(mid, observation_id, path)
        self._urc(f"+MIPLOBSERVE: {REF},{mid},1,{_ids(path)}")
        return ReadResult(CoapCode.CONTENT, self._cached_node(path))

    def _cached_node(self, path: Path) -> Node:
        parts = [Part(o, i, r, v, t) for (o, i, r), (v, t) in self.values.items() if covers(path, o, i, r)]
        if path.is_resource and not parts:
            return SingleResource(path.resource_id or 0, "", ResourceType.STRING)
        return build_node(path, parts)

    async def cancel_observation(self, path: Path, observation_id: int) -> CoapCode:
        """+MIPLOBSERVE: <ref>,<mid>,0,<objid>,<insid>,<resid> (§3.18)."""
        if self.builtin_observations.pop(observation_id, None) is not None:
            return CoapCode.CONTENT
        found = [m for m, o in self.observations.items() if o.observation_id == observation_id]
        if not found or self._ready() is None:
            return CoapCode.NOT_FOUND
        for mid in found:
            del self.observations[mid]
        self._urc(f"+MIPLOBSERVE: {REF},{self._next_mid()},0,{_ids(path)}")
        return CoapCode.CONTENT

    async def create(self, path: Path, node: Node) -> tuple[CoapCode, int | None]:
        """The MIPL interface has no Create: 4.05."""
        return CoapCode.METHOD_NOT_ALLOWED, None

    async def delete(self, path: Path) -> CoapCode:
        """The MIPL interface has no Delete: 4.05."""
        return CoapCode.METHOD_NOT_ALLOWED

    # ------------------------------------------------------------------ ClientEvents

    def bootstrap_started(self) -> None:
        self._bootstrapping = True
        self._event(Event.BOOTSTRAP_START)

    def bootstrap_succeeded(self, server_host: str, server_port: int, psk: bytes | None) -> None:
        self._bootstrapping = False
        if self.device is not None:
            self.device.host, self.device.port, self.device.bootstrap = server_host, server_port, False
            if psk is not None:
                self.device.psk = psk
                self.device.psk_text = psk.decode("utf-8", errors="replace")
        self._event(Event.BOOTSTRAP_SUCCESS)

    def bootstrap_failed(self) -> None:
        self._end_login(abort=True)
        self._event(Event.BOOTSTRAP_FAILED)

    def connect_succeeded(self) -> None:
        self._event(Event.CONNECT_SUCCESS)

    def connect_failed(self) -> None:
        """Terminal: shown as 5 where reported, then 7."""
        self._end_login(abort=True)
        self._event(Event.CONNECT_FAILED)
        self._event(Event.REG_FAILED)

    def register_succeeded(self) -> None:
        if self.device is None or self.device.state is not State.OPENING:
            return
        self._cancel_timer("open")
        self.device.state = State.REGISTERED
        self.queue.clear_stats()
        self._start_lifetime(self._lifetime)
        self._event(Event.REG_SUCCESS)

    def register_failed(self) -> None:
        self._end_login(abort=True)
        self._event(Event.REG_FAILED)

    def register_timeout(self) -> None:
        self._end_login(abort=True)
        self._event(Event.REG_TIMEOUT)

    def update_succeeded(self) -> None:
        if self.device is None or self.device.state is not State.REGISTERED:
            return
        self._start_lifetime(self._pending_lifetime or self._lifetime)
        self._event(Event.UPDATE_SUCCESS)

    def update_failed(self) -> None:
        self._event(Event.UPDATE_FAILED)

    def update_timeout(self) -> None:
        self._event(Event.UPDATE_TIMEOUT)

    def lifetime_expired(self) -> None:
        """The registration is gone (the lifetime ran out, or the server forgot it)."""
        if self.device is not None and self.device.state is State.REGISTERED:
            self._end_login(abort=True)
            self._event(Event.LIFETIME_TIMEOUT)

    def deregistered(self) -> None:
        self._end_login(abort=False)
        self._event(Event.UNREG_DONE)

    def deregister_failed(self) -> None:
        if self.device is not None and self.device.state is State.CLOSING:
            self.device.state = State.REGISTERED
        self._event(Event.UNREG_FAILED)

    def notify_acked(self, ackid: int | None) -> None:
        if ackid is not None:
            self._event(Event.NOTIFY_SUCCESS, ackid)

    def notify_failed(self, ackid: int | None) -> None:
        self._event(Event.NOTIFY_FAILED, ackid)

    def device_deleted(self) -> None:
        self._end_login(abort=True)
        self._event(Event.DEVICE_DELETED)

    def dtls_ip_aged(self) -> None:
        self._event(Event.DTLS_IP_AGED)

    def oversized_packet_dropped(self) -> None:
        self._event(Event.PACKET_TOO_LONG)


def _select(instance: ObjectInstance, path: Path) -> Node | None:
    if path.is_object:
        return LwM2MObject(path.object_id or 0, {0: instance})
    if path.instance_id != 0:
        return None
    if path.is_instance:
        return instance
    if path.is_resource:
        return instance.resources.get(path.resource_id or 0)
    return None


def _valid_attributes(path: Path, given: Mapping[str, str]) -> bool:
    """§3.16 notes: pmax > pmin when both are given; lt < gt and lt + 2*st < gt; gt / lt / st only
    on a resource."""
    try:
        numbers = {
            ("st" if k == "stp" else k): float(v)
            for k, v in given.items()
            if k in ("pmin", "pmax", "gt", "lt", "st", "stp")
        }
    except ValueError:
        return False
    if "pmin" in numbers and "pmax" in numbers and not numbers["pmax"] > numbers["pmin"]:
        return False
    if any(k in numbers for k in ("gt", "lt", "st")) and not path.is_resource:
        return False
    if "lt" in numbers and "gt" in numbers:
        if not numbers["lt"] < numbers["gt"]:
            return False
        if numbers["lt"] + 2 * numbers.get("st", 0.0) >= numbers["gt"]:
            return False
    return True
