import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { cp, lstat, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { buildSampleRoot } from '../../functions/cli/images/sample-root.ts';
import { layerCacheKeys } from '../../functions/core/layer-cache/entry.ts';
import { LayerCache } from '../../functions/core/layer-cache/layer-cache.ts';
import { promoteStagedLayers } from '../../functions/core/layer-cache/staged-records.ts';
import { parseXattrDump } from '../../functions/runner/change-sets/format.ts';
import { RUNNER_VERSION } from '../../functions/runner/runner-version.ts';
import type { RunDocument, RunOutcome } from '../../functions/core/workflow/run-document.ts';
import { runCustomization, type RunnerDeps } from '../../functions/runner/run-customization.ts';
import { memoryRootsUnder, overlayRootsUnder } from '../../functions/runner/mounts.ts';
import { parseRunDocument } from '../../functions/runner/run-document.ts';
import { killOrphanedRun } from '../../functions/runner/workspace.ts';
import { ProcessMemoryBudget } from '../../functions/runner/workspace-memory.ts';
import { TempRepos } from '../helpers/git-repo.ts';

const run = promisify(execFile);

// Two source images from the sample root (a fifo and a char device in each), told apart by a marker file.
const IMAGE_A = '7c1d2e3f-0a1b-4c2d-8e3f-4a5b6c7d8e01';
const IMAGE_B = '9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d7c02';

let base: string;
let store: FsArtifactStore;
const repos = new TempRepos();
const sources = new Map<string, { key: string; size: number; sha256: string }>();

/** Three deterministic layers: files, modes, owners, links, an xattr, removals (the third one is changed by tests). */
const LAYER_0 = [
  '- hosts: cfs_image',
  '  gather_facts: false',
  '  tasks:',
  '    - copy: {dest: /etc/layer0, content: "zero\\n", mode: "0640", owner: "1000", group: "1000"}',
  '    - file: {path: /opt/app/data, state: directory, mode: "0750"}',
  '    - copy: {dest: /opt/app/data/config, content: "a=1\\n"}',
  '    - command: ln -f /opt/app/data/config /opt/app/data/config-link',
  '    - file: {src: /etc/layer0, dest: /etc/layer0-symlink, state: link}',
  '    - command: python3 -c "import os; os.setxattr(\'/etc/image-marker\', \'user.cfs\', b\'layer-zero\')"',
  '    - file: {path: /etc/image-motd, state: absent}',
  '    - file: {path: /srv/moved-from/sub, state: directory}',
  '    - copy: {dest: /srv/moved-from/sub/kept, content: "moved with its directory\\n"}',
  '',
].join('\n');
const LAYER_1 = [
  '- hosts: Compute',
  '  gather_facts: false',
  '  tasks:',
  '    - lineinfile: {path: /etc/layer0, line: compute-one}',
  '- hosts: cfs_image',
  '  gather_facts: false',
  '  tasks:',
  '    - file: {path: /opt/app/data, state: absent}',
  '    - file: {path: /opt/app/data, state: directory, mode: "0700"}',
  '    - copy: {dest: /opt/app/data/new, content: "replaced\\n"}',
  '    - file: {path: /etc/layer0-symlink, state: absent}',
  '    - copy: {dest: /etc/layer0-symlink, content: "now a file\\n"}',
  '    - file: {path: /etc/image-marker, mode: "0600"}',
  // A directory of the layer below renamed (an overlayfs redirect): its change set holds the whole directory.
  '    - command: python3 -c "import os; os.rename(\'/srv/moved-from\', \'/srv/moved-to\')"',
  '',
].join('\n');
const layer2 = (text: string) =>
  ['- hosts: all', '  gather_facts: false', '  tasks:', `    - copy: {dest: /etc/layer2, content: "${text}\\n"}`, '    - file: {path: /usr/bin/touch, state: absent}', ''].join('\n');
const FAILING = ['- hosts: all', '  gather_facts: false', '  tasks:', '    - fail: {msg: "layer two fails"}', ''].join('\n');

const layerRepos = { first: { url: '', commit: '' }, second: { url: '', commit: '' } };

/** A run document for both images with the three layers and the layer cache on. */
function documentFor(test: string, session: string, third: { url: string; commit: string }, overrides: Partial<RunDocument> = {}): RunDocument {
  const image = (id: string, name: string) => ({
    image_id: id,
    source_name: name,
    arch: 'x86_64' as const,
    rootfs: sources.get(id)!,
    result_name: `${name}_${session}`,
    result_id: `result-${id.slice(0, 8)}-${session}`,
    upload_prefix: `boot-images/result-${id.slice(0, 8)}-${session}/`,
  });
  const layers = [layerRepos.first, layerRepos.second, third];
  return parseRunDocument({
    session,
    images: [image(IMAGE_A, 'compute'), image(IMAGE_B, 'application')],
    inventory: {
      all: {
        children: {
          cfs_image: { hosts: { [IMAGE_A]: {}, [IMAGE_B]: {} }, vars: { ansible_connection: 'community.general.chroot', ansible_python_interpreter: '/usr/bin/python3' } },
          Compute: { hosts: { [IMAGE_A]: {} } },
          Application: { hosts: { [IMAGE_B]: {} } },
        },
      },
    },
    layers: layers.map((l, index) => ({ index, name: `layer${index}`, clone_url: l.url, commit: l.commit, playbook: 'site.yml' })),
    // The test's own extra var: every test gets keys of its own, so no test reuses another's layers.
    ansible: { limit: '', verbosity: 0, passthrough: ['-e', `cfs_test=${test}`] },
    squashfs: { compressor: 'source' },
    allowed_schemes: ['file'],
    // The runner's own prefix (as RenderInventory makes one per run): it stages its layers' change sets there.
    outcome_key: `${runnerPrefix(session)}runner-outcome.json`,
    logs_prefix: `${runnerPrefix(session)}logs/`,
    progress_key: `${runnerPrefix(session)}runner-progress.json`,
    layer_cache: { reuse: true, max_age_seconds: 3600 },
    ...overrides,
  });
}

/** A session's runner prefix: `runner/<token>/`, the token made from its name. */
const runnerPrefix = (session: string) => `runner/${createHash('sha256').update(session).digest('hex').slice(0, 32)}/`;

/**
 * Runs a session in process and keeps its log lines; then records what the runner staged, as the
 * control plane's PackageImage or FailSession step does.
 */
async function session(document: RunDocument, deps: Partial<RunnerDeps> = {}): Promise<{ outcome: RunOutcome; exitCode: number; lines: string[] }> {
  const lines: string[] = [];
  const result = await runCustomization(document, { store, local: store, workspace: join(base, 'workspaces', document.session), log: (line) => lines.push(line), ...deps });
  const promoted = await promoteStagedLayers(new LayerCache(store), store, document, result.outcome, RUNNER_VERSION);
  lines.push(...promoted.refused.map((line) => `not recorded: ${line}`));
  // For diagnosis: CFS_TEST_RUNNER_LOG=/tmp/x writes each session's runner log to /tmp/x.<session>.
  if (process.env.CFS_TEST_RUNNER_LOG) await writeFile(`${process.env.CFS_TEST_RUNNER_LOG}.${document.session}`, lines.join('\n'));
  return { ...result, lines };
}

/** One entry of a tree, everything but its mtime: what two builds of the same layers must agree on. */
interface TreeEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  content?: string;
  target?: string;
  xattrs: string;
  /** The other names of this file (a hard-link group), sorted. */
  links: string[];
}

