// The JSON API client: one place for credentials, headers and turning errors into ApiError.

/** An API refusal, carrying the server's {error: {code, message, field}} so the UI can show it verbatim. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    // The input field the server named as at fault ("" when none), to mark it in the form.
    this.field = field ?? "";
  }
}

const listeners = new Set();

/** Called with every 401 so the page can ask the user to log in again. */
export function onUnauthorized(callback) {
  listeners.add(callback);
}

/** fetch() a JSON endpoint; resolves to the parsed body, rejects with ApiError. */
export async function request(method, path, body) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-Requested-With": "aikore-dashboard" },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", `AiKore did not answer (${err.message}); is it running?`);
  }
  const data = await readBody(response);
  if (response.ok) return data;
  if (response.status === 401) listeners.forEach((fn) => fn());
  const error = data && typeof data === "object" && data.error ? data.error : null;
  throw new ApiError(
    response.status,
    error?.code ?? `http_${response.status}`,
    error?.message ?? `${method} ${path} failed: HTTP ${response.status}`,
    error?.field,
  );
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const api = {
  blueprints: () => request("GET", "/api/blueprints"),
  instances: () => request("GET", "/api/instances"),
  instance: (id) => request("GET", `/api/instances/${id}`),
  create: (fields) => request("POST", "/api/instances", fields),
  update: (id, fields) => request("PATCH", `/api/instances/${id}`, fields),
  remove: (id) => request("DELETE", `/api/instances/${id}`),
  action: (id, verb) => request("POST", `/api/instances/${id}/${verb}`),
  script: (id) => request("GET", `/api/instances/${id}/script`),
  saveScript: (id, content) => request("PUT", `/api/instances/${id}/script`, { content }),
  logs: (id, tail) => request("GET", `/api/instances/${id}/logs?tail=${tail}`),
  version: (id, refresh) => request("GET", `/api/instances/${id}/version${refresh ? "?refresh=1" : ""}`),
  versionUpdate: (id, ref) => request("POST", `/api/instances/${id}/version/update`, ref ? { ref } : undefined),
  versionRollback: (id, snapshot) => request("POST", `/api/instances/${id}/version/rollback`, { snapshot }),
  copy: (id, body) => request("POST", `/api/instances/${id}/copy`, body),
  copies: () => request("GET", "/api/copies"),
  cancelCopy: (job) => request("DELETE", `/api/copies/${job}`),
  createSatellite: (id, body) => request("POST", `/api/instances/${id}/satellites`, body),
  blueprint: (bid) => request("GET", `/api/blueprints/${encodeURIComponent(bid)}`),
  createBlueprint: (body) => request("POST", "/api/blueprints", body),
  saveBlueprint: (bid, body) => request("PUT", `/api/blueprints/${encodeURIComponent(bid)}`, body),
  removeBlueprint: (bid) => request("DELETE", `/api/blueprints/${encodeURIComponent(bid)}`),
  stats: () => request("GET", "/api/system/stats"),
  history: (limit) => request("GET", `/api/system/history?limit=${limit}`),
  interval: () => request("GET", "/api/system/interval"),
  cluster: () => request("GET", "/api/cluster"),
  logout: () => request("POST", "/api/auth/logout"),
  setInterval: (seconds) => request("PUT", "/api/system/interval", { interval_seconds: seconds }),
};
