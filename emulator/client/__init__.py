"""The LwM2M client underneath an emulated module: registration, bootstrap, answering the server."""

import os

# See server/coap/__init__.py: no SO_REUSEPORT, so that ephemeral ports are never shared.
os.environ.setdefault("AIOCOAP_REUSE_PORT", "0")

# Imported after the environment is set: it imports aiocoap.
from transport import aiocoap_addresses

aiocoap_addresses.install()
