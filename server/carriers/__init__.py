"""Carrier profiles (OneNET, CTWing, Yanfei, Huawei, custom) and the policy that applies them by
listener. See `server.carriers.base` for the rules and `server.carriers.policy` for the wiring."""

from __future__ import annotations

from server.carriers.base import CarrierProfile, CarrierRules, Refusal
from server.carriers.ctwing import CtwingProfile
from server.carriers.custom import CustomProfile
from server.carriers.huawei import HuaweiProfile
from server.carriers.onenet import OneNetProfile
from server.carriers.yanfei import YanfeiProfile


def default_profiles() -> dict[str, CarrierProfile]:
    """One profile per carrier name of `ListenerSettings.carrier` (and `Product.carrier`)."""
    profiles: list[CarrierProfile] = [
        OneNetProfile(),
        CtwingProfile(),
        YanfeiProfile(),
        HuaweiProfile(),
        CustomProfile(),
    ]
    return {p.name: p for p in profiles}


PLATFORM_CARRIERS: dict[int, str] = {0: "onenet", 1: "ctwing", 2: "yanfei", 3: "huawei", 10: "custom"}

__all__ = [
    "PLATFORM_CARRIERS",
    "CarrierProfile",
    "CarrierRules",
    "CtwingProfile",
    "CustomProfile",
    "HuaweiProfile",
    "OneNetProfile",
    "Refusal",
    "YanfeiProfile",
    "default_profiles",
]
