import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GitAccess } from '../../core/sources/source-record.ts';

/** What one git process needs, on top of its own arguments, to use a source's login. */
export interface GitAccessArgs {
  /** Config given before the subcommand (`git <config> fetch ...`): no credential helper, so nothing stores the login. */
  config: string[];
  /** GIT_ASKPASS (the script that answers git's username and password prompts) and GIT_SSL_CAINFO (the CA bundle). */
  env: Record<string, string>;
}

// git asks "Username for '<url>': " and then "Password for '<url>': "; the answers are read from files beside the script.
const ASKPASS = `#!/bin/sh
case "$1" in
  Username*) exec cat "\${0%/*}/username" ;;
  *) exec cat "\${0%/*}/password" ;;
esac
`;

/**
 * Runs `work` with a source's login available to the git processes it starts, and to nothing
 * else: the username and password are written to owner-only files in a fresh owner-only
 * temporary directory, read only by a GIT_ASKPASS script when the server asks for them, and
 * removed when `work` ends. They never appear in an argv, in an environment variable or in a
 * URL git could write to `.git/config` or FETCH_HEAD; `credential.helper` is emptied so no
 * helper stores them. Without `access`, `work` gets nothing extra.
 */
export async function withGitAccess<T>(access: GitAccess | undefined, work: (extra: GitAccessArgs) => Promise<T>): Promise<T> {
  if (!access) return work({ config: [], env: {} });
  const directory = await mkdtemp(join(tmpdir(), 'cfs-git-access-'));
  try {
    await chmod(directory, 0o700);
    await writeFile(join(directory, 'username'), access.username, { mode: 0o600 });
    await writeFile(join(directory, 'password'), access.password, { mode: 0o600 });
    await writeFile(join(directory, 'askpass'), ASKPASS, { mode: 0o700 });
    const env: Record<string, string> = { GIT_ASKPASS: join(directory, 'askpass'), SSH_ASKPASS: join(directory, 'askpass') };
    if (access.caPem !== undefined) {
      await writeFile(join(directory, 'ca.pem'), access.caPem, { mode: 0o600 });
      // The variable, not http.sslCAInfo: git lets GIT_SSL_CAINFO (set on many hosts) override the setting.
      env.GIT_SSL_CAINFO = join(directory, 'ca.pem');
    }
    return await work({ config: ['-c', 'credential.helper='], env });
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
