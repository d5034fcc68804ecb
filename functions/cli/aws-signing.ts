/**
 * SigV4 for the CLI against the AWS deployment: API Gateway requires IAM authorization on every
 * method, so a request to an API Gateway URL (`https://<id>.execute-api.<region>.amazonaws.com/...`)
 * is signed with the standard AWS credential chain (environment, shared config and SSO profiles,
 * web identity, container and instance roles), by the AWS SDK's own signer. The signing modules
 * load only when such a URL is used, so local commands start as fast as before.
 */

import { CliError } from './io.ts';
import { LOCAL_ENV } from '../server/environment.ts';

/** What a signer needs of a request, and what it returns: the headers to send. */
export interface SignableRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string;
}

export type RequestSigner = (request: SignableRequest) => Promise<Record<string, string>>;

const API_GATEWAY_HOST = /^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;

/** The region of an API Gateway URL, or undefined when the URL is not one (a local `cfs server`). */
export function apiGatewayRegion(url: URL): string | undefined {
  return API_GATEWAY_HOST.exec(url.hostname)?.[1];
}

/** A SigV4 signer for API Gateway (`execute-api`) in `region`; credentials default to the standard chain. */
export async function sigV4Signer(
  region: string,
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
): Promise<RequestSigner> {
  const [{ SignatureV4 }, { Hash }, { fromNodeProviderChain }] = await Promise.all([
    import('@smithy/signature-v4'),
    import('@smithy/core/serde'),
    import('@aws-sdk/credential-providers'),
  ]);
  const signer = new SignatureV4({ service: 'execute-api', region, credentials: credentials ?? fromNodeProviderChain(), sha256: Hash.bind(null, 'sha256') });
  return async ({ method, url, headers, body }) => {
    let signed;
    try {
      signed = await signer.sign({
        method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: { ...headers, host: url.host },
        ...(body !== undefined ? { body } : {}),
      });
    } catch (error) {
      throw new CliError(
        `cannot sign the request to ${url.origin} with AWS credentials (${(error as Error).message}); set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
      );
    }
    // fetch sets Host itself from the URL (the same value that was signed).
    const { host: _host, ...rest } = signed.headers;
    return rest;
  };
}

/** The signer for `baseUrl`, or undefined when it is neither an API Gateway URL nor named by CFS_API_SIGV4_REGION. Made once per client. */
export function signerFor(baseUrl: string, env: Record<string, string | undefined> = process.env): (() => Promise<RequestSigner>) | undefined {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    return undefined;
  }
  const region = apiGatewayRegion(url) ?? (env[LOCAL_ENV.API_SIGV4_REGION] || undefined);
  if (!region) return undefined;
  let signer: Promise<RequestSigner> | undefined;
  return () => (signer ??= sigV4Signer(region));
}
