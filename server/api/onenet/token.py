"""OneNET's `authorization` token (the API's security authentication, version 2018-10-31):

    authorization: version=2018-10-31&res=products%2F{pid}&et={unix expiry}&method=sha1&sign={sign}
    sign = Base64(HMAC_<method>(Base64Decode(accessKey), et + "\\n" + method + "\\n" + res + "\\n" + version))

with `method` one of md5, sha1, sha256 and every value URL-encoded in the header (the sign's `+`,
`/`, `=` as %2B, %2F, %3D). accessKey is the product's key (its `master_key` here). Pure: parsing
and checking; the lookup of the product is the caller's (server.api.deps).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import unquote

VERSION = "2018-10-31"
METHODS = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256}
PRODUCT_RES = "products/"


class TokenError(ValueError):
    """The token is refused; the text says why."""


@dataclass(frozen=True, slots=True)
class Token:
    version: str
    res: str
    et: int
    method: str
    sign: str

    @property
    def product_id(self) -> str:
        return self.res[len(PRODUCT_RES) :]


def parse_token(text: str) -> Token:
    """The token of an `authorization` header value (values percent-decoded; a `+` stays `+`)."""
    fields: dict[str, str] = {}
    for part in text.strip().split("&"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip()] = unquote(value.strip())
    missing = [n for n in ("version", "res", "et", "method", "sign") if not fields.get(n)]
    if missing:
        raise TokenError(f"token lacks {', '.join(missing)}")
    if fields["version"] != VERSION:
        raise TokenError(f"token version must be {VERSION}")
    if fields["method"] not in METHODS:
        raise TokenError("token method must be md5, sha1 or sha256")
    if not fields["et"].isdigit():
        raise TokenError("token et must be a unix time")
    if not fields["res"].startswith(PRODUCT_RES) or "/" in fields["res"][len(PRODUCT_RES) :]:
        raise TokenError("token res must be products/{product id}")
    return Token(fields["version"], fields["res"], int(fields["et"]), fields["method"], fields["sign"])


def signature(access_key: str, et: int, method: str, res: str, version: str = VERSION) -> str:
    """Base64 of the HMAC over the string to sign; TokenError when the key is not Base64."""
    try:
        key = base64.b64decode(access_key, validate=True)
    except (binascii.Error, ValueError):
        raise TokenError("the product key is not Base64: issue the product a new key") from None
    text = f"{et}\n{method}\n{res}\n{version}".encode()
    return base64.b64encode(hmac.new(key, text, METHODS[method]).digest()).decode()


def check_token(token: Token, access_key: str, now: float) -> None:
    """Raise TokenError unless `token` is unexpired and signed with `access_key`."""
    if token.et < now:
        raise TokenError("token expired")
    expected = signature(access_key, token.et, token.method, token.res, token.version)
    if not hmac.compare_digest(expected.encode(), token.sign.encode()):
        raise TokenError("token signature does not match")
