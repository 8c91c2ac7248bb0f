"""The one package that may import both `server` and `emulator`: it composes them.

It holds the command line, the single composition root (`testbed.cloud`), the pytest plugin and
test kit, the demo and the module hosting the console drives.
"""
