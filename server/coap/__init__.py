"""CoAP edge of the server: with the shared `transport` package, the only place that imports
aiocoap (and mbedtls, in `dtls`).

It translates CoAP messages into the typed requests of `server.services.requests` and back.
"""

import os

# aiocoap binds its UDP sockets with SO_REUSEPORT unless told otherwise. With it, a second server
# would silently share port 5683 with the first, and bind(port 0) may hand out a port another
# socket of ours already holds, crossing a client's traffic with a server's. We want neither.
os.environ.setdefault("AIOCOAP_REUSE_PORT", "0")

# Imported after the environment is set: it imports aiocoap.
from transport import aiocoap_addresses

aiocoap_addresses.install()
