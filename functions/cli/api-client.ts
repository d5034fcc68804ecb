import { findApiToken, type TokenLookup } from '../server/api-token.ts';
import { LOCAL_ENV } from '../server/environment.ts';
import { signerFor, type RequestSigner } from './aws-signing.ts';
import { CliError, type CliIo } from './io.ts';

/** The API the CLI talks to unless CFS_API_URL says otherwise: a local `cfs server`. */
export const DEFAULT_API_URL = 'http://127.0.0.1:8787';

/** An HTTP error answer; shown as cray shows it: `Error: <title>: <detail>`. */
export class ApiError extends Error {
  override readonly name = 'ApiError' as const;
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string | undefined,
  ) {
    super(detail ? `${title}: ${detail}` : title);
  }
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T | undefined;
  /** The response's headers (a paged image listing's `Link`). */
  headers?: Headers;
}

/**
 * A small fetch client for the CFS (and IMS) API under CSM's gateway paths. Any status of 400
 * or more becomes an ApiError carrying the problem's title and detail; an unreachable server
 * becomes a CliError that says where it looked.
 */
export class ApiClient {
  readonly baseUrl: string;
  /** SigV4 for an API Gateway URL (the AWS deployment); undefined for a local server. */
  private readonly signer: (() => Promise<RequestSigner>) | undefined;
  /** The bearer token `cfs server` requires (as cray sends it): CFS_API_TOKEN, else the data directory's token file. */
  private readonly env: CliIo['env'];
  private lookup: TokenLookup | undefined;

  constructor(io: Pick<CliIo, 'env'>) {
    this.baseUrl = (io.env[LOCAL_ENV.API_URL] || DEFAULT_API_URL).replace(/\/+$/, '');
    this.signer = signerFor(this.baseUrl, io.env);
    this.env = io.env;
  }

  /** Looked up at the first request, so commands that never call the API read no file. */
  private tokenLookup(): TokenLookup {
    return (this.lookup ??= findApiToken(this.env, LOCAL_ENV.API_TOKEN));
  }

  async request<T = unknown>(method: string, path: string, options: { body?: unknown; query?: Record<string, string | undefined> } = {}): Promise<ApiResponse<T>> {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, value);
    const init: RequestInit = { method, headers: { Accept: 'application/json' } };
    if (options.body !== undefined) {
      init.body = JSON.stringify(options.body);
      init.headers = { ...init.headers, 'Content-Type': 'application/json' };
    }
    const token = this.signer ? undefined : this.tokenLookup().token;
    if (token) init.headers = { ...init.headers, Authorization: `Bearer ${token}` };
    if (this.signer) {
      const sign = await this.signer();
      init.headers = await sign({ method, url, headers: init.headers as Record<string, string>, body: init.body as string | undefined });
    }
    let response: Response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const code = cause?.code ?? cause?.message ?? (error as Error).message;
      if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) throw new CliError(`cannot trust the certificate of ${this.baseUrl} (${code}); give its CA certificate in ${LOCAL_ENV.CA_BUNDLE} (or NODE_EXTRA_CA_CERTS)`);
      throw new CliError(`cannot reach the CFS API at ${this.baseUrl} (${code}); is \`cfs server\` running, or is ${LOCAL_ENV.API_URL} set?`);
    }
    const text = await response.text();
    let body: unknown;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    if (response.status >= 400) {
      const problem = (body ?? {}) as { title?: unknown; detail?: unknown };
      const title = typeof problem.title === 'string' ? problem.title : `Error received from server: ${response.status} ${response.statusText}`;
      let detail = typeof problem.detail === 'string' ? problem.detail : undefined;
      // Say where the CLI looked, so the fix (run as the server's user, point at its data directory) is plain.
      const lookup = this.signer ? undefined : this.tokenLookup();
      if (response.status === 401 && lookup) detail = `${detail ?? 'unauthorized'} (${lookup.token !== undefined ? `sent the token from ${lookup.source}` : `no token sent: ${lookup.why}`})`;
      throw new ApiError(response.status, title, detail);
    }
    if (text && body === undefined) throw new CliError(`the API answered ${method} ${path} with a body that is not JSON`);
    return { status: response.status, body: body as T, headers: response.headers };
  }
}

/** `/apis/cfs/v<version>`: the CLI speaks v3 unless told otherwise. */
export function cfsBase(version: '2' | '3'): string {
  return `/apis/cfs/v${version}`;
}
