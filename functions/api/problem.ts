import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** RFC 7807 problem details, as CFS and IMS return them (`title` and `detail` reach `cray` users). */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  /** The offending field, when one is to blame (an extension member). */
  field?: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** A problem+json response. */
export function problem(c: Context, status: number, detail: string, extra: { title?: string; field?: string } = {}) {
  const body: Problem = {
    type: 'about:blank',
    title: extra.title ?? TITLES[status] ?? 'Error',
    status,
    detail,
    instance: new URL(c.req.url).pathname,
    ...(extra.field ? { field: extra.field } : {}),
  };
  return c.body(JSON.stringify(body), status as ContentfulStatusCode, { 'Content-Type': 'application/problem+json' });
}

/** The HTTP status a domain error maps to (by its literal `name`, the errors-module contract). */
export function statusForError(error: unknown): number {
  switch ((error as { name?: string })?.name) {
    case 'ValidationError':
    case 'GitError':
      return 400;
    case 'NotFoundError':
      return 404;
    case 'ConflictError':
    case 'InvalidStateError':
      return 409;
    case 'TransientError':
      return 503;
    default:
      return 500;
  }
}
