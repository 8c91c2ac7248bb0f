"""The device directory: who a registering client is, which product owns it, and which keys it
holds — one home for a device's identity, asked by every door (plain CoAP, DTLS, bootstrap, REST,
the AT bridge).

A device row (`server.services.provisioning.Device`) carries the whole identity: product, carrier,
IMEI / IMSI, the endpoint name its registrations are kept under, the DTLS identity and its keys
(`Device.attributes`: "psk" — the bootstrap PSK at OneNET, the device PSK elsewhere —,
"access_psk" — OneNET's LwM2M-server PSK issued by a bootstrap or `accpsk` —, "psk_identity",
"psk_encoding"). The attributes are the only store of keys; this module is their only writer
(`set_key`, `remove_keys`, and `set_endpoint_psk` for the Python API) and keeps the in-memory
index that every DTLS handshake (`psk_for`) and every registration (`admit_register`,
`check_update`, `admit_bootstrap`) reads: no database query on those paths.

The rules (each has its own test):

1. **A registration belongs to exactly one device row**, chosen by the listener it arrived on
   (its carrier profile), the endpoint name (parsed only by that profile) and, over DTLS, the
   identity. The registration is kept under that row's endpoint name; the REST API, events,
   push, datapoints and the AT bridge reach a registration only through its row, never by a bare
   IMEI string.
2. **An IMEI may be provisioned in several products only if their carriers differ**, and each
   product then sees only the registrations arriving through its own carrier's listener. When two
   carriers use the same endpoint name (CTWing, Yanfei and Huawei all use the bare IMEI), the
   device bound later is kept under `<name>@<carrier>`; neither can reach the other.
3. **An endpoint with a key, or of a carrier that requires security, may not register, update,
   send or bootstrap in plaintext**: 4.03, nothing stored, a `registration.refused` /
   `bootstrap.refused` event says why. A DTLS registration is never moved to plaintext.
4. **Any registered endpoint has a stable device id** (an anonymous row, created with the
   registration, for an endpoint of the open listener) **and can be given a PSK**, IMEI-named or
   not.
5. **Creating a device for an endpoint that registered anonymously adopts that row** (same id,
   same data); a provisioned custom device that registers is bound, never duplicated.
6. On the open (custom) listener, a name that belongs to a device of another carrier is refused
   (4.03): that device registers through its own carrier's listener.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from lwm2m.numbers import CoapCode
from server.carriers.base import (
    ATTR_ACCESS_PSK,
    ATTR_ACCESS_PSK_AT,
    ATTR_PSK,
    ATTR_PSK_ENCODING,
    ATTR_PSK_IDENTITY,
    CarrierProfile,
    Refusal,
    psk_identity_of,
)
from server.carriers.custom import CustomProfile
from server.carriers.policy import ROLE_BOOTSTRAP, CarrierPolicy
from server.domain import Registration
from server.services.errors import BadArgument
from server.services.provisioning import Device, Provisioning
from server.services.registration import Verdict
from server.services.requests import BootstrapRequest, RegisterRequest, UpdateRequest
from server.services.security import PskEncoding, check_identity, decode_key

log = logging.getLogger(__name__)

KEY_ATTRIBUTES: Final = (ATTR_PSK, ATTR_ACCESS_PSK)
OPEN_CARRIER: Final = "custom"

# (carrier, key attribute, identity octets) -> (key octets, device id)
_IndexKey = tuple[str, str, bytes]


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted registration: its device row (None: an anonymous endpoint of the open
    listener, whose row is created with the registration) and the name it is kept under."""

    device: Device | None
    endpoint: str


