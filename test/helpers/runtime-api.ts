import { bearer, type ServerAddress } from './api-token.ts';

/** An API answer: its HTTP status and its JSON body (undefined when the body is empty). */
export interface ApiReply<T> {
  status: number;
  body: T;
}

/** Calls `server`'s API with its bearer token, sending `body` as JSON when there is one. */
export async function callApi<T>(server: ServerAddress, method: string, path: string, body?: unknown): Promise<ApiReply<T>> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { ...bearer(server), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Creates a v3 session of `configurationName` over one image in group Compute (plus any other body fields); 201 or throws. */
export async function createComputeSession(server: ServerAddress, o: { name: string; configurationName: string; imageId: string; extra?: Record<string, unknown> }): Promise<void> {
  const created = await callApi(server, 'POST', '/apis/cfs/v3/sessions', {
    name: o.name,
    configuration_name: o.configurationName,
    target: { definition: 'image', groups: [{ name: 'Compute', members: [o.imageId] }] },
    ...o.extra,
  });
  if (created.status !== 201) throw new Error(`session ${o.name} was not created: ${created.status} ${JSON.stringify(created.body)}`);
}
