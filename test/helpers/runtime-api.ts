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
