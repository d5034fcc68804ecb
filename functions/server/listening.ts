import { isLoopbackHost } from '../api/auth.ts';
/** Addresses that mean every interface: no client reaches the server by them. */
export const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);

/**
 * Refuses a listening set-up that would expose the token or signed URLs: plain HTTP off loopback
 * (unless a TLS-terminating proxy is in front), a public URL that is not an http(s) origin or
 * names the wildcard address, and a wildcard bind with no public URL to put in signed URLs.
 */
export function checkListening(options: { host: string; secure: boolean; insecureHttp?: boolean; publicUrl?: string }): void {
  const { host, secure, insecureHttp, publicUrl } = options;
  if (!isLoopbackHost(host) && !secure && !insecureHttp) {
    throw new Error(`refusing to listen on ${host} over plain HTTP: give --tls-cert and --tls-key or --tls-self-signed, or --insecure-http when a TLS-terminating proxy is in front`);
  }
  if (publicUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(publicUrl);
    } catch {
      throw new Error(`--public-url must be an http(s) URL such as https://cfs.example.org:8787, not '${publicUrl}'`);
    }
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password || url.search || url.hash || url.pathname !== '/') {
      throw new Error(`--public-url must be a scheme, host and port only (such as https://cfs.example.org:8787), not '${publicUrl}'`);
    }
    if (WILDCARD_HOSTS.has(url.hostname)) throw new Error(`--public-url cannot name ${url.hostname}: no client can reach the wildcard address; name this host`);
    if (secure && url.protocol !== 'https:') throw new Error(`--public-url must be https:// when the server speaks TLS, not '${publicUrl}'`);
  } else if (WILDCARD_HOSTS.has(host)) {
    throw new Error(`listening on ${host} needs --public-url naming this host as clients reach it (signed URLs carry it)`);
  }
}

