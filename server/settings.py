"""Settings of the private cloud: one pydantic-settings class, environment prefix `TESTBED_`."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ListenerSettings(BaseModel):
    """One CoAP listener (a carrier host): plain UDP, optionally a DTLS port on the same address."""

    name: str = "default"
    host: str = "127.0.0.1"
    port: int = 5683
    dtls_port: int | None = 5684
    carrier: str = "custom"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESTBED_", env_nested_delimiter="__")

    database_url: str = "sqlite+aiosqlite:///./data/testbed.db"
    listeners: list[ListenerSettings] = Field(default_factory=lambda: [ListenerSettings()])
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    models_dir: str | None = None
    # Seconds a registration outlives its lifetime before it expires (Core §6.2.2 leaves it open).
    lifetime_grace: float = 15.0
    # How often expired registrations are swept.
    expiry_sweep_interval: float = 1.0
    # Default timeout of a downlink request (read, write, ...), seconds.
    request_timeout: float = 25.0
    # Largest accepted request body on the CoAP side and the HTTP side, bytes.
    max_payload: int = 64 * 1024
    api_key: str | None = None
