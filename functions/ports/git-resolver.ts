import type { GitAccess } from '../core/sources/source-record.ts';

/** Resolves a branch of a repository to a commit (git ls-remote), honouring the scheme allow-list. */
export interface GitResolver {
  /**
   * Throws GitError naming the repo and branch when unreachable or unknown. `access` is a CFS
   * source's login and CA bundle, for that one call only.
   */
  resolveBranch(cloneUrl: string, branch: string, access?: GitAccess): Promise<string>;
}
