"""HTTP data push, OneNET style: the platform is the HTTP client of the application's receiver.

URL check (on adding a receiver): `GET url?msg=<random>&nonce=<8 chars>&signature=<sig>` with
sig = Base64(MD5(token + nonce + msg)), the Base64 text put into the query as is; the receiver
must answer the `msg` value.

Delivery: `POST url` with body `{"msg": {...}, "msg_signature": sig, "nonce": n}`, where sig =
Base64(MD5(token + nonce + msg as compact JSON)), and the body carries the msg in exactly that
compact form, so a receiver may verify either the raw text or its own compact re-serialisation.
Messages: type 1 data point `{type, dev_id, ds_id, at (ms), value}` (stream id `<obj>_<inst>_<res>`,
opaque values as arrays of byte values); type 2 online/offline `{type, dev_id, status, login_type
10, at}`; type 7 cached-command result (built by `server.services.offline_commands`).

Design choices: each message is one POST (OneNET may batch; a single message is the simplest
receivers handle). A receiver must answer 2xx within `timeout` (5 s); anything else is retried
`attempts - 1` more times with exponential backoff (`backoff`, 2·backoff, ...). Every message's
outcome lands in the delivery log (`push_deliveries`) with its status and a short reason
("timeout", "connection failed", "HTTP 503", a policy refusal), never a raw connection error.
Each receiver is isolated from the others (`PushService`): its own bounded queue, connection
pool and backoff. Receivers added by product keys must pass the push policy
(`server.services.push_policy`). The bodies (signature, encryption, value forms) are built by
`server.services.push_messages`.

Encrypted delivery (a receiver added with an EncodingAESKey, 43 Base64 characters): the body is
`{"enc_msg": e, "msg_signature": sig, "nonce": n}` with sig = Base64(MD5(token + nonce + e)) and
e = Base64(AES-256-CBC(key, IV = key[:16], PKCS#7(16 random bytes + u32 big-endian length of msg
+ msg))), key = Base64Decode(EncodingAESKey + "="), msg the compact JSON (platforms.md "HTTP push").
AES comes from python-mbedtls (already the DTLS dependency; its CBC mode pads nothing, so PKCS#7
is done here). The key lives on the `PushTarget`; it is written to the store only when the
`push_targets` table has an `aes_key` column (until a migration adds one, an encrypted receiver
must be added again after a restart).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from server.event_kinds import EventKind
from server.events import Event
from server.services.errors import BadArgument
from server.services.ports import ServerApi
from server.services.provisioning import Device
from server.services.push_messages import (
    aes_key_bytes,
    encrypted_body,
    new_nonce,
    push_value,
    sign,
    signed_body,
    stream_id,
)
from server.services.push_policy import PushPolicy, policy_for
from server.store import tables
from server.store.api_repository import ApiRepository

log = logging.getLogger(__name__)

DATA_EVENTS = (
    EventKind.NOTIFICATION,
    EventKind.SEND,
    EventKind.REQUEST_READ,
    EventKind.REQUEST_READ_COMPOSITE,
)
ONLINE_EVENTS: dict[str, int] = {
    EventKind.REGISTRATION_REGISTERED: 1,
    EventKind.REGISTRATION_DEREGISTERED: 0,
    EventKind.REGISTRATION_EXPIRED: 0,
}
# Firmware updates (`fota.device`): OneNET documents no push message for them (README, "Firmware
# updates"), so they go out with a type of the testbed's own. The object's State and Update Result
# reach receivers as OneNET data messages anyway (datastreams 5_0_3 and 5_0_5, observed by the task).
FOTA_EVENT = EventKind.FOTA_DEVICE
FOTA_MESSAGE_TYPE = 100
FOTA_FIELDS = ("task_id", "status", "percent", "bytes", "update_result", "update_result_meaning", "reason")


@dataclass(frozen=True, slots=True)
class PushTarget:
    id: int
    url: str
    token: str
    product_id: str | None
    enabled: bool
    created_at: float
    # OneNET's EncodingAESKey; None = plain `msg` deliveries.
    aes_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["aes_key"] = None if self.aes_key is None else "***"  # a secret, like the token's use
        data["encrypted"] = self.aes_key is not None
        return data

    @property
    def restricted(self) -> bool:
        """A product's receiver: its URL must pass the push policy before every delivery."""
        return self.product_id is not None

    def wants(self, device: Device | None) -> bool:
        if not self.enabled:
            return False
        return self.product_id is None or (device is not None and device.product_id == self.product_id)


