"""CoAP edge of the server: the only place that imports aiocoap (and mbedtls, in `dtls`).

It translates CoAP messages into the typed requests of `server.services.requests` and back.
"""
