"""Configuration commands (manual §4.1, §4.2, §4.5, §4.7, §4.8): AT+MIPLCFG, AT+MIPLNMI,
AT+MIPLUPDATESET, AT+MIPLDEVINFO?, AT+MIPLDTLSNAT. What the model allows comes from its row of
the capability table (emulator.module.models).
"""

from __future__ import annotations

from typing import Final

from emulator.at.params import IntParam, Signature, StrParam, one_of, sig
from emulator.at.results import CIS_NOT_ALLOWED, CIS_RESOURCE, Reply
from emulator.at.table import CommandSpec, Invocation
from emulator.module.core import REF_PARAM, ModuleCore, err
from emulator.module.device import BINDINGS, CUSTOM, REF, State
from emulator.module.models import NsmiStyle

MIN_DTLS_NAT: Final = 60


class ConfigCommands:
    """The configuration of the device instance, before (or, for some, after) AT+MIPLOPEN."""

    def __init__(self, core: ModuleCore) -> None:
        self._core = core

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec("+MIPLCFG", set=self._cfg, signature=self._cfg_signatures()),
            CommandSpec(
                "+MIPLNMI",
                set=self._nmi,
                read=self._nmi_query,
                signature=sig(REF_PARAM, IntParam("nnmi", 0, 2), IntParam("nsmi", 0, self._nsmi_max())),
            ),
            CommandSpec(
                "+MIPLUPDATESET", set=self._update_set, signature=sig(REF_PARAM, IntParam("enable", 0, 1))
            ),
            CommandSpec("+MIPLDEVINFO", read=self._devinfo),
            CommandSpec(
                "+MIPLDTLSNAT",
                set=self._dtls_nat,
                signature=sig(REF_PARAM, IntParam("timeout", spans=((0, 0), (MIN_DTLS_NAT, 2**31 - 1)))),
            ),
        ]

    def _nsmi_max(self) -> int:
        """AT+MIPLNMI `<nsmi>` 1 only where the model has send reports (§4.2 note)."""
        return 0 if self._core.caps.nsmi is NsmiStyle.UNSUPPORTED else 1

    def _cfg_signatures(self) -> tuple[Signature, ...]:
        """The three set forms of AT+MIPLCFG (§4.1 syntax table): "platform" with `<pattern>` 0-4,
        "platform" 10 with `<epname>`, "binding" with `<binding_mode>`; `<platform>` as the model
        has it (§4.1 footnote 7)."""
        caps = self._core.caps
        platform, binding = StrParam("item", choices=("platform",)), StrParam("item", choices=("binding",))
        forms = [
            sig(
                platform,
                REF_PARAM,
                one_of("platform", caps.platforms - {CUSTOM}),
                IntParam("pattern", 0, 4),
                required=3,
            ),
            sig(binding, REF_PARAM, one_of("binding_mode", BINDINGS)),
        ]
        if CUSTOM in caps.platforms:
            forms.insert(
                1, sig(platform, REF_PARAM, one_of("platform", {CUSTOM}), StrParam("epname", 128), required=3)
            )
        return tuple(forms)

    def _cfg(self, inv: Invocation) -> Reply:
        """AT+MIPLCFG="platform",<ref>,<platform>[,<pattern>|<epname>] / "binding",<ref>,<mode>
        (§4.1; the forms and ranges are `_cfg_signatures`). Only before AT+MIPLOPEN (651 after)."""
        item = str(inv.values[0]).lower()
        device = self._core.device_at(inv.number(1))
        value = inv.number(2) or 0
        if device is None:
            return err(CIS_RESOURCE)
        if device.state is not State.CREATED:
            return err(CIS_NOT_ALLOWED)
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
        device = self._core.device_at(inv.number(0))
        if device is None:
            return err(CIS_RESOURCE)
        device.nnmi, device.nsmi = inv.number(1) or 0, inv.number(2) or 0
        return Reply()

    def _nmi_query(self, _inv: Invocation) -> Reply:
        """AT+MIPLNMI? *(choice)*: §4.2 says the command "sets or queries"; no format is given."""
        device = self._core.device
        if device is None:
            return err(CIS_RESOURCE)
        return Reply([f"+MIPLNMI: {REF},{device.nnmi},{device.nsmi}"])

    def _update_set(self, inv: Invocation) -> Reply:
        """AT+MIPLUPDATESET=<ref>,<enable>: between create and open (§4.5)."""
        device = self._core.device_at(inv.number(0))
        if device is None:
            return err(CIS_RESOURCE)
        if device.state is not State.CREATED:
            return err(CIS_NOT_ALLOWED)
        device.auto_update = inv.number(1) == 1
        return Reply()

    def _dtls_nat(self, inv: Invocation) -> Reply:
        """AT+MIPLDTLSNAT=<ref>,<timeout>: 0 (off) or at least 60 s (§4.8, in the signature)."""
        device = self._core.device_at(inv.number(0))
        if device is None:
            return err(CIS_RESOURCE)
        device.dtls_nat = inv.number(1) or 0
        return Reply()

    def _devinfo(self, _inv: Invocation) -> Reply:
        """AT+MIPLDEVINFO?: `+MIPLDEVINFO: "<host>:<port>", <flag>[, "<authcode>"[, "<psk>"]]`
        (§4.7 example `+MIPLDEVINFO: "183.230.40.149:5684", 1, "abcd1234"`). An absent authcode
        before a PSK is an empty field, as §5.2 prints it after a bootstrap:
        `+MIPLDEVINFO:"183.230.40.40:5684",0,, "cPYxj0cTs9qMVL72"` (with §2.2's space after the
        colon). After a bootstrap the host is the LwM2M server learned, by its carrier-side
        address (§4.7 note)."""
        device = self._core.device
        if device is None:
            return err(CIS_RESOURCE)
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
