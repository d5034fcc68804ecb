import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A real git repository in a temp dir, reachable by a file:// URL, for branch resolution tests. */
export interface TempRepo {
  dir: string;
  url: string;
  /** Commits a file on `branch` (created from the current HEAD when new) and returns the commit id. */
  commit(branch: string, file: string, content: string): string;
  dispose(): void;
}

export function makeTempRepo(): TempRepo {
  const dir = mkdtempSync(join(tmpdir(), 'cfs-git-'));
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', dir, ...args], {
      encoding: 'utf8',
      env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example' },
    }).trim();
  git('init', '-q', '-b', 'main');
  return {
    dir,
    url: `file://${dir}`,
    commit(branch, file, content) {
      const current = git('symbolic-ref', '--short', 'HEAD');
      if (current !== branch) {
        const exists = git('branch', '--list', branch) !== '';
        git('checkout', '-q', ...(exists ? [branch] : ['-b', branch]));
      }
      writeFileSync(join(dir, file), content);
      git('add', file);
      git('commit', '-q', '-m', `${file} on ${branch}`);
      return git('rev-parse', 'HEAD');
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Repositories made for one test file, each with files committed on `main`; `disposeAll` removes them. */
export class TempRepos {
  private readonly made: TempRepo[] = [];

  /** A new repository holding `files` (committed one by one on main); its URL and last commit. */
  with(files: Record<string, string>): { url: string; commit: string; repo: TempRepo } {
    const repo = makeTempRepo();
    this.made.push(repo);
    let commit = '';
    for (const [file, content] of Object.entries(files)) commit = repo.commit('main', file, content);
    return { url: repo.url, commit, repo };
  }

  disposeAll(): void {
    for (const repo of this.made.splice(0)) repo.dispose();
  }
}