/** A result squashfs unpacked as the host's root (owners, devices and xattrs kept), read entry by entry. */
async function resultTree(rootfsKey: string): Promise<Map<string, TreeEntry>> {
  const dir = await mkdtemp(join(base, 'unpacked-'));
  const root = join(dir, 'root');
  await run('unsquashfs', ['-no-progress', '-quiet', '-d', root, store.pathOf(rootfsKey)]);
  const entries = new Map<string, TreeEntry>();
  const byInode = new Map<number, string[]>();
  const walk = async (path: string, name: string): Promise<void> => {
    const info = await lstat(path);
    const type = info.isDirectory() ? 'dir' : info.isSymbolicLink() ? 'symlink' : info.isFile() ? 'file' : info.isCharacterDevice() ? 'char' : info.isBlockDevice() ? 'block' : info.isFIFO() ? 'fifo' : 'other';
    const entry: TreeEntry = { type, mode: info.mode, uid: info.uid, gid: info.gid, rdev: info.rdev, xattrs: '', links: [] };
    if (info.isFile()) {
      entry.content = createHash('sha256').update(await readFile(path)).digest('hex');
      if (info.nlink > 1) byInode.set(info.ino, [...(byInode.get(info.ino) ?? []), name]);
    }
    if (info.isSymbolicLink()) entry.target = await readlink(path);
    entries.set(name, entry);
    if (info.isDirectory()) for (const child of (await readdir(path)).sort()) await walk(join(path, child), `${name}/${child}`);
  };
  await walk(root, '');
  for (const names of byInode.values()) for (const name of names) entries.get(name)!.links = [...names].sort();
  // Every entry's xattrs in one walk (never through a link), as sorted `name=value` lines.
  const dump = await run('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: root, maxBuffer: 64 << 20 });
  for (const { path, attributes } of parseXattrDump(dump.stdout)) {
    const entry = entries.get(path === '.' ? '' : `/${path.replace(/^\.\//, '')}`);
    if (entry) entry.xattrs = [...attributes].map(([name, value]) => `${name}=${value}`).sort().join('\n');
  }
  await rm(dir, { recursive: true, force: true });
  return entries;
}

async function resultFile(rootfsKey: string, path: string): Promise<string | undefined> {
  return run('unsquashfs', ['-cat', store.pathOf(rootfsKey), path]).then(
    (r) => r.stdout,
    () => undefined,
  );
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'cfs-layer-cache-e2e-'));
  store = new FsArtifactStore(join(base, 'store'));
  const sample = join(base, 'sample');
  await buildSampleRoot(sample);
  for (const [id, marker] of [
    [IMAGE_A, 'compute'],
    [IMAGE_B, 'application'],
  ] as const) {
    const root = join(base, `root-${marker}`);
    await cp(sample, root, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    await writeFile(join(root, 'etc/image-marker'), `${marker}\n`);
    await writeFile(join(root, 'etc/image-motd'), 'source motd\n');
    await run('mknod', [join(root, 'dev/cfs-null'), 'c', '1', '3']);
    await run('mkfifo', [join(root, 'run/cfs-fifo')]);
    const squashfs = join(base, `${marker}.squashfs`);
    await run('mksquashfs', [root, squashfs, '-noappend', '-quiet', '-no-progress', '-comp', 'lz4']);
    const rootfs = await store.put(`boot-images/${id}/rootfs`, createReadStream(squashfs));
    sources.set(id, { key: rootfs.key, size: rootfs.size, sha256: rootfs.sha256 });
    await rm(root, { recursive: true });
  }
  await rm(sample, { recursive: true });
  layerRepos.first = repos.with({ 'site.yml': LAYER_0 });
  layerRepos.second = repos.with({ 'site.yml': LAYER_1 });
});

