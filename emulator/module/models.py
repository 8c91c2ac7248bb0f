"""Model differences of the OneMO modules, as data (manual §1.1 Table 1 and the notes of §3-§4).

Every difference the manual names is one field here; the module reads the table and never tests
a model name. Sources, by field:

* `optional_commands`: AT+MIPLUPDATESET only on MN318/ML305A/ML307A/ML307R (§4.5 note);
  AT+MIPLLTRDP only on M5310-A (§4.9 note).
* `release_flags` (AT+MIPLNOTIFY `<flag>` 0x200/0x400, §3.9 footnote 3): MN319 takes them as 0;
  ML305A/ML307A/ML307R do not support them (rejected with `+CIS ERROR: 601`).
* `nsmi` (§4.2 note, §4.10): ML305A/ML307A/ML307R have no send reports (AT+MIPLNMI `<nsmi>`=1 is
  rejected); M5311 numbers 1..128 (mid & 127, 0 shown as 128) and refuses mid 0; MN319 has them
  since V4.3.0.
* `platforms` (§4.1 footnote 7; notes of §5.4, §5.6, §5.7): ML305A/ML307A/ML307R have no Yanfei
  (2); *(inferred)* the Huawei (3) and CTWing-DTLS examples "do not apply" to them, read here as
  no Huawei platform and DTLS on OneNET only.
* `cipher_suites` (§4.6 note): MN316/MN316-S/MN316A/MN318/MN326 AES_128_CBC_SHA256; MN319 also
  AES_128_CCM_8. *(inferred)* The ML and M53xx models, not named, get AES_128_CBC_SHA256. The
  ClientHello offers exactly these, in this order (the DTLS client refuses a name it could not
  offer rather than leave it out).
* `content_type_keeps_value` (§3.9 footnote 4): on MN319/MN316A `<contentType>` does not change
  `<value>`; elsewhere `<contentType>`=2 (OPAQUE) sends a string value as opaque bytes.
* `result_codes` (platforms.md): ML307 adds 16 -> 2.31, 17 -> 4.08, 18 -> 4.13, 19 -> 4.15.
* `events` (platforms.md): the OneMO models print the manual's events (§3.20); ML307 adds 16
  (unregister failed); *(inferred)* the M53xx models print the CIS SDK's full list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from emulator.module.events import ALL_EVENTS, MANUAL_EVENTS, Event


class ReleaseFlags(Enum):
    SUPPORTED = "supported"
    AS_ZERO = "as_zero"
    REJECTED = "rejected"


class NsmiStyle(Enum):
    MASK_127 = "mask_127"  # <num> = mid & 127, 0..127
    M5311 = "m5311"  # 1..128, 0 shown as 128; mid 0 refused
    UNSUPPORTED = "unsupported"


CBC_SHA256: Final = "TLS_PSK_WITH_AES_128_CBC_SHA256"
CCM_8: Final = "TLS_PSK_WITH_AES_128_CCM_8"
ALL_PLATFORMS: Final = frozenset({0, 1, 2, 3, 10})
BASE_RESULT_CODES: Final = frozenset({1, 2, 11, 12, 13, 14, 15})
ML307_RESULT_CODES: Final = BASE_RESULT_CODES | {16, 17, 18, 19}


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    name: str
    network: str  # "NB-IoT" or "LTE Cat.1"
    revision: str
    manufacturer: str = "CMIOT"
    optional_commands: frozenset[str] = frozenset()
    release_flags: ReleaseFlags = ReleaseFlags.SUPPORTED
    nsmi: NsmiStyle = NsmiStyle.MASK_127
    platforms: frozenset[int] = ALL_PLATFORMS
    dtls_platforms: frozenset[int] = frozenset({0, 1, 3})
    cipher_suites: tuple[str, ...] = (CBC_SHA256,)
    content_type_keeps_value: bool = False
    result_codes: frozenset[int] = BASE_RESULT_CODES
    events: frozenset[Event] = field(default=MANUAL_EVENTS)
    default_cmee: int = 1
    # Object 5 (FOTA) answered by the module itself: the §3.3 note ("FOTA功能会默认使用3/0, 4/0,
    # 5/0资源的读、写、执行操作") is general, so every model of Table 1 has it.
    fota: bool = True
    # What the module prints when it powers up (after a firmware update's reboot). *(inferred)*:
    # the manual shows no power-on output; the ML30x series print `+MATREADY` (their own AT
    # manual), the NB-IoT models are given the SIM's `+CPIN: READY`.
    power_on_urcs: tuple[str, ...] = ("+CPIN: READY",)


_ML30X_PLATFORMS: Final = frozenset({0, 1, 10})

MODELS: Final[dict[str, ModelCapabilities]] = {
    m.name: m
    for m in (
        ModelCapabilities("MN316", "NB-IoT", "MN316_V1.3.0"),
        ModelCapabilities("MN316-S", "NB-IoT", "MN316S_V1.1.0"),
        ModelCapabilities("MN316A", "NB-IoT", "MN316A_V1.0.0", content_type_keeps_value=True),
        ModelCapabilities("MN318", "NB-IoT", "MN318_V1.2.0", optional_commands=frozenset({"+MIPLUPDATESET"})),
        ModelCapabilities(
            "MN319",
            "NB-IoT",
            "MN319_V1.1.0",
            release_flags=ReleaseFlags.AS_ZERO,
            cipher_suites=(CBC_SHA256, CCM_8),
            content_type_keeps_value=True,
        ),
        ModelCapabilities("MN326", "NB-IoT", "MN326_V1.0.0"),
        ModelCapabilities("ML302A", "LTE Cat.1", "ML302A_V2.1.0"),
        ModelCapabilities(
            "ML305A",
            "LTE Cat.1",
            "ML305A_V1.2.0",
            optional_commands=frozenset({"+MIPLUPDATESET"}),
            release_flags=ReleaseFlags.REJECTED,
            nsmi=NsmiStyle.UNSUPPORTED,
            platforms=_ML30X_PLATFORMS,
            dtls_platforms=frozenset({0}),
            power_on_urcs=("+MATREADY",),
        ),
        ModelCapabilities(
            "ML307A",
            "LTE Cat.1",
            "ML307A_V1.3.0",
            optional_commands=frozenset({"+MIPLUPDATESET"}),
            release_flags=ReleaseFlags.REJECTED,
            nsmi=NsmiStyle.UNSUPPORTED,
            platforms=_ML30X_PLATFORMS,
            dtls_platforms=frozenset({0}),
            power_on_urcs=("+MATREADY",),
            result_codes=ML307_RESULT_CODES,
            events=MANUAL_EVENTS | {Event.UNREG_FAILED},
        ),
        ModelCapabilities(
            "ML307R",
            "LTE Cat.1",
            "ML307R_V1.1.0",
            optional_commands=frozenset({"+MIPLUPDATESET"}),
            release_flags=ReleaseFlags.REJECTED,
            nsmi=NsmiStyle.UNSUPPORTED,
            platforms=_ML30X_PLATFORMS,
            dtls_platforms=frozenset({0}),
            power_on_urcs=("+MATREADY",),
            result_codes=ML307_RESULT_CODES,
            events=MANUAL_EVENTS | {Event.UNREG_FAILED},
        ),
        ModelCapabilities(
            "M5310-A",
            "NB-IoT",
            "M5310A_V3.0.0",
            optional_commands=frozenset({"+MIPLLTRDP"}),
            events=ALL_EVENTS,
        ),
        ModelCapabilities("M5311", "NB-IoT", "M5311_V2.0.0", nsmi=NsmiStyle.M5311, events=ALL_EVENTS),
    )
}

# Commands that exist only where `optional_commands` lists them.
OPTIONAL_COMMANDS: Final = frozenset({"+MIPLUPDATESET", "+MIPLLTRDP"})


def capabilities(model: str) -> ModelCapabilities:
    """The table row for `model` (case-insensitive). Raises KeyError for an unknown model."""
    for name, caps in MODELS.items():
        if name.upper() == model.upper():
            return caps
    raise KeyError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
