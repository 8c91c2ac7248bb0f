"""Carrier profiles (OneNET, CTWing, Yanfei, Huawei, custom) and the policy that applies them by
listener. See `server.carriers.base` for the rules and `server.carriers.policy` for the wiring."""

from __future__ import annotations

from typing import Final

from server.carriers.base import CarrierProfile, CarrierRules, Refusal
from server.carriers.ctwing import CtwingProfile
from server.carriers.custom import CustomProfile
from server.carriers.huawei import HuaweiProfile
from server.carriers.onenet import OneNetProfile
from server.carriers.yanfei import YanfeiProfile

# `ListenerSettings.carrier` of a custom listener that admits only provisioned devices (devices
# of "custom" products): the custom profile configured strict.
STRICT_CUSTOM: Final = "custom-strict"


def default_profiles() -> dict[str, CarrierProfile]:
    """One profile per carrier name of `ListenerSettings.carrier` (and `Product.carrier`), plus
    the strict custom listener's (`STRICT_CUSTOM`)."""
    profiles: list[CarrierProfile] = [
        OneNetProfile(),
        CtwingProfile(),
        YanfeiProfile(),
        HuaweiProfile(),
        CustomProfile(),
    ]
    return {**{p.name: p for p in profiles}, STRICT_CUSTOM: CustomProfile(strict=True)}


PLATFORM_CARRIERS: dict[int, str] = {0: "onenet", 1: "ctwing", 2: "yanfei", 3: "huawei", 10: "custom"}

__all__ = [
    "PLATFORM_CARRIERS",
    "STRICT_CUSTOM",
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
