// The API beside the page: the dashboard is read-only and uses only GETs, through the server's
// read-only mirror of the API at `dashboard/apis/...`, relative to this script so the page works at
// `/` (embedded server) and under a stage prefix such as `/v1/` (API Gateway) alike.

/** An API error with the problem+json detail when the server gave one. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// The API token, when the server asks for one: kept for this tab only, sent on every data call.
const TOKEN_KEY = 'cfs-dashboard-api-token';
let onUnauthorized = () => {};

/** The stored API token, or null. */
export const storedToken = () => sessionStorage.getItem(TOKEN_KEY);

/** Keeps the API token for this tab; every data call from now on sends it as `Authorization: Bearer`. */
export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * Registers what to do when the server refuses a data call with 401: `handler(detail, rejected)`,
 * where `rejected` says a token was sent and refused (it is forgotten then).
 */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

/** The mirror's URL for an API path such as `/apis/cfs/v3/sessions?limit=5`. */
export function apiUrl(path) {
  return new URL(path.replace(/^\//, ''), import.meta.url);
}

/** GETs a JSON document from the API. */
export async function getJson(path, signal) {
  const token = storedToken();
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(apiUrl(path), { headers, signal });
  const text = await response.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  const detail = body?.detail ?? `${response.status} ${response.statusText}`;
  // Only when the token sent is still the one stored: a refusal of an older token, answered after
  // a new one was entered, must not undo it.
  if (response.status === 401 && token === storedToken()) {
    if (token) forgetToken();
    onUnauthorized(detail, Boolean(token));
  }
  if (!response.ok) throw new ApiError(response.status, detail);
  return body;
}

/** Every image (the IMS list is not paged). */
export const listImages = (signal) => getJson('/apis/ims/v3/images', signal);

/** The automations, or undefined where this server has no automations API. */
export async function listAutomations(signal) {
  try {
    const body = await getJson('/apis/cfs/v3/automations', signal);
    return Array.isArray(body) ? body : (body?.automations ?? []);
  } catch (error) {
    if (error instanceof ApiError && [404, 405, 501, 503].includes(error.status)) return undefined;
    throw error;
  }
}

/**
 * Runs `tick` now and again `intervalMs` after each run ends (never overlapping) until the
 * returned function is called; `tick` may return false to stop by itself.
 */
export function poll(tick, intervalMs) {
  const controller = new AbortController();
  let timer;
  const run = async () => {
    let again = true;
    try {
      again = (await tick(controller.signal)) !== false;
    } catch (error) {
      if (controller.signal.aborted) return;
      console.error(error);
    }
    if (again && !controller.signal.aborted) timer = setTimeout(run, intervalMs);
  };
  run();
  return () => {
    controller.abort();
    clearTimeout(timer);
  };
}

/** How often views refresh: `?poll=MS` in the page's address overrides the default (tests use it). */
export function pollInterval(defaultMs) {
  const asked = Number(new URLSearchParams(location.search).get('poll'));
  return Number.isFinite(asked) && asked >= 100 ? asked : defaultMs;
}
