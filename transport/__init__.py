"""The transport edge: what both the server and the emulator need from aiocoap and mbedtls.

The pure core (`lwm2m`) imports neither library; `server.coap` and `emulator.client` are the CoAP
edges and import this package for what they share: aiocoap address patching, DTLS constants and
mbedtls plumbing, and the loopback address plan. Nothing here imports `server`, `emulator` or
`testbed`.
"""
