import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/core/serde';
import { ACCOUNT, REGION } from './template.ts';

/** The stage the template deploys (ApiDeploymentStage v1). */
const STAGE = 'v1';
/** API Gateway refuses a signature dated more than this far from its clock. */
const SKEW_MS = 15 * 60 * 1000;

export interface ApiFrontOptions {
  /** Runs the API function with a REST proxy event; resolves with its result (statusCode, headers, body). */
  invoke(event: unknown): Promise<unknown>;
  /** The secret of each access key the front accepts (IAM's role in API Gateway's authorization). */
  credentials: Record<string, string>;
}

interface AuthorizationParts {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(header: string | undefined): AuthorizationParts | undefined {
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(header ?? '');
  if (!match) return undefined;
  return { accessKeyId: match[1]!, date: match[2]!, region: match[3]!, service: match[4]!, signedHeaders: match[5]!.split(';'), signature: match[6]! };
}

/** 403 with API Gateway's body for the refusal. */
class Refusal extends Error {}

/**
 * API Gateway's REST API in front of the API function, on one machine: checks the SigV4
 * signature as IAM authorization does (service execute-api, this region, a known key, the
 * date within 15 minutes, the signature recomputed over the signed headers and the body),
 * refuses an unsigned call (403 Missing Authentication Token) or a wrongly signed one (403
 * signature mismatch), and turns each request into the REST proxy event of `/{proxy+}`.
 */
export class ApiFront {
  private server: Server | undefined;
  url = '';
  /** Every request the front answered: method, path and status. */
  readonly answered: { method: string; path: string; status: number }[] = [];

