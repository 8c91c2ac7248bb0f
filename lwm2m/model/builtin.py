"""The built-in object definitions shipped as package data under `lwm2m/model/builtin/`.

Contents: the OMA objects 0-7 and 19 in their LwM2M 1.1 compatible versions (objects 0 and 1 from
the registry's 1.1 history, since their latest versions declare LwM2M 1.2), the IPSO objects 3200,
3300, 3303 and 10290 from the OMA registry, and IPSO objects 3201, 3202, 3203, 3301, 3304, 3311,
3316, 3323 and 3328 written from the IPSO reusable resource definitions.

The XML is parsed once per process; every call returns a fresh `ModelRegistry` over the cached
(immutable) definitions, so callers may add to their registry without affecting anyone else.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from lwm2m.errors import ModelError
from lwm2m.model import ModelRegistry, ObjectDefinition
from lwm2m.model.ddf import load_ddf, load_ddf_directory

_PACKAGE = "lwm2m.model"
_FOLDER = "builtin"


@lru_cache(maxsize=1)
def _builtin_definitions() -> tuple[ObjectDefinition, ...]:
    folder = resources.files(_PACKAGE).joinpath(_FOLDER)
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".xml")), key=lambda f: f.name)
    definitions: list[ObjectDefinition] = []
    for file in files:
        try:
            definitions.extend(load_ddf(file.read_bytes()))
        except ModelError as exc:
            raise ModelError(f"built-in {file.name}: {exc}") from exc
    return tuple(definitions)


def builtin_definitions() -> tuple[ObjectDefinition, ...]:
    """The built-in definitions, in file-name order (cached)."""
    return _builtin_definitions()


def builtin_registry() -> ModelRegistry:
    """A new registry holding the built-in definitions."""
    return ModelRegistry(_builtin_definitions())


def registry_with(models_dir: str | Path | None) -> ModelRegistry:
    """Built-ins plus every DDF file in `models_dir` (its definitions replace built-ins with the
    same object id). `None` gives the built-ins alone. Raises ModelError for a bad directory."""
    registry = builtin_registry()
    if models_dir is not None:
        for definition in load_ddf_directory(models_dir):
            registry.add(definition)
    return registry
