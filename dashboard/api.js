// The API beside the page (same origin): the dashboard is read-only and uses only GETs.

/** An API error with the problem+json detail when the server gave one. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** GETs a JSON document from the API. */
export async function getJson(path, signal) {
  const response = await fetch(path, { headers: { Accept: 'application/json' }, signal });
  const text = await response.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!response.ok) throw new ApiError(response.status, body?.detail ?? `${response.status} ${response.statusText}`);
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
