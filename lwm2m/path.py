"""LwM2M paths: `/o`, `/o/i`, `/o/i/r`, `/o/i/r/ri` (Core 1.1.1 §6.1 and §7.1.2), plus the root `/`."""

from __future__ import annotations

from dataclasses import dataclass, field

from lwm2m.errors import InvalidPath

MAX_ID = 65535


@dataclass(frozen=True, order=True, slots=True)
class Path:
    """An LwM2M path. `Path()` is the root; ids must be given from the left without gaps."""

    object_id: int | None = None
    instance_id: int | None = None
    resource_id: int | None = None
    resource_instance_id: int | None = None
    # The ids without the trailing Nones, computed once: paths are built once and asked for their
    # ids and depth many times on every request and notification.
    _ids: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = (self.object_id, self.instance_id, self.resource_id, self.resource_instance_id)
        seen_none = False
        depth = 0
        for value in ids:
            if value is None:
                seen_none = True
                continue
            if seen_none:
                raise InvalidPath(f"path ids must be contiguous: {ids}")
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
                raise InvalidPath(f"path id out of range: {value!r}")
            depth += 1
        object.__setattr__(self, "_ids", ids[:depth])

    @classmethod
    def parse(cls, text: str) -> Path:
        """Parse `/3/0/1`, `3/0/1` or `/`. Raises InvalidPath."""
        stripped = text.strip()
        if stripped in ("", "/"):
            return cls()
        parts = stripped.strip("/").split("/")
        if len(parts) > 4:
            raise InvalidPath(f"too many segments in {text!r}")
        ids: list[int] = []
        for part in parts:
            if not part.isdigit() or not part.isascii():
                raise InvalidPath(f"not a number: {part!r} in {text!r}")
            ids.append(int(part))
        return cls(*ids)

    @classmethod
    def of(cls, value: Path | str | tuple[int, ...]) -> Path:
        """Accept a Path, a string or a tuple of ids."""
        if isinstance(value, Path):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        return cls(*value)

    @property
    def ids(self) -> tuple[int, ...]:
        return self._ids

    @property
    def depth(self) -> int:
        """0 root, 1 object, 2 instance, 3 resource, 4 resource instance."""
        return len(self._ids)

    @property
    def is_root(self) -> bool:
        return self.depth == 0

    @property
    def is_object(self) -> bool:
        return self.depth == 1

    @property
    def is_instance(self) -> bool:
        return self.depth == 2

    @property
    def is_resource(self) -> bool:
        return self.depth == 3

    @property
    def is_resource_instance(self) -> bool:
        return self.depth == 4

    def child(self, child_id: int) -> Path:
        ids = (*self._ids, child_id)
        return Path(*ids)

    @property
    def parent(self) -> Path:
        if self.is_root:
            raise InvalidPath("the root has no parent")
        return Path(*self.ids[:-1])

    def starts_with(self, prefix: Path) -> bool:
        return self.ids[: prefix.depth] == prefix.ids

    @property
    def segments(self) -> list[str]:
        """CoAP Uri-Path segments."""
        return [str(i) for i in self.ids]

    def __str__(self) -> str:
        return "/" + "/".join(self.segments)
