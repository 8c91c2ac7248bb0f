"""Login commands (manual §3.6 - §3.8, §4.9): AT+MIPLOPEN, AT+MIPLUPDATE, AT+MIPLCLOSE,
AT+MIPLLTRDP, and the login's life: the open window, the lifetime timer and the auto update of
AT+MIPLUPDATESET.

AT+MIPLOPEN builds a fresh client for the login (`ClientFactory`) with a fresh `Session` as its
owner; the end of a login (close, failure, delete, timeout) drops both, so a late callback of the
old client changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from emulator.at.params import IntParam, sig
from emulator.at.results import CIS_NOT_ALLOWED, CIS_NOT_REGISTERED, CIS_RESOURCE, Reply
from emulator.at.table import CommandSpec, Invocation
from emulator.module.builtin import BuiltinObjects
from emulator.module.core import REF_PARAM, ModuleCore, err
from emulator.module.correlation import PendingRequests
from emulator.module.device import BINDINGS, ONENET, REF, Device, State
from emulator.module.events import Event
from emulator.module.ports import ClientConfig, ClientOwner

DEFAULT_OPEN_TIMEOUT: Final = 30
UPDATE_DEFAULT_LIFETIME: Final = 86400
MIN_UPDATE_LIFETIME: Final = 10
AUTO_UPDATE_MIN_LIFETIME: Final = 60
AUTO_UPDATE_LEAD: Final = 30
MAX_LIFETIME: Final = 0x0FFFFFFF
MIN_LIFETIME: Final = 15


class Login:
    """The login commands and the timers of a login, over the shared state."""

    def __init__(
        self,
        core: ModuleCore,
        pending: PendingRequests,
        builtin: BuiltinObjects,
        new_session: Callable[[], ClientOwner],
    ) -> None:
        self._core = core
        self._pending = pending
        self._builtin = builtin
        self._new_session = new_session

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                "+MIPLOPEN",
                set=self._open,
                read=self._open_query,
                signature=sig(
                    REF_PARAM,
                    IntParam("lifetime", MIN_LIFETIME, MAX_LIFETIME),
                    IntParam("timeout", 1, 65535),
                    required=2,
                ),
            ),
            CommandSpec(
                "+MIPLUPDATE",
                set=self._update,
                signature=sig(
                    REF_PARAM, IntParam("lifetime", 0, 2**31 - 1), IntParam("withObjectFlag", 0, 1)
                ),
            ),
            CommandSpec("+MIPLCLOSE", set=self._close, signature=sig(REF_PARAM)),
            CommandSpec("+MIPLLTRDP", execute=self._ltrdp),
        ]

    def _open(self, inv: Invocation) -> Reply:
        """AT+MIPLOPEN=<ref>,<lifetime>[,<timeout>]: OK, then +MIPLEVENT 6 / 7 (3 when the
        bootstrap does not finish) within `<timeout>` seconds (default 30)."""
        core = self._core
        device = core.device_at(inv.number(0))
        if device is None:
            return err(CIS_RESOURCE)
        lifetime = inv.number(1) or 0
        timeout = inv.number(2, DEFAULT_OPEN_TIMEOUT) or DEFAULT_OPEN_TIMEOUT
        if device.state is not State.CREATED:
            return err(CIS_NOT_ALLOWED)
        if device.dtls and device.platform not in core.caps.dtls_platforms:
            return err(CIS_NOT_ALLOWED)
        device.state = State.OPENING
        core.lifetime = lifetime
        core.bootstrapping = False
        core.set_timer("open", timeout, self._open_timed_out)
        config = self._client_config(device, lifetime, timeout)
        if core.client_factory is not None and core.network.attached:
            session = self._new_session()
            core.session = session
            core.client = core.client_factory(session)
            core.client.open(config)
        return Reply()

    def _client_config(self, device: Device, lifetime: int, timeout: int) -> ClientConfig:
        core = self._core
        return ClientConfig(
            endpoint=device.endpoint(core.identity.imei, core.identity.imsi),
            server_host=device.host,
            server_port=device.port,
            lifetime=lifetime,
            binding=BINDINGS[device.binding_mode],
            object_links=device.object_links(self._builtin.object_ids()),
            bootstrap=device.bootstrap,
            dtls=device.dtls,
            psk_identity=device.psk_identity or core.identity.imei.encode(),
            psk=device.psk,
            auth_code=device.auth_code,
            platform=device.platform,
            cipher_suites=core.caps.cipher_suites,
            dtls_nat_interval=device.dtls_nat,
            timeout=timeout,
            monitor=device.monitor and device.platform == ONENET,
            user_data=dict(device.user_data),
        )

    def _open_query(self, _inv: Invocation) -> Reply:
        """AT+MIPLOPEN?: OK then +MIPLEVENT: 0,6 when registered, else 602; OneNET only (651)."""
        device = self._core.device
        if device is None or device.state is not State.REGISTERED:
            return err(CIS_NOT_REGISTERED)
        if device.platform != ONENET:
            return err(CIS_NOT_ALLOWED)
        self._core.urc(f"+MIPLEVENT: {REF},{int(Event.REG_SUCCESS)}")
        return Reply()

    def _open_timed_out(self) -> None:
        core = self._core
        core.timers.pop("open", None)
        device = core.device
        if device is None or device.state is not State.OPENING:
            return
        bootstrap_pending = device.bootstrap and core.bootstrapping
        self.end(abort=True)
        core.show_event(Event.BOOTSTRAP_FAILED if bootstrap_pending else Event.REG_FAILED)

    def _update(self, inv: Invocation) -> Reply:
        """AT+MIPLUPDATE=<ref>,<lifetime>,<withObjectFlag>; lifetime < 10 becomes 86400 (§3.7)."""
        core = self._core
        device = core.device_at(inv.number(0))
        if device is None:
            return err(CIS_RESOURCE)
        if device.state is not State.REGISTERED or core.client is None:
            return err(CIS_NOT_REGISTERED)
        lifetime = inv.number(1) or 0
        if lifetime < MIN_UPDATE_LIFETIME:
            lifetime = UPDATE_DEFAULT_LIFETIME
        lifetime = min(lifetime, MAX_LIFETIME)
        core.pending_lifetime = lifetime
        core.client.update(lifetime, inv.number(2) == 1, device.object_links(self._builtin.object_ids()))
        return Reply()

    def _close(self, inv: Invocation) -> Reply:
        """AT+MIPLCLOSE=<ref>: OK, then +MIPLEVENT: 0,15 once de-registered."""
        core = self._core
        device = core.device_at(inv.number(0))
        if device is None:
            return err(CIS_RESOURCE)
        if device.state is State.CLOSING:
            return err(CIS_NOT_ALLOWED)
        if device.state is not State.REGISTERED or core.client is None:
            return err(CIS_NOT_REGISTERED)
        device.state = State.CLOSING
        core.client.close()
        return Reply()

    def _ltrdp(self, _inv: Invocation) -> Reply:
        """AT+MIPLLTRDP: remaining lifetime, 0 when not registered (§4.9, M5310-A only)."""
        core = self._core
        remaining = 0
        if core.device is not None and core.device.state is State.REGISTERED:
            remaining = max(0, int(core.lifetime - (core.clock.now() - core.registered_at)))
        return Reply([f"+MIPLLTRDP: {remaining}"])

    def end(self, *, abort: bool) -> None:
        """Back to CREATED: drop the client, timers, observations, the cache and the login's
        resource lists (§3.8 note: after MIPLCLOSE the resource lists must be given again)."""
        core = self._core
        for name in list(core.timers):
            core.cancel_timer(name)
        client, core.client, core.session = core.client, None, None
        if abort and client is not None:
            client.abort()
        self._pending.fail_all()
        core.observations.clear()
        core.notify_parts = []
        core.bootstrapping = False
        if core.device is not None:
            core.device.state = State.CREATED
            core.device.resource_lists.clear()

    def start_lifetime(self, lifetime: int) -> None:
        core = self._core
        core.lifetime = lifetime
        core.registered_at = core.clock.now()
        core.set_timer("lifetime", lifetime, self._lifetime_timer)
        device = core.device
        if device is not None and device.auto_update and lifetime >= AUTO_UPDATE_MIN_LIFETIME:
            core.set_timer("auto_update", lifetime - AUTO_UPDATE_LEAD, self._auto_update)
        else:
            core.cancel_timer("auto_update")

    def _auto_update(self) -> None:
        core = self._core
        core.timers.pop("auto_update", None)
        if core.client is not None and core.device is not None and core.device.state is State.REGISTERED:
            core.pending_lifetime = core.lifetime
            core.client.update(None, False, core.device.object_links(self._builtin.object_ids()))

    def _lifetime_timer(self) -> None:
        self._core.timers.pop("lifetime", None)
        self.expire()

    def expire(self) -> None:
        """The registration is gone (the lifetime ran out, or the server forgot it)."""
        core = self._core
        if core.device is not None and core.device.state is State.REGISTERED:
            self.end(abort=True)
            core.show_event(Event.LIFETIME_TIMEOUT)

    def on_attach_change(self) -> None:
        """CFUN=0 / CGATT=0 while logging in drops the client, so the login times out (+MIPLEVENT 7
        or 3). *(choice)* A registered module keeps its state: the radio being off shows when the
        lifetime runs out, as on a real module."""
        core = self._core
        device = core.device
        if core.network.attached or device is None or device.state is not State.OPENING:
            return
        client, core.client, core.session = core.client, None, None
        if client is not None:
            client.abort()
