"""The emulated OneMO module: MIPL AT command state machine, model capability table, clock.

Public surface: `Module`, the client boundary (`ClientPort`, `ClientConfig`, `Notification`,
`Release`, `ClientEvents`, `ClientOwner`, `ClientFactory`), time (`Scheduler`, `ManualClock`,
`AsyncioScheduler`) and the capability table (`MODELS`, `ModelCapabilities`).
"""

from emulator.module.clock import AsyncioScheduler, Handle, ManualClock, Scheduler
from emulator.module.models import MODELS, ModelCapabilities, capabilities
from emulator.module.module import Module
from emulator.module.ports import (
    ClientConfig,
    ClientEvents,
    ClientFactory,
    ClientOwner,
    ClientPort,
    Notification,
    Release,
)

__all__ = [
    "MODELS",
    "AsyncioScheduler",
    "ClientConfig",
    "ClientEvents",
    "ClientFactory",
    "ClientOwner",
    "ClientPort",
    "Handle",
    "ManualClock",
    "ModelCapabilities",
    "Module",
    "Notification",
    "Release",
    "Scheduler",
    "capabilities",
]
