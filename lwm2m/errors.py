"""The error tree of the pure core.

    Lwm2mError
    ├── InvalidPath            a path string or id out of range
    ├── CodecError             malformed payload, or a value that cannot be encoded
    │   └── UnsupportedContentFormat
    └── ModelError             malformed DDF XML or inconsistent definitions

Decoders raise only CodecError (or a subclass) on bad input, never a bare exception.
"""

from __future__ import annotations


class Lwm2mError(Exception):
    """Base of every error raised by the `lwm2m` package."""


class InvalidPath(Lwm2mError, ValueError):
    """A path that is not `/o[/i[/r[/ri]]]` with ids in 0..65535."""


class CodecError(Lwm2mError, ValueError):
    """A payload that cannot be decoded, or a node that cannot be encoded in that format."""


class UnsupportedContentFormat(CodecError):
    """No codec for this content format, or the format cannot carry this kind of node."""

    def __init__(self, content_format: int, detail: str = "") -> None:
        self.content_format = content_format
        super().__init__(f"unsupported content format {content_format}{': ' + detail if detail else ''}")


class ModelError(Lwm2mError, ValueError):
    """An object definition that cannot be loaded."""