class DeviceDirectory:
    def __init__(self, provisioning: Provisioning, carriers: CarrierPolicy) -> None:
        self.provisioning = provisioning
        self.carriers = carriers
        self._keys: dict[_IndexKey, tuple[bytes, int]] = {}
        self._indexed: dict[int, list[_IndexKey]] = {}
        self._admitted: dict[tuple[str, str, str, int], Admission] = {}
        provisioning.watch(self._on_device)

    def _on_device(self, device_id: int, device: Device | None) -> None:
        """Keep the key index in step with every change of a device row."""
        if device is None:
            self._unindex(device_id)
        else:
            self._index(device)

    # --- the key index ---------------------------------------------------------------------------

    def load(self) -> None:
        """Rebuild the key index from the provisioning index (at start)."""
        self._keys.clear()
        self._indexed.clear()
        for device in self.provisioning.devices():
            self._index(device)

    def _index(self, device: Device) -> None:
        self._unindex(device.id)
        identity = self.identity_of(device)
        if identity is None:
            return
        entries: list[_IndexKey] = []
        encoding = str(
            device.attributes.get(ATTR_PSK_ENCODING) or self._profile(device.carrier).rules.psk_encodings[0]
        )
        for attribute in KEY_ATTRIBUTES:
            key = device.attributes.get(attribute)
            if not key:
                continue
            try:
                raw = decode_key(str(key), encoding if attribute == ATTR_PSK else "string")
            except BadArgument:
                continue  # a row written by hand that the stack cannot use: unusable, not fatal
            entry = (device.carrier, attribute, identity.encode("utf-8"))
            self._keys[entry] = (raw, device.id)
            entries.append(entry)
        if entries:
            self._indexed[device.id] = entries

    def _unindex(self, device_id: int) -> None:
        for entry in self._indexed.pop(device_id, ()):
            if self._keys.get(entry, (b"", -1))[1] == device_id:
                del self._keys[entry]

    def _profile(self, carrier: str) -> CarrierProfile:
        return self.carriers.profiles.get(carrier) or self.carriers.profiles[OPEN_CARRIER]

    @staticmethod
    def identity_of(device: Device) -> str | None:
        """The DTLS identity of `device`: `<PSKID>` when given, else its IMEI, else its endpoint."""
        return psk_identity_of(device) or device.endpoint

    def key_attribute(self, listener: str) -> tuple[str, str]:
        """(carrier, key attribute) a listener's DTLS checks."""
        profile = self.carriers.profile_for(listener) or self.carriers.profiles[OPEN_CARRIER]
        return profile.name, profile.psk_attribute(self.carriers.role_of(listener))

    def psk_for(self, listener: str, identity: bytes) -> bytes | None:
        """The key of a DTLS `identity` at `listener` (runs inside the handshake), else None."""
        carrier, attribute = self.key_attribute(listener)
        entry = self._keys.get((carrier, attribute, identity))
        return entry[0] if entry is not None else None

    def psk_lookup(self, listener: str) -> Callable[[bytes], bytes | None]:
        def lookup(identity: bytes) -> bytes | None:
            return self.psk_for(listener, identity)

        return lookup

    def device_of_identity(self, listener: str, identity: str) -> Device | None:
        carrier, attribute = self.key_attribute(listener)
        entry = self._keys.get((carrier, attribute, identity.encode("utf-8")))
        return self.provisioning.device(entry[1]) if entry is not None else None

    def has_key(self, device: Device, listener: str) -> bool:
        """Whether `device` holds the key `listener` would check (then it must use DTLS there)."""
        _carrier, attribute = self.key_attribute(listener)
        return bool(device.attributes.get(attribute))

    def requires_security(self, device: Device, listener: str) -> bool:
        return self.has_key(device, listener) or self._profile(device.carrier).rules.requires_security

    def why_secure(self, device: Device, listener: str) -> str:
        """The reason a plaintext request of `device` is refused (for its event)."""
        if self.has_key(device, listener):
            return "has a PSK: it must use DTLS"
        return f"is a {device.carrier} device, which must use DTLS"

    # --- the write path of keys ------------------------------------------------------------------

    async def set_key(
        self,
        device: Device,
        key: str,
        encoding: PskEncoding | None = None,
        *,
        attribute: str | None = None,
        identity: str | None = None,
        issued_at: float | None = None,
    ) -> Device:
        """Give `device` a key (by default the one its carrier's access listener checks), stored
        in its row and indexed at once; raises BadArgument for a key or identity the DTLS stack
        cannot use, or an identity another device of its carrier holds."""
        profile = self._profile(device.carrier)
        attribute = attribute or profile.psk_attribute("access")
        if attribute == ATTR_PSK:
            decode_key(
                key,
                encoding or str(device.attributes.get(ATTR_PSK_ENCODING) or profile.rules.psk_encodings[0]),
            )
        else:
            if encoding not in (None, "string"):
                raise BadArgument(f"a {profile.name} access PSK is a string (psk_encoding 'string')")
            decode_key(key, "string")
        attributes = {**device.attributes, attribute: key}
        if attribute == ATTR_PSK and encoding is not None:
            attributes[ATTR_PSK_ENCODING] = encoding
        if attribute == ATTR_ACCESS_PSK and issued_at is not None:
            attributes[ATTR_ACCESS_PSK_AT] = issued_at
        if identity is not None:
            check_identity(identity)
            attributes[ATTR_PSK_IDENTITY] = identity
        candidate = Device(**{**device.as_dict(), "attributes": attributes})
        chosen = self.identity_of(candidate)
        if chosen is None:
            raise BadArgument("the device has no endpoint name yet: it can be given a PSK once it registers")
        check_identity(chosen)
        holder = self._keys.get((device.carrier, attribute, chosen.encode("utf-8")))
        if holder is not None and holder[1] != device.id:
            raise BadArgument(f"PSK identity {chosen!r} already belongs to device {holder[1]}")
        updated = await self.provisioning.update_device(device.id, attributes=attributes)
        self._index(updated)
        return updated

    async def remove_keys(self, device: Device) -> Device:
        """Forget every key of `device`."""
        attributes = {
            k: v for k, v in device.attributes.items() if k not in (*KEY_ATTRIBUTES, ATTR_ACCESS_PSK_AT)
        }
        if attributes == device.attributes:
            return device
        updated = await self.provisioning.update_device(device.id, attributes=attributes)
        self._index(updated)
        return updated

    async def delete_device(self, device: Device) -> None:
        """Delete a device row with its keys (nothing of another row is touched)."""
        self._unindex(device.id)
        await self.provisioning.delete_device(device.id)

    async def set_endpoint_psk(
        self, endpoint: str, identity: str, key: str, encoding: PskEncoding = "string"
    ) -> Device:
        """The PSK of an endpoint of the open listener (Python API `Lwm2mServer.set_psk`): its
        row is created when the endpoint was not seen yet."""
        if not endpoint:
            raise BadArgument("endpoint is empty")
        check_identity(identity)
        decode_key(key, encoding)
        device = self.provisioning.device_by_endpoint(endpoint)
        if device is None:
            device = await self.provisioning.ensure_endpoint(endpoint, OPEN_CARRIER)
        return await self.set_key(device, key, encoding, attribute=ATTR_PSK, identity=identity)

    async def remove_endpoint_psk(self, endpoint: str) -> bool:
        device = self.provisioning.device_by_endpoint(endpoint)
        if device is None or not any(device.attributes.get(a) for a in KEY_ATTRIBUTES):
            return False
        await self.remove_keys(device)
        return True

    async def create_device(self, **values: Any) -> Device:
        """Provision a device (the REST and OneNET routes): an anonymous row of the endpoint it
        will register with is adopted, and its key is indexed."""
        psk = values.pop("psk", None)
        encoding = values.pop("psk_encoding", None)
        product = self.provisioning.product(values["product_id"]) if values.get("product_id") else None
        if product is not None and values.get("imei"):
            name = self._profile(product.carrier).default_endpoint(values["imei"], values.get("imsi"))
            anonymous = self.provisioning.device_by_endpoint(name)
            if (
                anonymous is not None
                and anonymous.product_id is None
                and product.carrier == anonymous.carrier
            ):
                device = await self.provisioning.adopt(anonymous, **values)
                if psk:
                    device = await self.set_key(device, psk, encoding, attribute=ATTR_PSK)
                return device
        if psk:
            profile = self._profile(product.carrier if product is not None else OPEN_CARRIER)
            decode_key(psk, encoding or profile.rules.psk_encodings[0])
        device = await self.provisioning.create_device(**values)
        if psk:
            device = await self.set_key(device, psk, encoding, attribute=ATTR_PSK)
        return device

    # --- naming ----------------------------------------------------------------------------------

    def endpoint_of(self, device: Device) -> str | None:
        """The name the registrations of `device` are kept under: the bound one, else the name
        its carrier's pattern gives when no other device holds it; None otherwise."""
        if device.endpoint:
            return device.endpoint
        if device.imei is None:
            return None
        name = self._profile(device.carrier).default_endpoint(device.imei, device.imsi)
        holder = self.provisioning.device_by_endpoint(name)
        return name if holder is None or holder.id == device.id else None

    def device_of(self, endpoint: str) -> Device | None:
        """The device row a registration name belongs to: the row bound to it, else a provisioned
        device not yet bound whose carrier's pattern gives exactly that (unclaimed) name."""
        bound = self.provisioning.device_by_endpoint(endpoint)
        if bound is not None:
            return bound
        for name, profile in self.carriers.profiles.items():
            if name == OPEN_CARRIER:
                continue
            found = profile.find_device(self.provisioning, endpoint)
            if isinstance(found, Device) and not found.endpoint and self.endpoint_of(found) == endpoint:
                return found
        return None

    def _name_for(self, device: Device, endpoint: str) -> str:
        if device.endpoint in (endpoint, f"{endpoint}@{device.carrier}"):
            return device.endpoint
        holder = self.provisioning.device_by_endpoint(endpoint)
        if holder is None or holder.id == device.id:
            return endpoint
        return f"{endpoint}@{device.carrier}"

    def _claimed_elsewhere(self, endpoint: str) -> Device | None:
        """A provisioned device of a carrier listener whose name `endpoint` is."""
        holder = self.provisioning.device_by_endpoint(endpoint)
        if holder is not None and holder.carrier != OPEN_CARRIER:
            return holder
        for name, profile in self.carriers.profiles.items():
            if name == OPEN_CARRIER or isinstance(profile, CustomProfile):
                continue
            found = profile.find_device(self.provisioning, endpoint)
            if isinstance(found, Device):
                return found
        return None

    # --- admission (RegistrationPolicy) ----------------------------------------------------------

    def _refuse(self, endpoint: str, refusal: Refusal) -> Verdict:
        log.info("refused %s: %s", endpoint, refusal.reason)
        self.carriers.refusals[endpoint] = refusal
        return Verdict(refusal.code, refusal.reason)

    def _admit(
        self, listener: str, endpoint: str, options: Mapping[int, bytes], identity: str | None
    ) -> Admission | Refusal:
        profile = self.carriers.strict_profile(listener)
        if profile is not None:
            found = profile.admit(self.provisioning, endpoint, options, identity)
            if isinstance(found, Refusal):
                return found
            device = found
        else:
            device = self.provisioning.device_by_endpoint(endpoint)
            if device is not None and device.carrier != OPEN_CARRIER:
                device = None
            if device is None:
                if (other := self._claimed_elsewhere(endpoint)) is not None:
                    return Refusal(
                        CoapCode.FORBIDDEN,
                        f"endpoint {endpoint!r} belongs to a {other.carrier} device: it registers "
                        f"through the {other.carrier} listener",
                    )
                found = self.carriers.profiles[OPEN_CARRIER].find_device(self.provisioning, endpoint)
                device = found if isinstance(found, Device) and found.carrier == OPEN_CARRIER else None
        if identity is not None:
            holder = self.device_of_identity(listener, identity)
            if holder is None or (device is not None and holder.id != device.id):
                return Refusal(
                    CoapCode.FORBIDDEN, f"DTLS identity {identity!r} may not register as {endpoint!r}"
                )
            if device is None:
                if holder.endpoint != endpoint:
                    return Refusal(
                        CoapCode.FORBIDDEN, f"DTLS identity {identity!r} may not register as {endpoint!r}"
                    )
                device = holder
        elif device is not None and self.requires_security(device, listener):
            return Refusal(CoapCode.FORBIDDEN, f"endpoint {endpoint!r} {self.why_secure(device, listener)}")
        if device is None:
            return Admission(None, endpoint)
        return Admission(device, self._name_for(device, endpoint))

    def check_register(self, request: RegisterRequest) -> Verdict:
        listener = request.origin.listener
        profile = self.carriers.profile_for(listener)
        if profile is not None and self.carriers.role_of(listener) == ROLE_BOOTSTRAP:
            return self._refuse(request.endpoint, Refusal(CoapCode.FORBIDDEN, "this is a bootstrap server"))
        strict = self.carriers.strict_profile(listener)
        if strict is not None:
            bad = strict.check_registration_values(request.lifetime, request.binding)
            if bad is not None:
                return self._refuse(request.endpoint, bad)
        admitted = self._admit(listener, request.endpoint, request.options, request.origin.secure_identity)
        if isinstance(admitted, Refusal):
            return self._refuse(request.endpoint, admitted)
        origin = request.origin
        self._admitted[(listener, admitted.endpoint, origin.host, origin.port)] = admitted
        return Verdict(endpoint=admitted.endpoint)

    def check_update(self, request: UpdateRequest, registration: Registration) -> Verdict:
        origin = request.origin
        if (
            registration.secure_identity is not None
            and origin.secure_identity != registration.secure_identity
        ):
            return self._refuse(
                registration.endpoint,
                Refusal(CoapCode.FORBIDDEN, "a DTLS registration is updated over its own DTLS session"),
            )
        device = self.device_of(registration.endpoint)
        if (
            origin.secure_identity is None
            and device is not None
            and self.requires_security(device, origin.listener)
        ):
            return self._refuse(
                registration.endpoint,
                Refusal(CoapCode.FORBIDDEN, f"the endpoint {self.why_secure(device, origin.listener)}"),
            )
        profile = self.carriers.strict_profile(origin.listener)
        if profile is not None:
            bad = profile.check_registration_values(request.lifetime, request.binding)
            if bad is not None:
                return self._refuse(registration.endpoint, bad)
            name = device.endpoint if device is not None and device.endpoint else registration.endpoint
            raw = (
                name.rsplit("@", 1)[0] if device is not None and name.endswith(f"@{device.carrier}") else name
            )
            admitted = profile.admit(self.provisioning, raw, request.options, origin.secure_identity)
            if isinstance(admitted, Refusal):
                return self._refuse(registration.endpoint, admitted)
        if origin.listener != registration.listener and device is not None:
            if self.carriers.profile_for(origin.listener) is not self.carriers.profile_for(
                registration.listener
            ):
                return self._refuse(
                    registration.endpoint,
                    Refusal(CoapCode.FORBIDDEN, "a registration stays at its carrier's listener"),
                )
        return Verdict()

    async def bind(self, request: RegisterRequest, endpoint: str) -> Device:
        """Give the registration its device row (with the registration's write): the admitted
        device is bound to `endpoint`, an anonymous endpoint gets its own row."""
        origin = request.origin
        admitted = self._admitted.pop((origin.listener, endpoint, origin.host, origin.port), None)
        device = admitted.device if admitted is not None else None
        if device is None:
            return await self.provisioning.ensure_endpoint(endpoint, OPEN_CARRIER)
        current = self.provisioning.device(device.id) or device
        bound = await self.provisioning.bind_endpoint(current, endpoint)
        if bound.endpoint != device.endpoint:
            self._index(bound)
        return bound

    def admit_bootstrap(self, request: BootstrapRequest) -> Device | Refusal:
        listener = request.origin.listener
        profile = self.carriers.profile_for(listener)
        if profile is None:
            return Refusal(CoapCode.NOT_FOUND, "no bootstrap server here")
        found = profile.admit(
            self.provisioning, request.endpoint, request.options, request.origin.secure_identity
        )
        if found is None:
            return Refusal(CoapCode.FORBIDDEN, "unknown device")
        if isinstance(found, Refusal):
            return found
        if request.origin.secure_identity is None and self.requires_security(found, listener):
            return Refusal(
                CoapCode.FORBIDDEN, f"endpoint {request.endpoint!r} {self.why_secure(found, listener)}"
            )
        return found

    async def issue_access_key(self, device: Device, key: str, issued_at: float) -> Device:
        """A bootstrap's new LwM2M-server PSK: from now on the only one its access listener accepts."""
        current = self.provisioning.device(device.id) or device
        return await self.set_key(current, key, "string", attribute=ATTR_ACCESS_PSK, issued_at=issued_at)