@dataclass(slots=True)
class _Lane:
    """One receiver's own delivery lane: its bounded queue, HTTP client (connection pool) and
    workers. Nothing of one lane waits for another's."""

    target: PushTarget
    client: httpx.AsyncClient
    queue: deque[tuple[dict[str, Any], float]] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    busy: int = 0
    dropped: int = 0
    drops_recorded: int = 0
    drops_recorded_at: float = 0.0
    failures_in_row: int = 0


DROP_RECORD_INTERVAL = 1.0


def failure_reason(exc: BaseException) -> str:
    """The short reason a delivery failed, as a receiver's owner sees it (no raw errors)."""
    if isinstance(exc, BadArgument):
        return str(exc)[:120]
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, httpx.InvalidURL | ValueError):
        return "invalid URL"
    return "request failed"


class PushService:
    """Deliveries per receiver, isolated: each receiver has its own queue (at most `queue_size`
    messages; when full, the oldest is dropped and counted), its own connection pool (at most
    `connections` connections, as many workers), a `timeout` per request and a backoff of its
    own (`backoff`, 2·backoff, … up to `max_backoff`) after a failure, so a hanging or slow
    receiver delays only its own messages. Memory is bounded by `max_targets` × `queue_size`
    queued messages (default 50 × 1,000; a message is a small dict of well under 1 KiB, so well
    under 50 MiB), whatever the rate of events."""

    def __init__(
        self,
        server: ServerApi,
        *,
        attempts: int = 3,
        backoff: float = 1.0,
        timeout: float = 5.0,
        queue_size: int = 1000,
        connections: int = 2,
        max_backoff: float = 30.0,
        max_targets: int = 50,
        policy: PushPolicy | None = None,
    ) -> None:
        self.server = server
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.queue_size = queue_size
        self.connections = connections
        self.max_backoff = max_backoff
        self.max_targets = max_targets
        self.policy = policy
        self._targets: dict[int, PushTarget] = {}
        self._lanes: dict[int, _Lane] = {}
        self._went_idle = asyncio.Event()
        self._repo: ApiRepository | None = None
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    @property
    def repo(self) -> ApiRepository:
        if self._repo is None:
            raise RuntimeError("push service not started")
        return self._repo

    async def start(self) -> None:
        if self.policy is None:
            self.policy = policy_for(self.server)
        self._repo = ApiRepository(self.server.store)
        for row in await self.repo.targets():
            target = PushTarget(**row)
            self._targets[target.id] = target
            self._open_lane(target)
        self.server.bus.add_listener(self._on_event)

    async def stop(self) -> None:
        for lane in list(self._lanes.values()):
            await self._close_lane(lane)
        self._lanes.clear()

    def _idle(self) -> bool:
        return not any(lane.queue or lane.busy for lane in self._lanes.values())

    async def drain(self) -> None:
        """Wait until every message queued so far was delivered or given up."""
        while not self._idle():
            self._went_idle.clear()
            await self._went_idle.wait()

    def queued(self) -> int:
        """Messages waiting in every receiver's queue."""
        return sum(len(lane.queue) for lane in self._lanes.values())

    def _policy(self) -> PushPolicy:
        if self.policy is None:
            self.policy = policy_for(self.server)
        return self.policy

    def _open_lane(self, target: PushTarget) -> _Lane:
        client = httpx.AsyncClient(
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=self.connections, max_keepalive_connections=self.connections),
        )
        lane = _Lane(target, client)
        lane.workers = [
            asyncio.get_running_loop().create_task(self._work(lane), name=f"push-{target.id}-{n}")
            for n in range(self.connections)
        ]
        self._lanes[target.id] = lane
        return lane

    async def _close_lane(self, lane: _Lane) -> None:
        for worker in lane.workers:
            worker.cancel()
        await asyncio.gather(*lane.workers, return_exceptions=True)
        await lane.client.aclose()

    # --- receivers -----------------------------------------------------------------------------

    def targets(self) -> list[PushTarget]:
        return list(self._targets.values())

    async def verify(self, url: str, token: str) -> bool:
        """OneNET's URL check: the receiver must answer the `msg` it was sent."""
        msg = secrets.token_hex(8)
        nonce = new_nonce()
        sep = "&" if "?" in url else "?"
        check = f"{url}{sep}msg={msg}&nonce={nonce}&signature={sign(token, nonce, msg)}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(check)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            log.info("push URL check of %s failed: %s", url, exc)
            return False
        return response.status_code == 200 and response.text.strip() == msg

    async def add_target(
        self,
        url: str,
        token: str,
        *,
        product_id: str | None = None,
        verify: bool = True,
        aes_key: str | None = None,
    ) -> PushTarget:
        """Add a receiver (`aes_key`: its EncodingAESKey for encrypted deliveries). A product's
        receiver must pass the push policy (`server.services.push_policy`), before its URL check
        and before every delivery."""
        if not url.startswith(("http://", "https://")):
            raise BadArgument("push URL must be http:// or https://")
        if len(self._targets) >= self.max_targets:
            raise BadArgument(f"at most {self.max_targets} push receivers")
        if product_id is not None:
            await self._policy().check_url(url)
        if not (1 <= len(token) <= 64):
            raise BadArgument("token must be 1-64 characters")
        if aes_key is not None:
            aes_key_bytes(aes_key)  # validated before anything is stored
        if verify and not await self.verify(url, token):
            raise BadArgument("the receiver did not pass the URL check")
        row: dict[str, Any] = {
            "url": url,
            "token": token,
            "product_id": product_id,
            "enabled": True,
            "created_at": time.time(),
        }
        if aes_key is not None and "aes_key" in tables.push_targets.c:
            row["aes_key"] = aes_key
        target_id = await self.repo.insert_target(row)
        target = PushTarget(id=target_id, **{**row, "aes_key": aes_key})
        self._targets[target_id] = target
        self._open_lane(target)
        return target

    async def remove_target(self, target_id: int) -> bool:
        if self._targets.pop(target_id, None) is None:
            return False
        lane = self._lanes.pop(target_id, None)
        if lane is not None:
            await self._close_lane(lane)
        await self.repo.delete_target(target_id)
        return True

    async def deliveries(self, target_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return await self.repo.deliveries(target_id, limit)

    # --- messages ------------------------------------------------------------------------------

    def publish(self, msg: dict[str, Any], device: Device | None) -> None:
        """Queue `msg` for every receiver that wants messages of `device` (a full queue drops
        its oldest message)."""
        now = time.time()
        for lane in self._lanes.values():
            if lane.target.wants(device):
                if len(lane.queue) >= self.queue_size:
                    lane.queue.popleft()
                    lane.dropped += 1
                    self.dropped += 1
                    self._record_drops(lane, now)
                lane.queue.append((msg, now))
                lane.ready.set()

    def messages_of(self, event: Event, device: Device) -> list[dict[str, Any]]:
        """The OneNET push messages an event stands for."""
        at_ms = int(event.time * 1000)
        if event.kind in ONLINE_EVENTS:
            return [
                {
                    "type": 2,
                    "dev_id": device.id,
                    "status": ONLINE_EVENTS[event.kind],
                    "login_type": 10,
                    "at": at_ms,
                }
            ]
        if event.kind in DATA_EVENTS:
            messages = []
            for entry in event.data.get("values") or []:
                ds = stream_id(str(entry.get("path", "")))
                if ds is None:
                    continue
                measured = entry.get("time")
                at = int(measured * 1000) if isinstance(measured, int | float) else at_ms
                messages.append(
                    {
                        "type": 1,
                        "dev_id": device.id,
                        "ds_id": ds,
                        "at": at,
                        "value": push_value(entry.get("value")),
                    }
                )
            return messages
        if event.kind == FOTA_EVENT:
            fota = {k: event.data.get(k) for k in FOTA_FIELDS if event.data.get(k) is not None}
            return [{"type": FOTA_MESSAGE_TYPE, "dev_id": device.id, "at": at_ms, "fota": fota}]
        return []

    def _on_event(self, event: Event) -> None:
        if not self._targets or event.endpoint is None:
            return
        if event.kind not in ONLINE_EVENTS and event.kind not in DATA_EVENTS and event.kind != FOTA_EVENT:
            return
        device = self.server.device_of(event.endpoint)
        if device is None:
            return
        for msg in self.messages_of(event, device):
            self.publish(msg, device)

    def _record_drops(self, lane: _Lane, now: float) -> None:
        """At most one delivery record a second tells how many messages a full queue dropped."""
        if now - lane.drops_recorded_at < DROP_RECORD_INTERVAL:
            return
        count = lane.dropped - lane.drops_recorded
        lane.drops_recorded, lane.drops_recorded_at = lane.dropped, now
        self.repo.submit_delivery(
            {
                "target_id": lane.target.id,
                "body": {"dropped": count},
                "status": "dropped",
                "attempts": 0,
                "http_status": None,
                "error": f"queue full: {count} message(s) dropped",
                "created_at": now,
                "finished_at": now,
            }
        )

    async def _work(self, lane: _Lane) -> None:
        while True:
            while not lane.queue:
                lane.ready.clear()
                await lane.ready.wait()
            msg, created = lane.queue.popleft()
            lane.busy += 1
            try:
                await self._deliver(lane, msg, created)
            except Exception:
                log.exception("push delivery to receiver %s failed", lane.target.id)
            finally:
                lane.busy -= 1
                if not lane.queue and not lane.busy and self._idle():
                    self._went_idle.set()

    async def _deliver(self, lane: _Lane, msg: dict[str, Any], created: float) -> None:
        target = lane.target
        if target.aes_key is not None:
            body = encrypted_body(target.token, target.aes_key, msg)
        else:
            body = signed_body(target.token, msg)
        status: int | None = None
        error: str | None = None
        attempt = 0
        for attempt in range(1, self.attempts + 1):
            try:
                if target.restricted:
                    await self._policy().check_url(target.url)
                response = await lane.client.post(
                    target.url, content=body.encode("utf-8"), headers={"Content-Type": "application/json"}
                )
                status = response.status_code
                if 200 <= status < 300:
                    error = None
                    break
                error = f"HTTP {status}"
            except (httpx.HTTPError, httpx.InvalidURL, ValueError, BadArgument) as exc:
                status, error = None, failure_reason(exc)
            lane.failures_in_row += 1
            if attempt < self.attempts:
                await asyncio.sleep(min(self.max_backoff, self.backoff * 2 ** (lane.failures_in_row - 1)))
        ok = error is None
        if ok:
            self.delivered += 1
            lane.failures_in_row = 0
        else:
            self.failed += 1
        self.repo.submit_delivery(
            {
                "target_id": target.id,
                "body": msg,
                "status": "delivered" if ok else "failed",
                "attempts": attempt,
                "http_status": status,
                "error": error,
                "created_at": created,
                "finished_at": time.time(),
            }
        )
