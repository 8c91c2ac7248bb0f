"""Basic modem commands (V.250 and 3GPP TS 27.007): identity and network state.

ATI, AT+CGMI, AT+CGMM, AT+CGMR, AT+CGSN, AT+CIMI, AT+ICCID / AT+CCID, AT+CSQ, AT+CEREG, AT+CGATT,
AT+CFUN, AT+CPIN?, AT+CCLK?. (AT, ATE and AT+CMEE belong to the AT engine.) The identity is
configurable per module; the network state is a plain object tests and front-ends change
(`module.network`). The module reads `network.attached` before it lets a login start. Test forms
(`AT+CFUN=?` -> `+CFUN: (0,1,4),(0,1)`) come from the signatures, as for the MIPL commands;
AT+CSQ=? keeps 27.007's own answer (the ranges of the response, the command has no parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from emulator.at.params import IntParam, one_of, sig
from emulator.at.results import CME_OPERATION_NOT_ALLOWED, CME_SIM_NOT_INSERTED, CmeError, Reply
from emulator.at.table import CommandSpec, Invocation
from emulator.module.models import ModelCapabilities

DEFAULT_IMEI = "869975030000461"
DEFAULT_IMSI = "460041064826326"
DEFAULT_ICCID = "89860400000000000001"


@dataclass(slots=True)
class Identity:
    imei: str = DEFAULT_IMEI
    imsi: str = DEFAULT_IMSI
    iccid: str = DEFAULT_ICCID
    # The firmware revision AT+CGMR and ATI show; empty = the model's factory revision. A
    # firmware update over the air (object 5) changes it.
    revision: str = ""


@dataclass(slots=True)
class NetworkState:
    sim_ready: bool = True
    cfun: int = 1
    attached: bool = True
    # +CEREG <stat>: 1 registered home, 2 searching, 0 not registered, 5 roaming.
    reg_stat: int = 1
    cereg_mode: int = 0
    rssi: int = 25
    ber: int = 99
    # Cell data for OneNET's monitor object (/10290/0).
    cell_id: int = 0x0F1B2C3
    pci: int = 120
    earfcn: int = 2506
    rsrp: int = -85
    snr: int = 12
    # +CCLK time zone in quarter hours (China: +32).
    timezone_quarters: int = 32


def basic_commands(
    caps: ModelCapabilities,
    identity: Identity,
    network: NetworkState,
    wall_clock: Callable[[], datetime],
    on_attach_change: Callable[[], None],
) -> list[CommandSpec]:
    def info(*lines: str) -> Callable[[Invocation], Reply]:
        return lambda _inv: Reply(list(lines))

    def revision() -> str:
        return identity.revision or caps.revision

    def need_sim(reply: Callable[[Invocation], Reply]) -> Callable[[Invocation], Reply]:
        def guarded(inv: Invocation) -> Reply:
            if not network.sim_ready:
                return Reply(result=CmeError(CME_SIM_NOT_INSERTED))
            return reply(inv)

        return guarded

    def cgsn_set(inv: Invocation) -> Reply:
        snt = inv.number(0, 1)
        if snt == 1:
            return Reply([f'+CGSN: "{identity.imei}"'])
        return Reply([identity.imei])

    def cereg_read(_inv: Invocation) -> Reply:
        return Reply([f"+CEREG: {network.cereg_mode},{network.reg_stat if network.attached else 0}"])

    def cereg_set(inv: Invocation) -> Reply:
        network.cereg_mode = inv.number(0, 0) or 0
        return Reply()

    def cgatt_set(inv: Invocation) -> Reply:
        if network.cfun != 1 and inv.number(0) == 1:
            return Reply(result=CmeError(CME_OPERATION_NOT_ALLOWED))
        network.attached = inv.number(0) == 1
        on_attach_change()
        return Reply()

    def cfun_set(inv: Invocation) -> Reply:
        network.cfun = inv.number(0, 1) or 0
        network.attached = network.cfun == 1
        on_attach_change()
        return Reply()

    def csq(_inv: Invocation) -> Reply:
        if not network.attached:
            return Reply(["+CSQ: 99,99"])
        return Reply([f"+CSQ: {network.rssi},{network.ber}"])

    def cclk(_inv: Invocation) -> Reply:
        quarters = network.timezone_quarters
        local = wall_clock() + timedelta(minutes=15 * quarters)
        return Reply([f'+CCLK: "{local:%y/%m/%d,%H:%M:%S}{quarters:+03d}"'])

    return [
        CommandSpec(
            "I",
            execute=lambda _inv: Reply([caps.manufacturer, caps.name, f"Revision: {revision()}"]),
            errors="plain",
        ),
        CommandSpec("+CGMI", execute=info(caps.manufacturer), errors="cme"),
        CommandSpec("+CGMM", execute=info(caps.name), errors="cme"),
        CommandSpec("+CGMR", execute=lambda _inv: Reply([revision()]), errors="cme"),
        CommandSpec(
            "+CGSN",
            execute=info(identity.imei),
            set=cgsn_set,
            signature=sig(IntParam("snt", 0, 1)),
            errors="cme",
        ),
        CommandSpec("+CIMI", execute=need_sim(info(identity.imsi)), errors="cme"),
        CommandSpec("+ICCID", execute=need_sim(info(f"+ICCID: {identity.iccid}")), errors="cme"),
        CommandSpec("+CCID", execute=need_sim(info(f"+CCID: {identity.iccid}")), errors="cme"),
        CommandSpec("+CSQ", execute=csq, test=info("+CSQ: (0-31,99),(0-7,99)"), errors="cme"),
        CommandSpec(
            "+CEREG",
            read=cereg_read,
            set=cereg_set,
            signature=sig(IntParam("n", 0, 5)),
            errors="cme",
        ),
        CommandSpec(
            "+CGATT",
            read=lambda _inv: Reply([f"+CGATT: {int(network.attached)}"]),
            set=cgatt_set,
            signature=sig(IntParam("state", 0, 1)),
            errors="cme",
        ),
        CommandSpec(
            "+CFUN",
            read=lambda _inv: Reply([f"+CFUN: {network.cfun}"]),
            set=cfun_set,
            signature=sig(one_of("fun", {0, 1, 4}), IntParam("rst", 0, 1), required=1),
            errors="cme",
        ),
        CommandSpec(
            "+CPIN",
            read=lambda _inv: (
                Reply(["+CPIN: READY"]) if network.sim_ready else Reply(result=CmeError(CME_SIM_NOT_INSERTED))
            ),
            errors="cme",
        ),
        CommandSpec("+CCLK", read=cclk, errors="cme"),
    ]


def default_wall_start() -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC)
