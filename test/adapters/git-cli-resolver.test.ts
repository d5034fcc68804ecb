import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitCliResolver } from '../../functions/adapters/local/git-cli-resolver.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';

async function rejection(promise: Promise<unknown>): Promise<{ name: string; field?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { name: string; field?: string; message: string };
  }
  throw new Error('expected a rejection');
}

describe('GitCliResolver against a real repository', () => {
  let repo: TempRepo;
  let mainCommit: string;
  let featureCommit: string;
  beforeAll(() => {
    repo = makeTempRepo();
    mainCommit = repo.commit('main', 'site.yml', '- hosts: all\n');
    featureCommit = repo.commit('feature/x', 'site.yml', '- hosts: cfs_image\n');
    repo.commit('other/feature/x', 'other.yml', '[]\n');
  });
  afterAll(() => repo.dispose());

  it('resolves a branch to its commit with ls-remote over file://', async () => {
    // Arrange
    const git = new GitCliResolver();
    // Act
    const main = await git.resolveBranch(repo.url, 'main');
    const feature = await git.resolveBranch(repo.url, 'feature/x');
    // Assert
    expect(main).toBe(mainCommit);
    expect(feature).toBe(featureCommit);
  });

  it('answers GitError naming the branch when it does not exist', async () => {
    // Act
    const error = await rejection(new GitCliResolver().resolveBranch(repo.url, 'nope'));
    // Assert
    expect(error.name).toBe('GitError');
    expect(error.message).toBe(`branch 'nope' does not exist in ${repo.url}`);
  });

  it('answers GitError with git\'s own fatal line when the repository does not exist', async () => {
    // Act
    const error = await rejection(new GitCliResolver().resolveBranch(`${repo.url}-missing`, 'main'));
    // Assert: git's cause, not the advice it prints after it.
    expect(error.name).toBe('GitError');
    expect(error.message).toBe(
      `cannot read branch 'main' of ${repo.url}-missing: '${repo.dir}-missing' does not appear to be a git repository; Could not read from remote repository.`,
    );
  });

  it('keeps git\'s message but never the credentials of the URL', async () => {
    // Arrange: an HTTP server that refuses everything, reached with a user and password in the URL.
    const server = createServer((_request, response) => response.writeHead(404, { 'Content-Type': 'text/plain' }).end('no such repository\n'));
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    const port = (server.address() as AddressInfo).port;
    const url = `http://reader:s3cret-token@127.0.0.1:${port}/org/missing.git`;
    // Act
    const error = await rejection(new GitCliResolver({ allowedSchemes: ['http'] }).resolveBranch(url, 'main')).finally(
      () => new Promise<void>((done) => server.close(() => done())),
    );
    // Assert: what the server said (git's `remote:` line) and git's own fatal line.
    expect(error.name).toBe('GitError');
    expect(error.message).toBe(
      `cannot read branch 'main' of http://127.0.0.1:${port}/org/missing.git: no such repository; repository 'http://127.0.0.1:${port}/org/missing.git/' not found`,
    );
    expect(error.message).not.toMatch(/reader|s3cret/);
  });

  it('refuses a scheme outside the allow-list before running git, and git enforces it too', async () => {
    // Arrange
    const httpsOnly = new GitCliResolver({ allowedSchemes: ['https'] });
    // Act
    const refused = await rejection(httpsOnly.resolveBranch(repo.url, 'main'));
    const ext = await rejection(new GitCliResolver().resolveBranch('ext::sh -c id', 'main'));
    // Assert
    expect(refused.name).toBe('ValidationError');
    expect(refused.message).toContain("uses 'file', which is not allowed here (allowed: https)");
    expect(ext.name).toBe('ValidationError');
  });

  it('refuses option-like URLs and branch names', async () => {
    // Act
    const url = await rejection(new GitCliResolver().resolveBranch('--upload-pack=touch /tmp/x', 'main'));
    const branch = await rejection(new GitCliResolver().resolveBranch(repo.url, '--help'));
    // Assert
    expect(url.name).toBe('ValidationError');
    expect(branch.name).toBe('GitError');
    expect(branch.message).toContain('not a valid branch name');
  });

  it('gives up after its timeout', async () => {
    // Arrange: an "ssh" that never answers.
    const fakeSsh = join(repo.dir, 'silent-ssh');
    writeFileSync(fakeSsh, '#!/bin/sh\nexec sleep 10\n', { mode: 0o755 });
    const saved = process.env.GIT_SSH_COMMAND;
    process.env.GIT_SSH_COMMAND = fakeSsh;
    const git = new GitCliResolver({ timeoutMs: 300 });
    // Act
    const error = await rejection(git.resolveBranch('ssh://git@git.example/r.git', 'main')).finally(() => {
      if (saved === undefined) delete process.env.GIT_SSH_COMMAND;
      else process.env.GIT_SSH_COMMAND = saved;
    });
    // Assert
    expect(error.name).toBe('GitError');
    expect(error.message).toContain('git gave no answer within 0.3 s');
  });
});
