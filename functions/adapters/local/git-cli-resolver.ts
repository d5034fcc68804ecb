import { spawn } from 'node:child_process';
import { GitError } from '../../core/errors.ts';
import { gitMessage } from '../../core/workflow/git-message.ts';
import { redactCloneUrl } from '../../core/workflow/redact.ts';
import { assertAllowedCloneUrl, DEFAULT_CLONE_URL_SCHEMES, type CloneUrlPolicy } from '../../core/configurations/clone-url.ts';
import type { GitResolver } from '../../ports/git-resolver.ts';
import type { GitAccess } from '../../core/sources/source-record.ts';
import { withGitAccess } from './git-access.ts';
import { SYSTEM_ENV } from '../../server/environment.ts';

export { assertAllowedCloneUrl, DEFAULT_CLONE_URL_SCHEMES };

export interface GitCliResolverOptions {
  /** Clone URL schemes git may use (GIT_ALLOW_PROTOCOL names). Default: https, ssh, file. */
  allowedSchemes?: readonly string[];
  /** A single ls-remote gives up after this long. Default 30 s. */
  timeoutMs?: number;
}

const BRANCH_PATTERN = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[^\s~^:?*[\\\x00-\x1f\x7f]+(?<![./])$/;

/**
 * Resolves branches with `git ls-remote` (no clone): the git binary is spawned directly
 * (never through a shell), `--` before the URL, `GIT_ALLOW_PROTOCOL` set from the scheme allow-list,
 * prompts off and a timeout. A URL with another scheme is refused (a 400) before git runs.
 */
export class GitCliResolver implements GitResolver, CloneUrlPolicy {
  readonly allowedSchemes: readonly string[];
  private readonly timeoutMs: number;

  constructor(options: GitCliResolverOptions = {}) {
    this.allowedSchemes = options.allowedSchemes ?? DEFAULT_CLONE_URL_SCHEMES;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  assertAllowedCloneUrl(url: string): void {
    assertAllowedCloneUrl(url, this.allowedSchemes);
  }

  async resolveBranch(cloneUrl: string, branch: string, access?: GitAccess): Promise<string> {
    this.assertAllowedCloneUrl(cloneUrl);
    if (!BRANCH_PATTERN.test(branch)) throw new GitError(`'${branch}' is not a valid branch name`);
    const ref = `refs/heads/${branch}`;
    // Errors name the repository without its user:password, as status and logs do.
    const shown = redactCloneUrl(cloneUrl);
    // A source's login reaches this one git process through GIT_ASKPASS files (git-access.ts), never its argv.
    const stdout = await withGitAccess(access, (extra) => this.git([...extra.config, 'ls-remote', '--', cloneUrl, ref], `cannot read branch '${branch}' of ${shown}`, extra.env));
    for (const line of stdout.split('\n')) {
      const [sha, name] = line.split('\t');
      if (name !== ref || !sha) continue;
      if (!/^[a-f0-9]{40}$/.test(sha)) throw new GitError(`branch '${branch}' of ${shown} resolved to '${sha}', not a SHA-1 commit id`);
      return sha;
    }
    throw new GitError(`branch '${branch}' does not exist in ${shown}`);
  }

  private git(args: string[], context: string, accessEnv: Record<string, string> = {}): Promise<string> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...accessEnv,
      GIT_ALLOW_PROTOCOL: this.allowedSchemes.join(':'),
      GIT_TERMINAL_PROMPT: '0',
      // ssh must fail rather than ask for a password or a host key confirmation.
      [SYSTEM_ENV.GIT_SSH_COMMAND]: process.env[SYSTEM_ENV.GIT_SSH_COMMAND] ?? 'ssh -o BatchMode=yes',
    };
    return new Promise((resolve, reject) => {
      // Own process group, so a timeout also kills what git started (ssh, remote helpers).
      const child = spawn('git', args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-8192)));
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }, this.timeoutMs);
      child.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new GitError(error.code === 'ENOENT' ? `${context}: git is not installed` : `${context}: ${error.message}`));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (timedOut) return reject(new GitError(`${context}: git gave no answer within ${this.timeoutMs / 1000} s`));
        if (code === 0) return resolve(stdout);
        // git's own fatal lines say why (a missing repository, a refused login), credentials removed.
        reject(new GitError(`${context}: ${gitMessage(stderr) || `git exited with code ${code}`}`));
      });
    });
  }
}
