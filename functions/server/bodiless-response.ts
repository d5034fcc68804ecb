import { ServerResponse, type IncomingMessage } from 'node:http';

/** Statuses that never carry a body (RFC 9110, sections 15.3.5 and 15.4.5), hence no content type either. */
const BODILESS = new Set([204, 304]);

/**
 * The embedded server's responses: a 204 or 304 leaves without `Content-Type`. @hono/node-server
 * gives every response without one `text/plain; charset=UTF-8`, empty 204s included, which
 * clients that check content types (and CFS's spec: a 204 has no content) do not expect.
 * Given to Node's server as its `ServerResponse` class, so no answer can slip past it.
 */
export class BodilessStatusResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  override writeHead(statusCode: number, ...rest: unknown[]): this {
    if (BODILESS.has(statusCode)) {
      this.removeHeader('content-type');
      for (const headers of rest) {
        if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) continue;
        for (const name of Object.keys(headers)) if (name.toLowerCase() === 'content-type') delete (headers as Record<string, unknown>)[name];
      }
    }
    return super.writeHead(statusCode, ...(rest as []));
  }
}
