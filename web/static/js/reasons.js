// Why something failed, in words: the one table of the console for CoAP response codes (RFC 7252
// §5.9, as LwM2M devices use them), the module's +CIS ERROR codes (OneMO manual §6) and the API's
// errors (OneNET errno and 5106 reasons). Every page explains codes through this module.

export const COAP_CODES = {
  "4.00": "Bad Request: the device could not parse the request or its payload",
  "4.01": "Unauthorized: the device refuses this server",
  "4.02": "Bad Option: the device does not understand an option of the request",
  "4.03": "Forbidden: the device's access control does not allow this operation",
  "4.04": "Not Found: the device has no such object, instance or resource",
  "4.05": "Method Not Allowed: the target does not allow this operation (e.g. writing a read-only resource)",
  "4.06": "Not Acceptable: the device cannot answer in the requested content format",
  "4.08": "Request Entity Incomplete: a block of a block-wise transfer is missing",
  "4.09": "Conflict: the device's state does not allow the request now",
  "4.12": "Precondition Failed",
  "4.13": "Request Entity Too Large: the payload is too big for the device",
  "4.15": "Unsupported Content-Format: the device cannot read the payload's format",
  "5.00": "Internal Server Error: the device failed while handling the request",
  "5.01": "Not Implemented: the device does not implement this operation",
  "5.02": "Bad Gateway",
  "5.03": "Service Unavailable: the device is busy, try again later",
  "5.04": "Gateway Timeout",
  "5.05": "Proxying Not Supported",
};

export const CIS_ERRORS = {
  100: "unknown error",
  601: "syntax error: a parameter is missing, out of range or malformed",
  602: "not registered: the module has not logged in to the platform yet (or is still logging in)",
  651: "operation not allowed in the module's current state",
  652: "uplink busy: the module is still sending its previous message",
  653: "the object or resource already exists, or does not exist",
};

// OneNET's errno values the API answers with, and the reasons of errno 5106 (device failure).
export const API_ERRORS = {
  2001: "the device is not online: it has not registered, or its registration ended",
  3: "a required parameter is missing",
  5108: "a parameter is invalid",
};
export const DEVICE_FAILURE_REASONS = {
  5: "no answer from the device in time (a module waits for its MCU's AT+MIPL…RSP; the device may be asleep or gone)",
  12: "the device cannot be reached",
};

export function explainCoap(dotted) {
  const words = COAP_CODES[dotted];
  return words ? `CoAP ${dotted} ${words}` : `CoAP ${dotted}`;
}

export function explainCis(code) {
  const words = CIS_ERRORS[Number(code)];
  return words ? `+CIS ERROR: ${code} — ${words}` : `+CIS ERROR: ${code} — not in the manual's list`;
}

// An ApiError (api.js) as a sentence: the device's CoAP code when it answered one, else the
// API's reason.
export function explainError(err) {
  const dotted = /\b([45]\.\d\d)\b/.exec(err.message || "");
  if (dotted) return explainCoap(dotted[1]);
  if (err.reason !== undefined && DEVICE_FAILURE_REASONS[err.reason]) return DEVICE_FAILURE_REASONS[err.reason];
  if (err.errno !== undefined && API_ERRORS[err.errno]) return `${API_ERRORS[err.errno]} (${err.message})`;
  if (err.status === 0) return `the console cannot reach the server (${err.message})`;
  return err.message || "failed";
}

// A module output line with a +CIS ERROR code explained, else null.
export function explainAtLine(text) {
  const match = /^\+CIS ERROR: ?(\d+)/.exec(text);
  return match ? explainCis(match[1]) : null;
}

// An `operation.failed` event (server/api/v1/failures.py) as a sentence.
export function explainFailure(data) {
  if (data.code) return explainCoap(data.code);
  if (data.timeout) return DEVICE_FAILURE_REASONS[5];
  return data.error || "failed";
}
