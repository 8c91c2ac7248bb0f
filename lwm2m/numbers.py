"""Numbers from the CoAP and LwM2M registries, as int enums.

Content formats: IANA CoAP Content-Formats registry and OMA TS LwM2M Core 1.1.1 §7.1.
Resource data types: OMA TS LwM2M Core 1.1.1 Appendix C.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ContentFormat(IntEnum):
    """CoAP Content-Format numbers used by LwM2M."""

    TEXT = 0
    LINK = 40
    OPAQUE = 42
    CBOR = 60
    SENML_JSON = 110
    SENML_CBOR = 112
    TLV = 11542
    LWM2M_JSON = 11543
    LWM2M_CBOR = 11544  # LwM2M 1.2
    # Pre-registration numbers still sent by LwM2M 1.0 clients (OMA-TS-LightweightM2M-V1_0 §6.4).
    TLV_LEGACY = 1542
    LWM2M_JSON_LEGACY = 1543

    @property
    def canonical(self) -> ContentFormat:
        """The registered number for a legacy alias (1542 -> 11542, 1543 -> 11543)."""
        if self is ContentFormat.TLV_LEGACY:
            return ContentFormat.TLV
        if self is ContentFormat.LWM2M_JSON_LEGACY:
            return ContentFormat.LWM2M_JSON
        return self


class ResourceType(StrEnum):
    """LwM2M resource data types (Core 1.1.1 Appendix C). Values match the DDF `<Type>` text."""

    STRING = "String"
    INTEGER = "Integer"
    UNSIGNED_INTEGER = "Unsigned Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"
    OPAQUE = "Opaque"
    TIME = "Time"
    OBJLNK = "Objlnk"
    CORELNK = "Corelnk"
    NONE = "none"  # executable resources carry no value


class Operations(StrEnum):
    """Operations a resource allows (DDF `<Operations>`)."""

    NONE = ""
    R = "R"
    W = "W"
    RW = "RW"
    E = "E"

    @property
    def readable(self) -> bool:
        return "R" in self.value

    @property
    def writable(self) -> bool:
        return "W" in self.value

    @property
    def executable(self) -> bool:
        return self is Operations.E


class Binding(StrEnum):
    """Binding letters of the `b=` registration parameter (1.0 combined forms included)."""

    U = "U"
    UQ = "UQ"
    S = "S"
    SQ = "SQ"
    US = "US"
    UQS = "UQS"
    T = "T"
    N = "N"


def is_queue_mode(binding: str, queue_flag: bool = False) -> bool:
    """True for LwM2M 1.0 `b=UQ`-style bindings and for the 1.1 `Q` query parameter."""
    return queue_flag or "Q" in binding.upper()


class CoapCode(IntEnum):
    """CoAP response codes used at the LwM2M layer, as class*32+detail (RFC 7252 §12.1.2)."""

    CREATED = 65
    DELETED = 66
    VALID = 67
    CHANGED = 68
    CONTENT = 69
    CONTINUE = 95
    BAD_REQUEST = 128
    UNAUTHORIZED = 129
    BAD_OPTION = 130
    FORBIDDEN = 131
    NOT_FOUND = 132
    METHOD_NOT_ALLOWED = 133
    NOT_ACCEPTABLE = 134
    REQUEST_ENTITY_INCOMPLETE = 136
    PRECONDITION_FAILED = 140
    REQUEST_ENTITY_TOO_LARGE = 141
    UNSUPPORTED_CONTENT_FORMAT = 143
    INTERNAL_SERVER_ERROR = 160
    NOT_IMPLEMENTED = 161
    SERVICE_UNAVAILABLE = 163

    @property
    def dotted(self) -> str:
        """The `2.05` form."""
        return f"{self.value >> 5}.{self.value & 0x1F:02d}"

    @property
    def is_success(self) -> bool:
        return 64 <= self.value < 96
