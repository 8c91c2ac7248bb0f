"""Test kit for users of the testbed: a private carrier cloud and emulated modules driven from
synchronous test code (the pytest plugin in `testbed.pytest_plugin` hands these out as fixtures).

Design choices:
- The cloud (LwM2M server, OneNET-compatible HTTP API) and its modules run on their own event loop
  in a background thread, so a test may block — a pyserial read, a synchronous httpx call — while
  the cloud keeps answering. Every public method is synchronous and thread-safe.
- Nothing binds a fixed address that another test process could hold: CoAP and HTTP use ephemeral
  ports, and the carrier listeners (which must sit on port 5683, where module firmware sends its
  traffic) get a loopback address of their own per cloud (`addresses`). Carrier host names resolve
  per cloud through the `hosts` map handed to each module.
- Part of the composition package `testbed`, which alone imports both halves of the testbed
  (server and emulator); the cloud is built by `testbed.cloud.Cloud`, the one composition root.
  It is imported only when a fixture is used.
"""

from __future__ import annotations

from testbed.testkit.cloud import CarrierProduct, PrivateCloud
from testbed.testkit.module import Module, ModuleFactory

__all__ = ["CarrierProduct", "Module", "ModuleFactory", "PrivateCloud"]
