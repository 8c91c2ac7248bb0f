"""CoRE Link Format (RFC 6690, content format 40) and its LwM2M reading.

RFC 6690 §2 grammar, as parsed here:

    links       = [ link *( "," link ) ]
    link        = "<" URI-Reference ">" *( ";" param )
    param       = parmname [ "=" ( ptoken / quoted-string ) ]

LwM2M uses link format for the Register / Update payload (Core 1.1.1 §6.2.1 and §5.3.1; 1.0.2
§5.3.1): an optional root link `</>;rt="oma.lwm2m";ct=11543` (or an alternate path such as
`</lwm2m>;rt="oma.lwm2m"`) followed by object links `</o>` (with `ver=` when the object version is
not 1.0) and instance links `</o/i>`; and for Discover answers, where resource links and attribute
parameters (`pmin=10`, `dim=2`) appear.

Design choices:
- The parser is tolerant where real clients differ: whitespace and newlines around links and
  separators, parameter values quoted or not, quoted values holding `,` or `;`, backslash escapes in
  quoted strings, valueless parameters (`;obs`). It rejects what is not link format at all: a missing
  `<` or `>`, unterminated quotes, empty parameter names or values, trailing commas.
- `Link.params` keeps the parameters in order with their unquoted values; whether a value was quoted
  on the wire is not kept. The formatter quotes a value when it is not a valid ptoken, and always
  for `rt`, `if`, `rel`, `anchor`, `title` and `type`, as LwM2M examples and RFC 6690 do.
- Everything raises CodecError, never another exception, whatever the input.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lwm2m.errors import CodecError, InvalidPath
from lwm2m.path import Path

LWM2M_ROOT_TYPE = "oma.lwm2m"

# RFC 5987 / RFC 5988 token characters allowed in a parameter name.
_PARMNAME_CHARS = frozenset("!#$&+-.^_`|~*" + string.ascii_letters + string.digits)
# RFC 6690 §2 ptokenchar.
_PTOKEN_CHARS = frozenset("!#$%&'()*+-./:<=>?@[]^_`{|}~" + string.ascii_letters + string.digits)
_ALWAYS_QUOTED = frozenset({"rt", "if", "rel", "anchor", "title", "type"})
_WHITESPACE = " \t\r\n"


@dataclass(frozen=True, slots=True)
class Link:
    """One link-value: the target URI reference and its parameters in order."""

    target: str
    params: tuple[tuple[str, str | None], ...] = ()

    def param(self, name: str) -> str | None:
        """The value of the first parameter called `name` (case-insensitive), None if absent or bare."""
        wanted = name.lower()
        for key, value in self.params:
            if key.lower() == wanted:
                return value
        return None

    def has(self, name: str) -> bool:
        """Whether a parameter called `name` (case-insensitive) is present, with or without a value."""
        wanted = name.lower()
        return any(key.lower() == wanted for key, _ in self.params)


@dataclass(slots=True)
class RegisteredObjects:
    """The objects and instances a client announces in a Register / Update (or a Discover answer)."""

    root: str = "/"
    content_formats: tuple[int, ...] = ()
    objects: dict[int, str | None] = field(default_factory=dict)
    instances: list[Path] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- parser


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_whitespace(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
            self.pos += 1

    def take_run(self, allowed: frozenset[str]) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        return self.text[start : self.pos]

    def error(self, message: str) -> CodecError:
        return CodecError(f"link format: {message} at offset {self.pos}")


def parse_links(text: str | bytes) -> list[Link]:
    """Parse a link-format document. An empty (or blank) document has no links."""
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError(f"link format payload is not UTF-8: {exc}") from exc
    scanner = _Scanner(text)
    links: list[Link] = []
    scanner.skip_whitespace()
    if scanner.at_end():
        return links
    while True:
        links.append(_parse_link(scanner))
        scanner.skip_whitespace()
        if scanner.at_end():
            return links
        if scanner.peek() != ",":
            raise scanner.error(f"expected ',' or ';', found {scanner.peek()!r}")
        scanner.pos += 1
        scanner.skip_whitespace()


def _parse_link(scanner: _Scanner) -> Link:
    if scanner.peek() != "<":
        raise scanner.error("expected '<'")
    scanner.pos += 1
    end = scanner.text.find(">", scanner.pos)
    if end < 0:
        raise scanner.error("unterminated '<'")
    target = scanner.text[scanner.pos : end]
    if not _valid_target(target):
        raise scanner.error(f"invalid character in link target {target!r}")
    scanner.pos = end + 1
    params: list[tuple[str, str | None]] = []
    while True:
        scanner.skip_whitespace()
        if scanner.peek() != ";":
            return Link(target, tuple(params))
        scanner.pos += 1
        scanner.skip_whitespace()
        name = scanner.take_run(_PARMNAME_CHARS)
        if not name:
            raise scanner.error("expected a parameter name")
        scanner.skip_whitespace()
        value: str | None = None
        if scanner.peek() == "=":
            scanner.pos += 1
            scanner.skip_whitespace()
            if scanner.peek() == '"':
                value = _parse_quoted(scanner)
            else:
                value = scanner.take_run(_PTOKEN_CHARS)
                if not value:
                    raise scanner.error(f"parameter {name!r} has an empty value")
        params.append((name, value))


def _valid_target(target: str) -> bool:
    """A URI reference holds no angle brackets, quotes, whitespace or control characters."""
    return not any(ch in '<>"' or ch in _WHITESPACE or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target)


def _parse_quoted(scanner: _Scanner) -> str:
    scanner.pos += 1  # opening quote
    out: list[str] = []
    text = scanner.text
    while scanner.pos < len(text):
        ch = text[scanner.pos]
        scanner.pos += 1
        if ch == '"':
            return "".join(out)
        if ch == "\\":
            if scanner.pos >= len(text):
                break
            ch = text[scanner.pos]
            scanner.pos += 1
        out.append(ch)
    raise scanner.error("unterminated quoted string")


# ---------------------------------------------------------------------------------------- formatter


def format_links(links: Iterable[Link]) -> str:
    """Serialize links as a link-format document (no whitespace between links)."""
    return ",".join(_format_link(link) for link in links)


def _format_link(link: Link) -> str:
    target = link.target
    if not _valid_target(target):
        raise CodecError(f"link target cannot be written in link format: {target!r}")
    parts = [f"<{target}>"]
    for name, value in link.params:
        if not name or any(ch not in _PARMNAME_CHARS for ch in name):
            raise CodecError(f"invalid link parameter name: {name!r}")
        if value is None:
            parts.append(name)
        elif value and name.lower() not in _ALWAYS_QUOTED and all(ch in _PTOKEN_CHARS for ch in value):
            parts.append(f"{name}={value}")
        else:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{name}="{escaped}"')
    return ";".join(parts)


# ---------------------------------------------------------------------------------------- LwM2M


def parse_object_links(payload: str | bytes) -> RegisteredObjects:
    """Read a Register / Update payload (or a Discover answer) into objects and instances.

    The root link is the one whose `rt` includes `oma.lwm2m`, or a link to `/` itself; its `ct` gives
    the content formats the client supports. Every other link must be a path under the root:
    `/o` (its `ver` is the object version), `/o/i` (an instance) or, in Discover answers, `/o/i/r`
    and `/o/i/r/ri`. Raises CodecError for anything else.
    """
    links = parse_links(payload)
    result = RegisteredObjects(links=links)
    root_link = next((link for link in links if _is_root_link(link)), None)
    if root_link is None:
        root_link = next((link for link in links if link.target.strip("/") == ""), None)
    if root_link is not None:
        result.root = _normalize_root(root_link.target)
        result.content_formats = _content_formats(root_link.param("ct"))
    prefix = "" if result.root == "/" else result.root
    seen: set[Path] = set()
    for link in links:
        if link is root_link:
            continue
        path = _object_path(link.target, prefix)
        object_id = path.object_id
        assert object_id is not None
        version = link.param("ver") if path.depth == 1 else None
        if version is not None or object_id not in result.objects:
            result.objects[object_id] = version
        if path.depth >= 2:
            instance = Path(object_id, path.instance_id)
            if instance not in seen:
                seen.add(instance)
                result.instances.append(instance)
    return result


def _is_root_link(link: Link) -> bool:
    rt = link.param("rt")
    return rt is not None and LWM2M_ROOT_TYPE in rt.split()


def _normalize_root(target: str) -> str:
    stripped = target.strip("/")
    return "/" + stripped if stripped else "/"


def _content_formats(value: str | None) -> tuple[int, ...]:
    if value is None:
        return ()
    formats: list[int] = []
    for token in value.split():
        if not (token.isascii() and token.isdigit()) or len(token) > 5 or int(token) > 0xFFFF:
            raise CodecError(f"invalid content format {token!r} in ct={value!r}")
        formats.append(int(token))
    return tuple(formats)


def _object_path(target: str, prefix: str) -> Path:
    text = target if target.startswith("/") else "/" + target
    if prefix:
        if not text.startswith(prefix + "/"):
            raise CodecError(f"link {target!r} is not under the LwM2M root {prefix!r}")
        text = text[len(prefix) :]
    try:
        path = Path.parse(text)
    except InvalidPath as exc:
        raise CodecError(f"link {target!r} is not an LwM2M path: {exc}") from exc
    if path.is_root:
        raise CodecError(f"link {target!r} names no object")
    return path


def format_object_links(
    instances: Iterable[Path],
    objects_without_instances: Iterable[int] = (),
    versions: Mapping[int, str] | None = None,
    root: str = "/",
    content_format: int | None = None,
) -> str:
    """Build a Register / Update (or Discover) payload.

    Emits the root link when `root` is not `/` or a content format is given, then in id order every
    object that has a version (`</o>;ver=v`) or no instances (`</o>`), each followed by its instance
    (or deeper) paths. `versions` maps object ids to versions other than the default 1.0.
    """
    versions = dict(versions or {})
    root = _normalize_root(root)
    prefix = "" if root == "/" else root
    paths: set[tuple[int, ...]] = set()
    for path in instances:
        if path.depth == 0:
            raise CodecError("an instance link needs an object id")
        paths.add(path.ids)
    paths.update((object_id,) for object_id in objects_without_instances)
    paths.update((object_id,) for object_id in versions)
    links: list[Link] = []
    if root != "/" or content_format is not None:
        params: list[tuple[str, str | None]] = [("rt", LWM2M_ROOT_TYPE)]
        if content_format is not None:
            params.append(("ct", str(content_format)))
        links.append(Link(root, tuple(params)))
    for ids in sorted(paths):
        target = prefix + "/" + "/".join(str(i) for i in ids)
        version = versions.get(ids[0]) if len(ids) == 1 else None
        links.append(Link(target, (("ver", version),) if version is not None else ()))
    return format_links(links)
