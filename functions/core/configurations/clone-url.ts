import { ValidationError } from '../errors.ts';
import { redactUrlsInText } from '../workflow/redact.ts';

/**
 * Clone URL schemes, named as git's `GIT_ALLOW_PROTOCOL` names them, so one allow-list both
 * refuses a URL up front (400) and restricts what git itself may use. The embedded default
 * allows https, ssh and file.
 */
export const DEFAULT_CLONE_URL_SCHEMES: readonly string[] = ['https', 'ssh', 'file'];

/**
 * The transport git would use for `url`: `scheme://...`, `transport::address` (remote helpers
 * such as `ext::`, which run commands), scp-like `user@host:path` (ssh), or a local path (file).
 */
export function cloneUrlScheme(url: string): string {
  const helper = /^([A-Za-z][A-Za-z0-9+.-]*)::/.exec(url);
  if (helper) return helper[1]!.toLowerCase();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (scheme) {
    const name = scheme[1]!.toLowerCase();
    return name === 'git+ssh' || name === 'ssh+git' ? 'ssh' : name;
  }
  if (url.startsWith('/') || url.startsWith('.')) return 'file';
  if (/^[^/]+:/.test(url)) return 'ssh';
  return 'file';
}

/** Why `url` may not be cloned under `schemes`, or undefined when it may. The reason never quotes the URL's credentials. */
export function cloneUrlProblem(url: string, schemes: readonly string[]): string | undefined {
  if (url === '') return 'the clone URL is empty';
  const shown = redactUrlsInText(url);
  if (url.startsWith('-')) return `clone URL '${shown}' starts with '-'`;
  if (/[\s;]/.test(url)) return `clone URL '${shown}' contains whitespace or ';'`;
  const scheme = cloneUrlScheme(url);
  if (!schemes.includes(scheme)) return `clone URL '${shown}' uses '${scheme}', which is not allowed here (allowed: ${schemes.join(', ')})`;
  return undefined;
}

/** Throws a ValidationError (a 400) unless `url` uses an allowed scheme. The runner reuses it before cloning. */
export function assertAllowedCloneUrl(url: string, schemes: readonly string[]): void {
  const problem = cloneUrlProblem(url, schemes);
  if (problem) throw new ValidationError(problem, 'clone_url');
}

/** A git adapter that can also vet clone URLs of layers given by commit (no git call needed). */
export interface CloneUrlPolicy {
  assertAllowedCloneUrl(url: string): void;
}

/** True when the git port also enforces the scheme allow-list (GitCliResolver does). */
export function hasCloneUrlPolicy(git: object): git is CloneUrlPolicy {
  return typeof (git as Partial<CloneUrlPolicy>).assertAllowedCloneUrl === 'function';
}