  constructor(private readonly options: ApiFrontOptions) {}

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      void this.handle(request).then(({ status, headers, body }) => {
        this.answered.push({ method: request.method ?? '', path: request.url ?? '', status });
        response.writeHead(status, headers);
        response.end(body);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/${STAGE}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(request: IncomingMessage): Promise<{ status: number; headers: Record<string, string>; body: Buffer | string }> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(request.url ?? '/', 'http://front');
    const json = { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID() };
    if (!url.pathname.startsWith(`/${STAGE}/`) && url.pathname !== `/${STAGE}`) return { status: 403, headers: json, body: JSON.stringify({ message: 'Forbidden' }) };
    const path = url.pathname.slice(STAGE.length + 1) || '/';
    if (path === '/' || path.startsWith('/dashboard')) return { status: 501, headers: json, body: JSON.stringify({ message: 'the dashboard resources are not stood in for' }) };
    let caller: AuthorizationParts;
    try {
      caller = await this.verify(request, url, body);
    } catch (error) {
      if (error instanceof Refusal) return { status: 403, headers: { ...json, 'x-amzn-errortype': 'IncompleteSignatureException' }, body: JSON.stringify({ message: error.message }) };
      throw error;
    }
    const headers: Record<string, string> = {};
    const multiValueHeaders: Record<string, string[]> = {};
    for (let i = 0; i < request.rawHeaders.length; i += 2) {
      const [name, value] = [request.rawHeaders[i]!, request.rawHeaders[i + 1]!];
      headers[name] = value;
      (multiValueHeaders[name] ??= []).push(value);
    }
    const query: Record<string, string> = {};
    const multiQuery: Record<string, string[]> = {};
    for (const [name, value] of url.searchParams) {
      query[name] = value;
      (multiQuery[name] ??= []).push(value);
    }
    const requestId = randomUUID();
    const event = {
      resource: '/{proxy+}',
      path,
      httpMethod: request.method,
      headers,
      multiValueHeaders,
      queryStringParameters: url.searchParams.size ? query : null,
      multiValueQueryStringParameters: url.searchParams.size ? multiQuery : null,
      pathParameters: { proxy: path.slice(1) },
      stageVariables: null,
      requestContext: {
        resourceId: 'proxy',
        resourcePath: '/{proxy+}',
        httpMethod: request.method,
        extendedRequestId: requestId,
        requestTime: new Date().toUTCString(),
        path: `/${STAGE}${path}`,
        accountId: ACCOUNT,
        protocol: 'HTTP/1.1',
        stage: STAGE,
        domainPrefix: 'local',
        requestTimeEpoch: Date.now(),
        requestId,
        identity: { accessKey: caller.accessKeyId, accountId: ACCOUNT, caller: caller.accessKeyId, user: caller.accessKeyId, userArn: `arn:aws:iam::${ACCOUNT}:user/aws-local`, sourceIp: request.socket.remoteAddress ?? '127.0.0.1', userAgent: headers['user-agent'] ?? headers['User-Agent'] ?? '' },
        domainName: request.headers.host ?? '',
        apiId: 'local',
      },
      body: body.length ? body.toString('base64') : null,
      isBase64Encoded: body.length > 0,
    };
    let result: { statusCode: number; headers?: Record<string, string>; multiValueHeaders?: Record<string, string[]>; body?: string; isBase64Encoded?: boolean };
    try {
      result = (await this.options.invoke(event)) as typeof result;
    } catch {
      // A function error is API Gateway's 502.
      return { status: 502, headers: json, body: JSON.stringify({ message: 'Internal server error' }) };
    }
    const out: Record<string, string> = { 'x-amzn-requestid': requestId };
    for (const [name, value] of Object.entries(result.headers ?? {})) out[name] = value;
    for (const [name, values] of Object.entries(result.multiValueHeaders ?? {})) out[name] = values.join(', ');
    return { status: result.statusCode, headers: out, body: Buffer.from(result.body ?? '', result.isBase64Encoded ? 'base64' : 'utf8') };
  }

  private async verify(request: IncomingMessage, url: URL, body: Buffer): Promise<AuthorizationParts> {
    const parts = parseAuthorization(request.headers.authorization);
    if (!parts) throw new Refusal('Missing Authentication Token');
    const secret = this.options.credentials[parts.accessKeyId];
    if (!secret) throw new Refusal('The security token included in the request is invalid.');
    if (parts.service !== 'execute-api' || parts.region !== REGION) throw new Refusal(`Credential should be scoped to correct service: 'execute-api' in region '${REGION}'.`);
    const stamp = String(request.headers['x-amz-date'] ?? '');
    const signingDate = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp);
    if (!signingDate) throw new Refusal('Authorization header requires existence of either a \'X-Amz-Date\' or a \'Date\' header.');
    const date = new Date(Date.UTC(+signingDate[1]!, +signingDate[2]! - 1, +signingDate[3]!, +signingDate[4]!, +signingDate[5]!, +signingDate[6]!));
    if (Math.abs(Date.now() - date.getTime()) > SKEW_MS) throw new Refusal('Signature expired');
    const signedHeaders: Record<string, string> = {};
    for (const name of parts.signedHeaders) {
      const value = request.headers[name];
      if (value === undefined) throw new Refusal('The request signature we calculated does not match the signature you provided.');
      signedHeaders[name] = Array.isArray(value) ? value.join(',') : value;
    }
    const signer = new SignatureV4({ service: 'execute-api', region: REGION, credentials: { accessKeyId: parts.accessKeyId, secretAccessKey: secret, ...(request.headers['x-amz-security-token'] ? { sessionToken: String(request.headers['x-amz-security-token']) } : {}) }, sha256: Hash.bind(null, 'sha256') });
    const [hostname, port] = (signedHeaders.host ?? '').split(':');
    const signed = await signer.sign(
      {
        method: request.method ?? 'GET',
        protocol: 'http:',
        hostname: hostname ?? '',
        ...(port ? { port: Number(port) } : {}),
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: signedHeaders,
        ...(body.length ? { body: body.toString('utf8') } : {}),
      },
      { signingDate: date, signableHeaders: new Set(parts.signedHeaders) },
    );
    const computed = parseAuthorization(signed.headers.authorization)?.signature;
    if (computed !== parts.signature) throw new Refusal('The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.');
    return parts;
  }
}

