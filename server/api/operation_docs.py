"""What the API documentation says about each operation (used by server.api.docs): the areas
(tags), a summary and description per operation whose route has no docstring, and request and
response examples taken from the module manual's chapter 5 and OneNET's documentation.

A route's own docstring wins over `OPERATIONS`; a route added without either fails the test that
every operation is documented (tests/integration/test_api_docs.py), so add one here or there.
"""

from __future__ import annotations

from typing import Any

# Area tags, in the order the documentation lists them.
TAGS: dict[str, str] = {
    "OneNET devices": "Create, find, update and delete devices as on api.heclouds.com (manual §5.2: "
    "`POST /devices` with `auth_info: {IMEI: IMSI}`).",
    "OneNET resources": "Read, write, execute, observe and discover a device's LwM2M resources "
    "(`/nbiot…`); the device must be online.",
    "OneNET cached commands": "Commands kept for a device that is offline or asleep, sent when it "
    "is next heard (`/nbiot/offline…`).",
    "OneNET PSKs": "DTLS pre-shared keys of a device: the bootstrap PSK and the LwM2M server "
    "(access) PSK (manual §5.2).",
    "OneNET datapoints": "The values a device reported, as OneNET's datapoint history.",
    "OneNET API": "Further OneNET-compatible routes.",
    "Overview": "Counts and recent activity of the whole cloud (the console's first page).",
    "Products": "Products: one carrier each, with the master key that sees its devices.",
    "Devices": "Provisioned devices and registered endpoints, their PSKs, values and events.",
    "Device management": "LwM2M operations on a live device: Read, Write, Execute, Discover, "
    "Write-Attributes, Observe and Cancel.",
    "HTTP push": "Targets that receive every uplink as OneNET's HTTP data push, and the delivery log.",
    "Live events": "Server-sent events and WebSocket streams of what happens.",
    "Emulated modules": "OneMO modules emulated inside the cloud, with their AT terminal.",
    "Firmware updates": "Firmware packages and update tasks over LwM2M object 5 (pull over CoAP or "
    "HTTP, push), with per-device progress.",
    "Cluster": "The server nodes of a cluster on PostgreSQL and NATS, and their liveness.",
    "Native API": "Further routes of the native API.",
}

# (regular expression on the path, area); the first match wins.
AREAS: list[tuple[str, str]] = [
    (r"^/nbiot/(execute/)?offline", "OneNET cached commands"),
    (r"^/nbiot/device/", "OneNET PSKs"),
    (r"^/nbiot", "OneNET resources"),
    (r"^/devices/[^/]+/datapoints", "OneNET datapoints"),
    (r"^/devices", "OneNET devices"),
    (r"^/api/v1/overview", "Overview"),
    (r"^/api/v1/products", "Products"),
    (
        r"^/api/v1/devices/\{[^}]+\}/(read|write|execute|discover|write-attributes|observe"
        r"|cancel-observation|observations)",
        "Device management",
    ),
    (r"^/api/v1/devices", "Devices"),
    (r"^/api/v1/push", "HTTP push"),
    (r"^/api/v1/(events|ws)", "Live events"),
    (r"^/api/v1/modules", "Emulated modules"),
    (r"^/api/v1/(firmware|fota)", "Firmware updates"),
    (r"^/api/v1/cluster", "Cluster"),
]

_IMEI = "IMEI of the device (query `imei`)."
_ONLINE = "The device must be online (registered, awake); otherwise errno 10 `device not online`."

