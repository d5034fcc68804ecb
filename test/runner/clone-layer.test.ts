import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloneLayer } from '../../functions/runner/layers.ts';
import { ProcessGroups } from '../../functions/runner/process-groups.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';

describe('cloneLayer with real git', () => {
  let repo: TempRepo;
  let commit: string;
  let work: string;
  beforeAll(() => {
    repo = makeTempRepo();
    commit = repo.commit('main', 'site.yml', '- hosts: all\n');
    work = mkdtempSync(join(tmpdir(), 'cfs-clone-'));
  });
  afterAll(() => {
    repo.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it('clones the pinned commit of a layer', async () => {
    // Act
    await cloneLayer({ index: 0, name: 'site', clone_url: repo.url, commit, playbook: 'site.yml' }, join(work, 'ok'), ['file'], new ProcessGroups());
    // Assert: the runner's own check that HEAD is the commit passed; the playbook is there.
    expect(await readFile(join(work, 'ok', 'site.yml'), 'utf8')).toBe('- hosts: all\n');
  });

  it("fails a layer whose repository does not exist with git's own fatal line", async () => {
    // Arrange
    const layer = { index: 0, name: 'site', clone_url: `${repo.url}-missing`, commit, playbook: 'site.yml' };
    // Act
    const failure = await cloneLayer(layer, join(work, 'missing'), ['file'], new ProcessGroups()).catch((error: Error) => error);
    // Assert
    expect(failure).toMatchObject({
      name: 'RunnerFailure',
      message: `layer 'site': cannot fetch ${repo.url}-missing at ${commit}: '${repo.dir}-missing' does not appear to be a git repository; Could not read from remote repository.`,
    });
  });
});
