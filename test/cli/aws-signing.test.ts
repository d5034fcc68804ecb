import { createHash, createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiClient } from '../../functions/cli/api-client.ts';
import { apiGatewayRegion } from '../../functions/cli/aws-signing.ts';

const API = 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1';
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', AWS_SESSION_TOKEN: 'session-token-example' };

interface Captured {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

/**
 * SigV4 computed by hand from the specification, only to check the SDK's signature: the
 * canonical request, the string to sign and the derived key of the `execute-api` service.
 */
function expectedSignature(request: Captured, signedHeaders: string[], amzDate: string, region: string): string {
  const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');
  const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
  const headers = Object.fromEntries(Object.entries({ ...request.headers, host: request.url.host }).map(([k, v]) => [k.toLowerCase(), v.trim()]));
  const query = [...request.url.searchParams].map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).sort().join('&');
  const canonical = [
    request.method,
    request.url.pathname.split('/').map((s) => encodeURIComponent(s)).join('/'),
    query,
    signedHeaders.map((h) => `${h}:${headers[h]}\n`).join(''),
    signedHeaders.join(';'),
    sha256(request.body ?? ''),
  ].join('\n');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${region}/execute-api/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${CREDENTIALS.AWS_SECRET_ACCESS_KEY}`, day), region), 'execute-api'), 'aws4_request');
  return createHmac('sha256', key).update(toSign).digest('hex');
}

describe('the CLI against the AWS deployment (SigV4)', () => {
  const saved = { ...process.env };
  const captured: Captured[] = [];
  beforeEach(() => {
    captured.length = 0;
    Object.assign(process.env, CREDENTIALS);
    delete process.env.AWS_PROFILE;
    vi.stubGlobal('fetch', async (input: URL, init: RequestInit) => {
      captured.push({ url: new URL(input), method: init.method ?? 'GET', headers: init.headers as Record<string, string>, body: init.body as string | undefined });
      return new Response(JSON.stringify({ sessions: [], next: null }), { status: 200, headers: { 'Content-Type': 'application/json' } });
    });
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    process.env = { ...saved };
  });

  it('recognises API Gateway URLs and their region, and nothing else', () => {
    expect(apiGatewayRegion(new URL(API))).toBe('eu-west-1');
    expect(apiGatewayRegion(new URL('http://127.0.0.1:8787'))).toBeUndefined();
    expect(apiGatewayRegion(new URL('https://execute-api.eu-west-1.amazonaws.com.example.org/v1'))).toBeUndefined();
  });

  it('signs a request with a body and a query using the credentials of the standard chain, as SigV4 specifies', async () => {
    // Arrange
    const client = new ApiClient({ env: { CFS_API_URL: API } });
    // Act
    await client.request('POST', '/apis/cfs/v3/sessions', { body: { name: 'example', configuration_name: 'c' }, query: { dry: 'no way', limit: '5' } });
    // Assert
    const request = captured[0]!;
    const authorization = /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/(\d{8})\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(request.headers.authorization ?? '');
    expect(authorization).not.toBeNull();
    const signedHeaders = authorization![2]!.split(';');
    expect(signedHeaders).toEqual(expect.arrayContaining(['content-type', 'host', 'x-amz-date', 'x-amz-security-token']));
    expect(request.headers['x-amz-security-token']).toBe(CREDENTIALS.AWS_SESSION_TOKEN);
    expect(request.headers.host).toBeUndefined();
    expect(authorization![3]).toBe(expectedSignature(request, signedHeaders, request.headers['x-amz-date']!, 'eu-west-1'));
  });

  it('signs an encoded path segment the way API Gateway checks it', async () => {
    // Arrange
    const client = new ApiClient({ env: { CFS_API_URL: API } });
    // Act
    await client.request('GET', `/apis/cfs/v3/sessions/${encodeURIComponent('a b')}`);
    // Assert
    const request = captured[0]!;
    const [, signedHeaders, signature] = /Credential=[^,]+, SignedHeaders=([^,]+), Signature=(\w+)/.exec(request.headers.authorization!)!.map(String) as [string, string, string];
    expect(request.url.pathname).toBe('/v1/apis/cfs/v3/sessions/a%20b');
    expect(signature).toBe(expectedSignature(request, signedHeaders.split(';'), request.headers['x-amz-date']!, 'eu-west-1'));
  });

  it('sends requests to a local server unsigned', async () => {
    // Arrange
    const client = new ApiClient({ env: { CFS_API_URL: 'http://127.0.0.1:8787' } });
    // Act
    await client.request('GET', '/apis/cfs/v3/sessions');
    // Assert
    expect(captured[0]!.headers).toEqual({ Accept: 'application/json' });
  });

  it('says how to provide credentials when the chain has none', async () => {
    // Arrange: no keys, no profile files, no instance metadata.
    for (const name of Object.keys(CREDENTIALS)) delete process.env[name];
    Object.assign(process.env, { AWS_CONFIG_FILE: '/nonexistent/config', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials', AWS_EC2_METADATA_DISABLED: 'true' });
    const client = new ApiClient({ env: { CFS_API_URL: API } });
    // Act
    const requesting = client.request('GET', '/apis/cfs/v3/sessions');
    // Assert
    await expect(requesting).rejects.toMatchObject({ name: 'CliError', message: expect.stringMatching(/^cannot sign the request to https:\/\/a1b2c3d4e5\.execute-api\.eu-west-1\.amazonaws\.com with AWS credentials .*set AWS_PROFILE/) });
    expect(captured).toEqual([]);
  });
});