# (METHOD, path) -> (summary, description), for routes without a docstring.
OPERATIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("POST", "/devices"): (
        "Create a device",
        "Creates an LwM2M device in the product of the key: `auth_info` is one `{IMEI: IMSI}` pair, "
        "`psk` (8-16 letters and digits) the bootstrap PSK for DTLS (manual §5.2). Answers the "
        "new `device_id`.",
    ),
    ("GET", "/devices/status"): (
        "Online status of several devices",
        "`devIds` is a comma-separated list of device ids; answers each device's online state "
        "and last registration time. Devices the key may not see are left out.",
    ),
    ("GET", "/devices/getbyimei"): ("Find a device by IMEI", "Answers the device with this IMEI. " + _IMEI),
    ("GET", "/devices/{device_id}"): (
        "Get a device",
        "Title, protocol, `auth_info`, online state, creation time and the OneNET attributes.",
    ),
    ("PUT", "/devices/{device_id}"): (
        "Update a device",
        "Changes the title, description, tags, location, `obsv` or `auth_info` of a device.",
    ),
    ("DELETE", "/devices/{device_id}"): (
        "Delete a device",
        "Removes the device, its PSKs and cached commands; a registered device is de-registered.",
    ),
    ("GET", "/devices/{device_id}/datapoints"): (
        "Datapoint history",
        "The values the device reported, per datastream (`{obj_id}_{obj_inst_id}_{res_id}`), "
        "between `start` and `end` (`2017-01-01T00:00:00`), newest last; `cursor` pages on.",
    ),
    ("GET", "/nbiot"): (
        "Read resources",
        "LwM2M Read of an object, an instance (`obj_inst_id`) or a resource (`res_id`); answers the "
        "values grouped by instance. " + _ONLINE,
    ),
    ("POST", "/nbiot"): (
        "Write resources",
        "LwM2M Write of resources of one instance: `mode` 1 replaces the instance, 2 updates "
        "the given resources. " + _ONLINE,
    ),
    ("POST", "/nbiot/execute"): (
        "Execute a resource",
        "LwM2M Execute of `/obj_id/obj_inst_id/res_id` with optional `args`. " + _ONLINE,
    ),
    ("POST", "/nbiot/observe"): (
        "Observe or cancel",
        "Starts (`cancel=false`) or cancels an observation of an object, instance or resource; "
        "`pmin`, `pmax`, `gt`, `lt`, `st` are written as attributes first. Notifications go to "
        "the HTTP push targets and the datapoint history. " + _ONLINE,
    ),
    ("GET", "/nbiot/discover"): (
        "Discover resources",
        "LwM2M Discover of an object: the instances and resources the device has, with their "
        "attributes. " + _ONLINE,
    ),
    ("GET", "/nbiot/resources"): (
        "Resources of a device",
        "The objects, instances and resources the device declared at registration, as OneNET "
        "lists them (no request to the device).",
    ),
    ("GET", "/nbiot/offline"): (
        "Cache a read",
        "Keeps a Read for a device that is offline or asleep and sends it when the device is "
        "next heard; answers the command's `uuid`. `valid_time` and `expired_time` bound when it may "
        "be sent, `retry` and `trigger_msg` how.",
    ),
    ("POST", "/nbiot/offline"): (
        "Cache a write",
        "Keeps a Write (body as `POST /nbiot`) until the device is next heard; answers the `uuid`.",
    ),
    ("POST", "/nbiot/execute/offline"): (
        "Cache an execute",
        "Keeps an Execute until the device is next heard; answers the `uuid`.",
    ),
    ("GET", "/nbiot/offline/history"): (
        "Cached commands of a device",
        "The cached commands of a device with their state (waiting, sent, answered, failed, "
        "expired, cancelled), paged.",
    ),
    ("GET", "/nbiot/offline/history/{uuid}"): (
        "One cached command",
        "State, times and answer of one cached command.",
    ),
    ("PUT", "/nbiot/offline/cancel/all"): (
        "Cancel all cached commands",
        "Cancels every cached command of the device that has not been sent yet.",
    ),
    ("PUT", "/nbiot/offline/cancel/{uuid}"): (
        "Cancel a cached command",
        "Cancels one cached command that has not been sent yet.",
    ),
    ("GET", "/nbiot/device/psk"): (
        "Get the bootstrap PSK",
        "The bootstrap-server PSK of the device. " + _IMEI,
    ),
    ("PUT", "/nbiot/device/psk"): (
        "Set the bootstrap PSK",
        "Sets the bootstrap-server PSK (`key`, 8-16 letters and digits) of the device. " + _IMEI,
    ),
    ("GET", "/nbiot/device/accpsk"): (
        "Get the access PSK",
        "The LwM2M-server (access) PSK of the device: the one a bootstrap handed out, or the one set. "
        + _IMEI,
    ),
    ("PUT", "/nbiot/device/accpsk"): (
        "Set the access PSK",
        "Sets the LwM2M-server PSK (`key`) for a device that connects without bootstrap (manual §5.2).",
    ),
    ("POST", "/nbiot/device/accpsk"): (
        "Set the access PSK (POST)",
        "The same as `PUT`, in the form the manual's §5.2 example sends it.",
    ),
    ("GET", "/api/v1/overview"): (
        "Overview of the cloud",
        "Devices known and online per carrier, and the cloud's counters.",
    ),
    ("GET", "/api/v1/products"): ("List products", "Every product the key may see, with its carrier."),
    ("POST", "/api/v1/products"): (
        "Create a product",
        "A product of one carrier (`onenet`, `ctwing`, `yanfei`, `huawei`, `custom`) with a new "
        "master key (admin key only).",
    ),
    ("GET", "/api/v1/devices"): (
        "List devices",
        "Provisioned devices, and for the admin key also registered endpoints without a device; "
        "`q` searches endpoint, IMEI and title; `online`, `carrier`, `limit`, `offset` filter and page.",
    ),
    ("POST", "/api/v1/devices"): (
        "Provision a device",
        "A device of a product by IMEI (and IMSI, auth code, PSK as the carrier needs them).",
    ),
    ("GET", "/api/v1/devices/{device_id}"): (
        "Get a device",
        "The device, its registration and the objects it declared with their latest values.",
    ),
    ("DELETE", "/api/v1/devices/{device_id}"): ("Delete a device", "Removes the device and its PSK."),
    ("PUT", "/api/v1/devices/{device_id}/psk"): (
        "Set the DTLS PSK",
        "Sets the device's PSK as its carrier's platform does (text or hexadecimal).",
    ),
    ("POST", "/api/v1/devices/{device_id}/read"): (
        "Read",
        "LwM2M Read of a path (`/3/0`, `/3303/0/5700`); answers typed values.",
    ),
    ("POST", "/api/v1/devices/{device_id}/write"): (
        "Write",
        "LwM2M Write of a value (typed by the object model) or an instance's values; "
        "`replace=false` is a partial update.",
    ),
    ("POST", "/api/v1/devices/{device_id}/execute"): (
        "Execute",
        "LwM2M Execute of a resource, with arguments.",
    ),
    ("POST", "/api/v1/devices/{device_id}/discover"): (
        "Discover",
        "LwM2M Discover of a path: its instances, resources and attributes.",
    ),
    ("POST", "/api/v1/devices/{device_id}/write-attributes"): (
        "Write attributes",
        "LwM2M Write-Attributes (`pmin`, `pmax`, `gt`, `lt`, `st`, `epmin`, `epmax`) on a path.",
    ),
    ("POST", "/api/v1/devices/{device_id}/observe"): (
        "Observe",
        "LwM2M Observe of a path, or Observe-Composite of several `paths`, optionally with attributes.",
    ),
    ("POST", "/api/v1/devices/{device_id}/cancel-observation"): (
        "Cancel an observation",
        "Cancels an observation, actively (a request to the device) or passively.",
    ),
    ("GET", "/api/v1/devices/{device_id}/observations"): (
        "Observations",
        "The device's observations and whether the device holds them.",
    ),
    ("GET", "/api/v1/devices/{device_id}/datapoints"): (
        "Datapoints",
        "Reported values of the device (optionally of one `path`) between `start` and `end`, oldest first.",
    ),
    ("GET", "/api/v1/devices/{device_id}/events"): (
        "Events of a device",
        "The device's stored event log: registrations, requests and their results, notifications.",
    ),
    ("GET", "/api/v1/devices/{device_id}/connect-commands"): (
        "AT commands to connect",
        "The module manual's AT lines that connect this device to its carrier.",
    ),
    ("GET", "/api/v1/push-targets"): ("List push targets", "The HTTP data push targets the key may see."),
    ("POST", "/api/v1/push-targets"): (
        "Add a push target",
        "A URL that receives every uplink as OneNET's HTTP push (after OneNET's URL check with `token`).",
    ),
    ("DELETE", "/api/v1/push-targets/{target_id}"): ("Remove a push target", "Stops pushing to that URL."),
    ("GET", "/api/v1/push-deliveries"): (
        "Push deliveries",
        "The recent deliveries of the push targets, with their HTTP status and errors.",
    ),
    ("GET", "/api/v1/events"): (
        "Live events (SSE)",
        "A server-sent-event stream of registrations, notifications, requests and observations; "
        "`device` (id, endpoint or IMEI) and `kinds` (comma-separated prefixes) filter it.",
    ),
    ("GET", "/api/v1/modules"): (
        "List emulated modules",
        "The OneMO modules emulated inside this cloud: model, IMEI, state and AT port.",
    ),
}

