"""The request bodies and parameter types of the native API, `/api/v1` (pydantic models: a
malformed body is a 422 before any route runs)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path as FastApiPath
from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lwm2m.path import Path


def _path_in_range(text: str) -> str:
    Path.parse(text)  # InvalidPath (a ValueError) for an id above 65535: a 400
    return text


PathText = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^/?\d{1,5}(/\d{1,5}){0,3}$"),
    AfterValidator(_path_in_range),
]
# Device ids are ASCII digits only (`visible_device`); anything else, "+1", " 1", "١٢", is no
# device (404), not a malformed request.
DeviceId = Annotated[str, FastApiPath(max_length=64)]
# Seconds since the epoch for the data point cursors: 0 up to the year 9999.
Instant = Annotated[float | None, Query(ge=0, le=253_402_300_799)]
Timeout = Annotated[float | None, Field(default=None, ge=1, le=120)]
# The notification attributes of Write-Attributes and Observe (Core 1.1.1 §5.1.2).
AttributeName = Literal["pmin", "pmax", "gt", "lt", "st", "epmin", "epmax"]


class ProductCreate(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    carrier: Literal["onenet", "ctwing", "yanfei", "huawei", "custom"]


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    product_id: str = Field(min_length=1, max_length=32)
    imei: str = Field(pattern=r"^\d{1,32}$")
    imsi: str | None = Field(default=None, pattern=r"^\d{1,32}$")
    title: str | None = Field(default=None, max_length=255)
    auth_code: str | None = Field(default=None, max_length=32)
    obsv: bool = True
    psk: str | None = Field(default=None, min_length=1, max_length=64)
    psk_encoding: Literal["string", "hex"] = "string"


class PskBody(BaseModel):
    psk: str = Field(min_length=1, max_length=64)
    psk_encoding: Literal["string", "hex"] = "string"


class ReadBody(BaseModel):
    path: PathText
    content_format: int | None = Field(default=None, ge=0, le=65535)
    timeout: Timeout = None


class WriteBody(BaseModel):
    path: PathText
    value: Any
    replace: bool = True
    content_format: int | None = Field(default=None, ge=0, le=65535)
    timeout: Timeout = None


class ExecuteBody(BaseModel):
    path: PathText
    arguments: str = Field(default="", max_length=2048)
    timeout: Timeout = None


class PathBody(BaseModel):
    path: PathText
    timeout: Timeout = None


class AttributesBody(BaseModel):
    path: PathText
    attributes: dict[AttributeName, float | None]
    timeout: Timeout = None


class ObserveBody(BaseModel):
    path: PathText | None = None
    paths: list[PathText] | None = Field(default=None, min_length=1, max_length=32)
    attributes: dict[AttributeName, float | None] | None = None
    content_format: int | None = Field(default=None, ge=0, le=65535)
    timeout: Timeout = None


class CancelBody(BaseModel):
    observation_id: int = Field(ge=0, le=2**31)
    active: bool = True


class CreateBody(BaseModel):
    path: PathText  # the object, /o
    instance: int | None = Field(default=None, ge=0, le=65534)  # None: the client chooses
    value: dict[Annotated[str, Field(pattern=r"^\d{1,5}$")], Any] = Field(max_length=256)
    content_format: int | None = Field(default=None, ge=0, le=65535)
    timeout: Timeout = None


class CompositeReadBody(BaseModel):
    paths: list[PathText] = Field(min_length=1, max_length=64)
    content_format: int | None = Field(default=None, ge=0, le=65535)
    timeout: Timeout = None


class CompositeWriteBody(BaseModel):
    values: dict[PathText, Any] = Field(min_length=1, max_length=256)
    content_format: int | None = Field(default=None, ge=0, le=65535)
    timeout: Timeout = None


class PushTargetCreate(BaseModel):
    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    token: str = Field(min_length=1, max_length=64)
    product_id: str | None = Field(default=None, max_length=32)
    verify: bool = True
    # OneNET's EncodingAESKey (43 Base64 characters): deliveries are then `enc_msg`.
    aes_key: str | None = Field(default=None, min_length=43, max_length=43)