afterAll(async () => {
  repos.disposeAll();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('the layer cache in the runner', () => {
  it('reuses every layer but the changed last one on a second run, and the result holds every layer; a change set not matching its digest is discarded and its layer runs again', async () => {
    // Arrange
    const third = repos.with({ 'site.yml': layer2('first') });
    const first = await session(documentFor('cache', 'cache-first', third));
    const changed = third.repo.commit('main', 'site.yml', layer2('second'));

    // Act
    const second = await session(documentFor('cache', 'cache-second', { url: third.url, commit: changed }), { local: undefined });
    const entry = JSON.parse(await readFile(store.pathOf(layerCacheKeys.entry(second.outcome.images[1]!.layer_keys![1]!.key)), 'utf8')) as { change_set: { key: string } };
    await writeFile(store.pathOf(entry.change_set.key), 'not the change set');
    const tampered = await session(documentFor('cache', 'cache-tampered', { url: third.url, commit: changed }));

    // Assert
    expect(first.exitCode).toBe(0);
    expect(first.outcome.layers.map((l) => l.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(second.exitCode).toBe(0);
    expect(second.outcome.layers.map((l) => l.state)).toEqual(['cached', 'cached', 'succeeded']);
    expect(second.outcome.layers[0]!.cached).toEqual({ session: 'cache-first', created: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    expect(second.lines).toContainEqual(expect.stringMatching(/^layer 1 'layer1': cached \(from session cache-first, recorded \S+, \d+ min old\)$/));
    expect(second.lines.some((l) => l.startsWith("cloning layer 0 "))).toBe(false);
    const keysA = second.outcome.images[0]!.layer_keys!;
    expect(keysA.map((k) => k.index)).toEqual([0, 1, 2]);
    expect(keysA.slice(0, 2)).toEqual(first.outcome.images[0]!.layer_keys!.slice(0, 2));
    expect(keysA[2]!.key).not.toBe(first.outcome.images[0]!.layer_keys![2]!.key);
    const progress = JSON.parse(await readFile(store.pathOf(`${runnerPrefix('cache-second')}runner-progress.json`), 'utf8')) as { layers: Array<{ state: string }> };
    expect(progress.layers.map((l) => l.state)).toEqual(['cached', 'cached', 'succeeded']);
    const rootfsA = second.outcome.images[0]!.uploaded!.rootfs.key;
    expect(await resultFile(rootfsA, 'etc/layer0')).toBe('zero\ncompute-one\n');
    expect(await resultFile(rootfsA, 'etc/layer2')).toBe('second\n');
    expect(await resultFile(rootfsA, 'opt/app/data/new')).toBe('replaced\n');
    expect(await resultFile(rootfsA, 'opt/app/data/config')).toBeUndefined();
    expect(await resultFile(second.outcome.images[1]!.uploaded!.rootfs.key, 'etc/layer0')).toBe('zero\n');
    expect(await resultFile(rootfsA, 'srv/moved-to/sub/kept')).toBe('moved with its directory\n');
    expect(await resultFile(rootfsA, 'srv/moved-from/sub/kept')).toBeUndefined();
    expect(first.lines.filter((l) => l.includes('was not recorded'))).toEqual([]);
    // Each recorded layer's changes report is kept under its key.
    const changes = await new LayerCache(store).changes(keysA[1]!.key);
    expect(changes?.files).toContainEqual({ path: '/opt/app/data/new', change: 'added', type: 'file' });
    expect(existsSync(join(base, 'workspaces', 'cache-second'))).toBe(false);
    // The tampered change set: never trusted on its name, layer 1 and what follows it run again.
    expect(tampered.exitCode).toBe(0);
    expect(tampered.outcome.layers.map((l) => l.state)).toEqual(['cached', 'succeeded', 'succeeded']);
    expect(tampered.lines).toContainEqual(expect.stringMatching(/^layer 1 'layer1': the cached change set of image 9e8d7c6b-\S+ \(\S+\) does not match its digest: discarded, the layer runs again/));
    expect(await resultFile(tampered.outcome.images[1]!.uploaded!.rootfs.key, 'opt/app/data/new')).toBe('replaced\n');
  });

  it('resumes after a failed layer: the layers before it are reused, the failed one never recorded', async () => {
    // Arrange
    const third = repos.with({ 'site.yml': FAILING });
    const failed = await session(documentFor('resume', 'resume-failed', third));
    const failedKeys = failed.outcome.images.map((i) => i.layer_keys![2]!.key);
    const fixed = third.repo.commit('main', 'site.yml', layer2('fixed'));

    // Act
    const resumed = await session(documentFor('resume', 'resume-again', { url: third.url, commit: fixed }));

    // Assert
    expect(failed.exitCode).toBe(1);
    expect(failed.outcome.layers.map((l) => l.state)).toEqual(['succeeded', 'succeeded', 'failed']);
    for (const key of failedKeys) expect(existsSync(store.pathOf(layerCacheKeys.entry(key)))).toBe(false);
    expect(resumed.exitCode).toBe(0);
    expect(resumed.outcome.layers.map((l) => l.state)).toEqual(['cached', 'cached', 'succeeded']);
    expect(await resultFile(resumed.outcome.images[1]!.uploaded!.rootfs.key, 'etc/layer2')).toBe('fixed\n');
  });

  it('builds from the cache exactly what a full run builds, but for mtimes, and the tree-compare path builds the same; a run with reuse off records its layers again', async () => {
    // Arrange
    const third = repos.with({ 'site.yml': layer2('equivalent') });
    const full = await session(documentFor('equal', 'equal-full', third, { layer_cache: { reuse: false, max_age_seconds: 3600 } }));

    // Act
    const cached = await session(documentFor('equal', 'equal-cached', third));
    const tree = await session(documentFor('equal', 'equal-tree', third, { layer_cache: { reuse: false, max_age_seconds: 3600 } }), { changeCapture: 'tree' });
    const treeCached = await session(documentFor('equal', 'equal-tree-cached', third), { changeCapture: 'tree' });

    // Assert
    expect([full.exitCode, cached.exitCode, tree.exitCode, treeCached.exitCode]).toEqual([0, 0, 0, 0]);
    expect(cached.outcome.layers.map((l) => l.state)).toEqual(['cached', 'cached', 'cached']);
    expect(treeCached.outcome.layers.map((l) => l.state)).toEqual(['cached', 'cached', 'cached']);
    expect(tree.outcome.images.map((i) => i.layer_keys)).toEqual(full.outcome.images.map((i) => i.layer_keys));
    // A run with reuse off still records its layers: the tree-compare one recorded them again after the full run.
    expect(treeCached.outcome.layers.map((l) => l.cached?.session)).toEqual(['equal-tree', 'equal-tree', 'equal-tree']);
    for (const i of [0, 1]) {
      const expected = await resultTree(full.outcome.images[i]!.uploaded!.rootfs.key);
      expect(expected.get('/etc/image-marker')?.xattrs ?? '').toContain('user.cfs');
      expect(expected.get('/dev/cfs-null')).toMatchObject({ type: 'char' });
      expect(expected.get('/opt/app/data/config-link')).toBeUndefined();
      for (const other of [cached, tree, treeCached]) expect(await resultTree(other.outcome.images[i]!.uploaded!.rootfs.key)).toEqual(expected);
    }
  });

  it('records a layer in the background while the next runs, out of that layer\'s reach from its controller side and its image', async () => {
    // Arrange: layer 0 leaves 48 MB to squash; layer 1 looks for change sets and layer directories from both sides.
    const big = repos.with({ 'site.yml': ['- hosts: all', '  gather_facts: false', '  tasks:', '    - command: dd if=/dev/urandom of=/var/big bs=1M count=48', ''].join('\n') });
    const find = "find / -name proc -prune -o -name sys -prune -o -name '*.squashfs' -print -o -name 'layer-*' -print -o -name stack -type d -print 2>/dev/null; true";
    const probe = repos.with({
      'site.yml': [
        '- hosts: all',
        '  gather_facts: false',
        '  tasks:',
        '    - copy:',
        '        dest: /etc/seen-controller',
        '        content: |',
        `          {{ lookup('pipe', "${find}") }}`,
        `    - shell: "${find.replace('; true', ' > /etc/seen-image; true')}"`,
        '',
      ].join('\n'),
    });
    const layers = [big, probe].map((l, index) => ({ index, name: `layer${index}`, clone_url: l.url, commit: l.commit, playbook: 'site.yml' }));

    // Act
    const result = await session(documentFor('background', 'background', probe, { layers }));

    // Assert
    expect(result.exitCode).toBe(0);
    expect(result.outcome.layers.map((l) => l.state)).toEqual(['succeeded', 'succeeded']);
    const layer1Started = result.lines.findIndex((l) => l.startsWith("running layer 1 'layer1'"));
    const layer0Kept = result.lines.findIndex((l) => /^layer 0 'layer0': change set of image \S+ kept for the layer cache \(4\d\.\d MiB, .*in the background/.test(l));
    expect(layer1Started).toBeGreaterThanOrEqual(0);
    expect(layer0Kept).toBeGreaterThan(layer1Started);
    for (const image of result.outcome.images) {
      expect(existsSync(store.pathOf(layerCacheKeys.entry(image.layer_keys![0]!.key)))).toBe(true);
      expect((await resultFile(image.uploaded!.rootfs.key, 'etc/seen-controller'))?.trim()).toBe('');
      expect((await resultFile(image.uploaded!.rootfs.key, 'etc/seen-image'))?.trim()).toBe('');
    }
  });

  it('keeps a held root usable on its overlay, over the tmpfs of its layers, until the workspace is removed', async () => {
    // Arrange
    const failing = repos.with({ 'site.yml': ['- hosts: Compute', '  gather_facts: false', '  tasks:', '    - copy: {dest: /etc/partial, content: "written\\n"}', '    - command: /bin/false', ''].join('\n') });
    const document = documentFor('held', 'held', failing, { debug_hold: true });
    const ws = join(base, 'workspaces', 'held');

    // Act
    const held = await session(document, { memory: new ProcessMemoryBudget(8 * 2 ** 30) });
    const overlays = await overlayRootsUnder(ws);
    const tmpfs = await memoryRootsUnder(ws);
    const layer0 = await readFile(join(ws, 'images', IMAGE_A, 'etc/layer0'), 'utf8');
    const partial = await readFile(join(ws, 'images', IMAGE_A, 'etc/partial'), 'utf8');
    await killOrphanedRun(ws);

    // Assert
    expect(held.exitCode).toBe(1);
    expect(held.outcome.debug?.images.map((i) => i.root)).toEqual([join(ws, 'images', IMAGE_A), join(ws, 'images', IMAGE_B)]);
    expect(held.lines.filter((l) => l.includes('unpacking into memory'))).toHaveLength(2);
    expect(overlays.sort()).toEqual([join(ws, 'images', IMAGE_A), join(ws, 'images', IMAGE_B)].sort());
    expect(tmpfs.sort()).toEqual([join(ws, 'stack', IMAGE_A), join(ws, 'stack', IMAGE_B)].sort());
    expect([layer0, partial]).toEqual(['zero\ncompute-one\n', 'written\n']);
    expect(existsSync(store.pathOf(layerCacheKeys.entry(held.outcome.images[0]!.layer_keys![1]!.key)))).toBe(true);
    expect(existsSync(store.pathOf(layerCacheKeys.entry(held.outcome.images[0]!.layer_keys![2]!.key)))).toBe(false);
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(ws);
    expect(existsSync(ws)).toBe(false);
  });
});
