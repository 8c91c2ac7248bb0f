"""Table definitions. The schema itself is created by the Alembic migrations in `migrations/`;
these definitions must match the head revision (a test compares them)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# Big integer ids that still autoincrement on SQLite (where only INTEGER PRIMARY KEY does).
BigId = BigInteger().with_variant(Integer(), "sqlite")

products = Table(
    "products",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("carrier", String(32), nullable=False),
    Column("master_key", String(64), nullable=False, unique=True),
    Column("attributes", JSON, nullable=False, default=dict),
    Column("created_at", Float, nullable=False),
)

# A device is either provisioned through the API (product, IMEI, ...; endpoint known once it
# registers) or seen first as a registering endpoint at a listener that accepts anybody.
devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint", String(255), nullable=True, unique=True),
    Column("carrier", String(32), nullable=False, default="custom"),
    Column("attributes", JSON, nullable=False, default=dict),
    Column("created_at", Float, nullable=False),
    Column("product_id", String(32), nullable=True, index=True),
    Column("title", String(255), nullable=True),
    Column("imei", String(32), nullable=True, index=True),
    Column("imsi", String(32), nullable=True),
    Column("auth_code", String(32), nullable=True),
    Column("obsv", Boolean, nullable=False, default=True),
    Column("api_key", String(64), nullable=True, unique=True),
)

registrations = Table(
    "registrations",
    metadata,
    Column("registration_id", String(64), primary_key=True),
    Column("endpoint", String(255), nullable=False, unique=True),
    Column("listener", String(64), nullable=False),
    Column("host", String(64), nullable=False),
    Column("port", Integer, nullable=False),
    Column("lifetime", Integer, nullable=False),
    Column("binding", String(8), nullable=False),
    Column("lwm2m_version", String(8), nullable=False),
    Column("queue_mode", Boolean, nullable=False),
    Column("sms", String(64), nullable=True),
    Column("root_path", String(255), nullable=False),
    Column("object_links", Text, nullable=False),
    Column("secure_identity", String(255), nullable=True),
    Column("registered_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

latest_values = Table(
    "latest_values",
    metadata,
    Column("endpoint", String(255), primary_key=True),
    Column("path", String(64), primary_key=True),
    Column("type", String(24), nullable=False),
    Column("value", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

datapoints = Table(
    "datapoints",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("endpoint", String(255), nullable=False),
    Column("path", String(64), nullable=False),
    Column("type", String(24), nullable=False),
    Column("value", JSON, nullable=False),
    Column("measured_at", Float, nullable=True),
    Column("received_at", Float, nullable=False),
    Column("source", String(16), nullable=False),
    Index("ix_datapoints_endpoint_path_received", "endpoint", "path", "received_at"),
)

observations = Table(
    "observations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint", String(255), nullable=False, index=True),
    Column("paths", JSON, nullable=False),
    Column("composite", Boolean, nullable=False, default=False),
    Column("content_format", Integer, nullable=True),
    Column("attributes", JSON, nullable=False, default=dict),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", Float, nullable=False),
    # The live observation's CoAP token (hex): a cluster node learns other nodes' tokens from it.
    Column("token", String(16), nullable=True),
)

pending_requests = Table(
    "pending_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint", String(255), nullable=False, index=True),
    Column("operation", String(32), nullable=False),
    Column("params", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("result", JSON, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("completed_at", Float, nullable=True),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("endpoint", String(255), nullable=True, index=True),
    Column("kind", String(64), nullable=False),
    Column("data", JSON, nullable=False),
)

# DTLS pre-shared keys live in `devices.attributes` (migration 0005 moved the former
# `psk_credentials` rows there): see server.services.directory.

# --- northbound API (migration 0004) ------------------------------------------------------------

# OneNET cached ("offline") commands: delivered on the device's next matching uplink.
offline_commands = Table(
    "offline_commands",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("device_id", Integer, nullable=False, index=True),
    Column("imei", String(32), nullable=True),
    Column("cmd_type", String(16), nullable=False),
    Column("params", JSON, nullable=False),
    Column("valid_time", Float, nullable=False),
    Column("expired_time", Float, nullable=False),
    Column("retry", Integer, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("timeout", Float, nullable=False),
    Column("trigger_msg", Integer, nullable=False),
    Column("send_status", Integer, nullable=False),
    Column("send_time", Float, nullable=True),
    Column("confirm_time", Float, nullable=True),
    Column("confirm_status", Integer, nullable=True),
    Column("confirm_body", JSON, nullable=True),
    Column("created_at", Float, nullable=False),
)

# HTTP push receivers (OneNET "data push"), optionally limited to one product.
push_targets = Table(
    "push_targets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("token", String(64), nullable=False),
    Column("product_id", String(32), nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", Float, nullable=False),
    Column("aes_key", String(43), nullable=True),  # OneNET's EncodingAESKey: encrypted deliveries
)

push_deliveries = Table(
    "push_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("target_id", Integer, nullable=False, index=True),
    Column("body", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
)


# Firmware packages (migration 0007): the file lives under `Settings.firmware_dir`.
firmware = Table(
    "firmware",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("product_id", String(32), nullable=True, index=True),
    Column("version", String(64), nullable=False),
    Column("models", JSON, nullable=False, default=list),
    Column("filename", String(255), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

# Firmware update tasks and their devices (migration 0007).
fota_tasks = Table(
    "fota_tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("firmware_id", Integer, nullable=False, index=True),
    Column("product_id", String(32), nullable=True),
    Column("method", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("options", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
)

fota_devices = Table(
    "fota_devices",
    metadata,
    Column("task_id", Integer, primary_key=True),
    Column("endpoint", String(255), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("details", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Cluster (server.cluster): which node owns each registered endpoint's transport, and the nodes'
# heartbeats. Single-process servers leave both empty.
registration_owners = Table(
    "registration_owners",
    metadata,
    Column("endpoint", String(255), primary_key=True),
    Column("node_id", String(64), nullable=False, index=True),
    Column("registration_id", String(64), nullable=False),
    Column("claimed_at", Float, nullable=False),
)

cluster_nodes = Table(
    "cluster_nodes",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("http_url", Text, nullable=True),
    Column("coap", JSON, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)