_OK = {"errno": 0, "error": "succ"}

# (METHOD, path) -> {"request": body example, "response": answer example}.
EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/devices"): {  # manual §5.2
        "request": {
            "title": "test000",
            "desc": "some description",
            "tags": ["china", "mobile"],
            "protocol": "LWM2M",
            "auth_info": {"869975030000461": "1064826326459"},
            "obsv": True,
            "psk": "1234abcd",
        },
        "response": {"errno": 0, "data": {"device_id": "516072121", "psk": "1234abcd"}, "error": "succ"},
    },
    ("POST", "/nbiot/device/accpsk"): {"request": {"key": "abcdefge"}, "response": _OK},  # manual §5.2
    ("PUT", "/nbiot/device/accpsk"): {"request": {"key": "abcdefge"}, "response": _OK},
    ("PUT", "/nbiot/device/psk"): {"request": {"key": "1234abcd"}, "response": _OK},
    ("GET", "/nbiot"): {  # OneNET: read /3303/0
        "response": {
            "errno": 0,
            "error": "succ",
            "data": [
                {"obj_inst_id": 0, "res": [{"res_id": 5700, "val": 21.5}, {"res_id": 5701, "val": "Cel"}]}
            ],
        }
    },
    ("POST", "/nbiot"): {  # OneNET: write /3311/0/5850 (the manual's light switch)
        "request": {"data": [{"res_id": 5850, "val": True}]},
        "response": _OK,
    },
    ("POST", "/nbiot/execute"): {"request": {"args": "1"}, "response": _OK},
    ("POST", "/nbiot/observe"): {"response": _OK},
    ("POST", "/api/v1/devices"): {
        "request": {"product_id": "e0e11ded2b63", "imei": "869975030000461", "imsi": "1064826326459"},
    },
    ("POST", "/api/v1/devices/{device_id}/read"): {"request": {"path": "/3303/0/5700"}},
    ("POST", "/api/v1/devices/{device_id}/write"): {"request": {"path": "/1/0/1", "value": 3600}},
    ("POST", "/api/v1/devices/{device_id}/observe"): {
        "request": {"path": "/3303/0/5700", "attributes": {"pmin": 10, "pmax": 60}},
    },
}
