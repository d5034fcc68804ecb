import { GitError } from '../../core/errors.ts';
import { assertAllowedCloneUrl, cloneUrlScheme, type CloneUrlPolicy } from '../../core/configurations/clone-url.ts';
import { gitMessage } from '../../core/workflow/git-message.ts';
import { redactCloneUrl } from '../../core/workflow/redact.ts';
import type { GitResolver } from '../../ports/git-resolver.ts';
import type { GitAccess } from '../../core/sources/source-record.ts';

export interface HttpGitResolverOptions {
  /** Clone URL schemes layers may use; only http(s) ones can be resolved here. */
  allowedSchemes: readonly string[];
  /** One ref listing gives up after this long (the API answers within API Gateway's 29 s). */
  timeoutMs?: number;
  /** A ref advertisement larger than this is refused rather than read into memory. */
  maxBytes?: number;
}

const BRANCH_PATTERN = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[^\s~^:?*[\\\x00-\x1f\x7f]+(?<![./])$/;

/** Splits a pkt-line stream (4 hex digits of length, including themselves; `0000` is a flush). */
function pktLines(body: Buffer): string[] {
  const lines: string[] = [];
  let at = 0;
  while (at + 4 <= body.length) {
    const length = Number.parseInt(body.subarray(at, at + 4).toString('ascii'), 16);
    if (!Number.isFinite(length)) throw new Error('malformed pkt-line length');
    if (length === 0 || length === 1 || length === 2) {
      at += 4;
      continue;
    }
    if (length < 4 || at + length > body.length) throw new Error('truncated pkt-line');
    lines.push(body.subarray(at + 4, at + length).toString('utf8').replace(/\n$/, ''));
    at += length;
  }
  return lines;
}

/** `sha ref` pairs of a smart (pkt-line) or dumb (`sha<TAB>ref` lines) ref listing. */
export function parseRefAdvertisement(body: Buffer, smart: boolean): Map<string, string> {
  const refs = new Map<string, string>();
  const lines = smart ? pktLines(body).filter((line) => !line.startsWith('#')) : body.toString('utf8').split('\n');
  for (const line of lines) {
    const [sha, rest] = smart ? [line.slice(0, 40), line.slice(41)] : line.split('\t');
    const name = (rest ?? '').split('\0')[0]!;
    if (sha && /^[a-f0-9]{40}$/.test(sha) && name) refs.set(name, sha);
  }
  return refs;
}

/**
 * Resolves branches the way `git ls-remote` does over http(s), with fetch instead of a git
 * binary (Lambda has none): one GET of `<url>/info/refs?service=git-upload-pack` (git's smart
 * HTTP ref advertisement, or the dumb `info/refs` file), parsed for `refs/heads/<branch>`.
 * Credentials in the URL go in an Authorization header and never into a message. ssh URLs
 * cannot be resolved here: such layers must name a `commit`.
 */
export class HttpGitResolver implements GitResolver, CloneUrlPolicy {
  readonly allowedSchemes: readonly string[];
  private readonly timeoutMs: number;
  private readonly maxBytes: number;

  constructor(options: HttpGitResolverOptions) {
    this.allowedSchemes = options.allowedSchemes;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
  }

  assertAllowedCloneUrl(url: string): void {
    assertAllowedCloneUrl(url, this.allowedSchemes);
  }

  async resolveBranch(cloneUrl: string, branch: string, access?: GitAccess): Promise<string> {
    this.assertAllowedCloneUrl(cloneUrl);
    const shown = redactCloneUrl(cloneUrl);
    if (!BRANCH_PATTERN.test(branch)) throw new GitError(`'${branch}' is not a valid branch name`);
    const scheme = cloneUrlScheme(cloneUrl);
    if (scheme !== 'https' && scheme !== 'http') {
      throw new GitError(`branch '${branch}' of ${shown} cannot be resolved here: only http(s) remotes are read without git; give the layer a commit instead of a branch`);
    }
    const refs = await this.listRefs(cloneUrl, `cannot read branch '${branch}' of ${shown}`, access);
    const sha = refs.get(`refs/heads/${branch}`);
    if (!sha) throw new GitError(`branch '${branch}' does not exist in ${shown}`);
    return sha;
  }

  private async listRefs(cloneUrl: string, context: string, access?: GitAccess): Promise<Map<string, string>> {
    const url = new URL(`${cloneUrl.replace(/\/+$/, '')}/info/refs`);
    url.searchParams.set('service', 'git-upload-pack');
    const headers: Record<string, string> = { 'User-Agent': 'git/2.39-cfs', Accept: '*/*' };
    if (url.username || url.password) {
      headers.Authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
      url.username = '';
      url.password = '';
    }
    // A CFS source's login (its CA bundle is not used here: fetch has no per-request CA).
    if (access) headers.Authorization = `Basic ${Buffer.from(`${access.username}:${access.password}`).toString('base64')}`;
    let response: Response;
    try {
      // With credentials no redirect is followed: they must never travel to another address.
      response = await fetch(url, { headers, redirect: headers.Authorization ? 'error' : 'follow', signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = (error as Error).name === 'TimeoutError' ? `no answer within ${this.timeoutMs / 1000} s` : (cause?.code ?? cause?.message ?? (error as Error).message);
      throw new GitError(`${context}: ${why}`);
    }
    if (!this.allowedSchemes.includes(new URL(response.url || url).protocol.replace(/:$/, ''))) {
      throw new GitError(`${context}: redirected to a scheme that is not allowed`);
    }
    if (!response.ok) {
      // Git servers say why in a short text body ("Repository not found."), as git shows it.
      const said = await this.shortText(response);
      const hint = response.status === 401 || response.status === 403 ? ' (the repository needs credentials)' : '';
      throw new GitError(`${context}: HTTP ${response.status}${hint}${said ? `: ${said}` : ''}`);
    }
    const body = await this.readBounded(response, context);
    const smart = (response.headers.get('content-type') ?? '').startsWith('application/x-git-upload-pack-advertisement');
    try {
      return parseRefAdvertisement(body, smart);
    } catch (error) {
      throw new GitError(`${context}: the server's ref listing is malformed (${(error as Error).message})`);
    }
  }

  /** A text/plain error body's message (its first kilobyte, credentials removed); '' for any other body. */
  private async shortText(response: Response): Promise<string> {
    if (!(response.headers.get('content-type') ?? '').startsWith('text/plain')) {
      await response.body?.cancel();
      return '';
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of response.body ?? []) {
        chunks.push(Buffer.from(chunk));
        size += chunk.length;
        if (size >= 1024) break;
      }
    } catch {
      // A body cut short says what it got to say.
    }
    return gitMessage(Buffer.concat(chunks).subarray(0, 1024).toString('utf8'));
  }

  private async readBounded(response: Response, context: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body ?? []) {
      size += chunk.length;
      if (size > this.maxBytes) throw new GitError(`${context}: the ref listing is larger than ${this.maxBytes} bytes`);
      chunks.push(Buffer.from(chunk));
    }
    return Buffer.concat(chunks);
  }
}
