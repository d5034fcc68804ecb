import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { cfs, startServer, tempDataDir } from './cli-harness.ts';

describe('cfs configurations', () => {
  let data: ReturnType<typeof tempDataDir>;
  let runtime: EmbeddedRuntime;
  let repo: TempRepo;
  let mainCommit: string;
  const file = (name: string, body: unknown) => {
    const path = join(data.dir, name);
    writeFileSync(path, typeof body === 'string' ? body : JSON.stringify(body));
    return path;
  };
  beforeAll(async () => {
    data = tempDataDir();
    ({ runtime } = await startServer(data.dir));
    repo = makeTempRepo();
    mainCommit = repo.commit('main', 'site.yml', '- hosts: all\n  tasks: []\n');
  });
  afterAll(async () => {
    await runtime.close();
    data.dispose();
    repo.dispose();
  });

  it('updates a configuration from a v3 file and shows the branch resolved to the commit', async () => {
    // Arrange
    const path = file('v3.json', { layers: [{ name: 'base', clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] });
    // Act
    const res = await cfs(runtime, 'configurations', 'update', 'cfg', '--file', path, '--format', 'json');
    // Assert
    expect(res.code).toBe(0);
    expect(JSON.parse(res.out).layers[0]).toEqual({ name: 'base', clone_url: repo.url, playbook: 'site.yml', branch: 'main', commit: mainCommit });
  });

  it('sends a v2 file unconverted and drops branches when asked', async () => {
    // Arrange
    const path = file('v2.json', { layers: [{ cloneUrl: repo.url, playbook: 'site.yml', branch: 'main' }] });
    // Act
    const res = await cfs(runtime, 'configurations', 'update', 'cfg-v2', '--file', path, '--drop-branches', 'True', '--format', 'json');
    // Assert
    expect(JSON.parse(res.out).layers[0]).toEqual({ clone_url: repo.url, playbook: 'site.yml', commit: mainCommit });
  });

  it('re-resolves branches with --update-branches', async () => {
    // Arrange
    const next = repo.commit('main', 'site.yml', '- hosts: all\n  tasks: [{debug: {msg: x}}]\n');
    // Act
    const res = await cfs(runtime, 'configurations', 'update', 'cfg', '--update-branches', '--format', 'json');
    // Assert
    expect(JSON.parse(res.out).layers[0].commit).toBe(next);
  });

  it('answers an unknown branch with one Error line naming the layer', async () => {
    // Arrange
    const path = file('bad.json', { layers: [{ clone_url: repo.url, playbook: 'site.yml', branch: 'nope' }] });
    // Act
    const res = await cfs(runtime, 'configurations', 'update', 'broken', '--file', path);
    // Assert
    expect(res.code).toBe(2);
    expect(res.err).toBe(`Error: Bad Request: layers[0]: branch 'nope' does not exist in ${repo.url}\n`);
  });

  it('refuses an unreadable or malformed file, or no file at all, without calling the API', async () => {
    // Act
    const missing = await cfs(runtime, 'configurations', 'update', 'x', '--file', join(data.dir, 'none.json'));
    const malformed = await cfs(runtime, 'configurations', 'update', 'x', '--file', file('broken.json', '{"layers": ['));
    const neither = await cfs(runtime, 'configurations', 'update', 'x');
    // Assert
    expect(missing.err).toContain('ENOENT');
    expect(malformed.err).toContain('is not valid JSON');
    expect(neither.err).toBe('Error: give either --file FILE or --update-branches\n');
    expect([missing.code, malformed.code, neither.code]).toEqual([1, 1, 1]);
  });

  it('describes, lists and deletes', async () => {
    // Act
    const describe = await cfs(runtime, 'configurations', 'describe', 'cfg');
    const list = await cfs(runtime, 'configurations', 'list');
    const v2 = await cfs(runtime, 'configurations', 'list', '--api-version', '2', '--format', 'json');
    const deleted = await cfs(runtime, 'configurations', 'delete', 'cfg-v2');
    const again = await cfs(runtime, 'configurations', 'delete', 'cfg-v2');
    // Assert
    expect(describe.out).toContain('Configuration cfg (last updated ');
    expect(describe.out).toContain(`0  base  ${repo.url}  site.yml`);
    expect(list.out).toMatch(/^NAME\s+LAST UPDATED\s+LAYERS\ncfg\s/);
    expect(JSON.parse(v2.out)[0]).toHaveProperty('lastUpdated');
    expect(deleted.out).toBe('Deleted configuration cfg-v2.\n');
    expect(again.err).toBe("Error: Not Found: configuration 'cfg-v2' does not exist\n");
  });
});
