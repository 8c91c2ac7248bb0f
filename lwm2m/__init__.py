"""Pure LwM2M core shared by the server and the emulator: paths, typed nodes, object model, codecs.

Nothing in this package does I/O or imports aiocoap, SQLAlchemy or FastAPI.
"""
