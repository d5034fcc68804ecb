/** Resolves a branch of a repository to a commit (git ls-remote), honouring the scheme allow-list. */
export interface GitResolver {
  /** Throws GitError naming the repo and branch when unreachable or unknown. */
  resolveBranch(cloneUrl: string, branch: string): Promise<string>;
}
