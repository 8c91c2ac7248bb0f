// The native API (/api/v1) from the browser: the key, JSON requests, errors as values.

const KEY_STORAGE = "testbed.apiKey";

export class ApiError extends Error {
  constructor(status, errno, message, reason) {
    super(message);
    this.status = status;
    this.errno = errno;
    this.reason = reason; // OneNET's reason of errno 5106 (a device failure)
  }
}

// `#key=...` on first load wins over the stored key; the key is then removed from the address bar.
export function takeKeyFromHash() {
  const match = /(?:^#|[#&?])key=([^&]+)/.exec(location.hash);
  if (!match) return false;
  setKey(decodeURIComponent(match[1]));
  const rest = location.hash.replace(/[#&?]?key=[^&]+/, "").replace(/^#?&/, "#");
  history.replaceState(null, "", `${location.pathname}${location.search}${rest && rest !== "#" ? rest : "#/overview"}`);
  return true;
}

export function getKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

export function setKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
  window.dispatchEvent(new CustomEvent("testbed:key"));
}

export async function api(method, path, body) {
  const headers = { accept: "application/json" };
  const key = getKey();
  if (key) headers["api-key"] = key;
  const init = { method, headers };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch (err) {
    throw new ApiError(0, -1, `network error: ${err.message}`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: text };
    }
  }
  if (!response.ok) {
    const message = (data && (data.error || data.detail)) || response.statusText;
    throw new ApiError(response.status, data && data.errno, typeof message === "string" ? message : JSON.stringify(message), data && data.reason);
  }
  if (data && typeof data.errno === "number" && data.errno !== 0) {
    throw new ApiError(response.status, data.errno, data.error || "error");
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body ?? {});
export const del = (path) => api("DELETE", path);

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function withKey(path) {
  const sep = path.includes("?") ? "&" : "?";
  return `/api/v1${path}${sep}api_key=${encodeURIComponent(getKey())}`;
}

export function websocketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${withKey(path)}`;
}
