"""OMA DDF XML loader: object definitions from the LwM2M registry's XML files.

Format: the OMA LwM2M registry schemas `LWM2M.xsd` / `LWM2M-v1_1.xsd` (Core 1.1.1 Appendix D): an
`<LWM2M>` root holding one or more `<Object>` elements, each with `<ObjectID>`, `<Name>`,
`<Description1>`, `<ObjectVersion>`, `<LWM2MVersion>`, `<ObjectURN>`, `<MultipleInstances>`,
`<Mandatory>` and `<Resources>` of `<Item ID="...">`.

Design choices:
- Parsing uses `xml.etree.ElementTree`; documents that carry a DOCTYPE or ENTITY declaration are
  rejected before parsing, so no entity expansion (local or external) can happen.
- Element names are matched without their namespace, so a namespaced copy of a file still loads.
- Missing `<ObjectVersion>` / `<LWM2MVersion>` default to "1.0" (LwM2M 1.0 era files omit them).
- An empty `<Type>` means `ResourceType.NONE` (executable resources); an empty `<Operations>` means
  `Operations.NONE` (the Security object's resources are not reachable by a server).
- Every problem (malformed XML, unknown type, missing id) is a `ModelError`; the directory and file
  loaders name the file in the message.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from lwm2m.errors import ModelError
from lwm2m.model import ObjectDefinition, ResourceDefinition
from lwm2m.numbers import Operations, ResourceType

_FORBIDDEN_MARKERS = ("<!DOCTYPE", "<!ENTITY")
_TYPES_BY_TEXT = {t.value.lower(): t for t in ResourceType if t is not ResourceType.NONE}
_OPERATIONS_BY_TEXT = {op.value: op for op in Operations}


def load_ddf(xml: str | bytes) -> list[ObjectDefinition]:
    """Parse one DDF document; returns its objects in document order. Raises ModelError."""
    text = _as_text(xml)
    upper = text.upper()
    for marker in _FORBIDDEN_MARKERS:
        if marker in upper:
            raise ModelError(f"DDF XML must not contain {marker[2:]} declarations")
    try:
        root = ET.fromstring(xml if isinstance(xml, bytes) else text)
    except ET.ParseError as exc:
        raise ModelError(f"malformed DDF XML: {exc}") from exc
    objects = [root] if _local(root.tag) == "Object" else [e for e in root if _local(e.tag) == "Object"]
    if not objects:
        raise ModelError("DDF XML holds no <Object> element")
    return [_object(element) for element in objects]


def load_ddf_file(path: str | Path) -> list[ObjectDefinition]:
    """Load one DDF file. Raises ModelError naming the file."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ModelError(f"{file}: cannot read: {exc}") from exc
    try:
        return load_ddf(data)
    except ModelError as exc:
        raise ModelError(f"{file}: {exc}") from exc


def load_ddf_directory(path: str | Path) -> list[ObjectDefinition]:
    """Load every `*.xml` file directly in `path`, in file-name order. Raises ModelError."""
    folder = Path(path)
    if not folder.is_dir():
        raise ModelError(f"{folder}: not a directory")
    definitions: list[ObjectDefinition] = []
    for file in sorted(p for p in folder.glob("*.xml") if p.is_file()):
        definitions.extend(load_ddf_file(file))
    return definitions


def _as_text(xml: str | bytes) -> str:
    if isinstance(xml, str):
        return xml
    if xml.startswith((b"\xff\xfe", b"\xfe\xff")):
        return xml.decode("utf-16", errors="replace")
    return xml.decode("utf-8", errors="replace")


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _child_text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


def _required_int(text: str | None, what: str) -> int:
    if text is None or not text.strip().isdigit():
        raise ModelError(f"{what} must be an integer in 0..65535, got {text!r}")
    value = int(text)
    if value > 65535:
        raise ModelError(f"{what} must be an integer in 0..65535, got {text!r}")
    return value


def _multiple(text: str | None, what: str) -> bool:
    value = (text or "").strip().lower()
    if value == "multiple":
        return True
    if value == "single":
        return False
    raise ModelError(f"{what}: MultipleInstances must be Single or Multiple, got {text!r}")


def _mandatory(text: str | None, what: str) -> bool:
    value = (text or "").strip().lower()
    if value == "mandatory":
        return True
    if value == "optional":
        return False
    raise ModelError(f"{what}: Mandatory must be Mandatory or Optional, got {text!r}")


def _resource_type(text: str | None, what: str) -> ResourceType:
    value = " ".join((text or "").split()).lower()
    if value in ("", "none"):
        return ResourceType.NONE
    try:
        return _TYPES_BY_TEXT[value]
    except KeyError:
        raise ModelError(f"{what}: unknown Type {text!r}") from None


def _operations(text: str | None, what: str) -> Operations:
    value = (text or "").strip().upper()
    try:
        return _OPERATIONS_BY_TEXT[value]
    except KeyError:
        raise ModelError(f"{what}: unknown Operations {text!r}") from None


def _object(element: ET.Element) -> ObjectDefinition:
    object_id = _required_int(_child_text(element, "ObjectID"), "ObjectID")
    what = f"object {object_id}"
    resources: dict[int, ResourceDefinition] = {}
    for container in element:
        if _local(container.tag) != "Resources":
            continue
        for item in container:
            if _local(item.tag) != "Item":
                continue
            resource = _resource(item, what)
            if resource.id in resources:
                raise ModelError(f"{what}: resource {resource.id} defined twice")
            resources[resource.id] = resource
    return ObjectDefinition(
        id=object_id,
        name=_child_text(element, "Name") or "",
        multiple=_multiple(_child_text(element, "MultipleInstances"), what),
        mandatory=_mandatory(_child_text(element, "Mandatory"), what),
        version=_child_text(element, "ObjectVersion") or "1.0",
        lwm2m_version=_child_text(element, "LWM2MVersion") or "1.0",
        urn=_child_text(element, "ObjectURN") or "",
        description=_child_text(element, "Description1") or "",
        resources=resources,
    )


def _resource(item: ET.Element, object_what: str) -> ResourceDefinition:
    resource_id = _required_int(item.get("ID"), f"{object_what}: Item ID")
    what = f"{object_what} resource {resource_id}"
    return ResourceDefinition(
        id=resource_id,
        name=_child_text(item, "Name") or "",
        operations=_operations(_child_text(item, "Operations"), what),
        multiple=_multiple(_child_text(item, "MultipleInstances"), what),
        mandatory=_mandatory(_child_text(item, "Mandatory"), what),
        type=_resource_type(_child_text(item, "Type"), what),
        range_enumeration=_child_text(item, "RangeEnumeration") or "",
        units=_child_text(item, "Units") or "",
        description=_child_text(item, "Description") or "",
    )
