import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { runCli } from '../../functions/cli/main.ts';
import type { CliIo } from '../../functions/cli/io.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { waitFor } from '../helpers/wait.ts';
import { recordCase } from './results.ts';
import { bearer, cliEnv } from '../helpers/api-token.ts';

// Faults (issue 11, item 2) on the whole embedded runtime: real runner, Ansible, squashfs.
// After each: complete with succeeded "false" and a reason, no result image, no workspace or
// partial upload left, the source image's bytes unchanged. (A server killed mid-session and
// restarted is test/e2e/server-restart.test.ts, run by `npm test`.)

interface Source {
  id: string;
  rootfsPath: string;
}

describe('faults during a session', () => {
  let parent: string;
  let dataDir: string;
  let runtime: EmbeddedRuntime;
  let repo: TempRepo;
  let store: FsArtifactStore;

  const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

  async function cli(...argv: string[]): Promise<string> {
    let out = '';
    let err = '';
    const io: CliIo = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`), env: cliEnv(runtime) };
    const code = await runCli(argv, io);
    if (code !== 0) throw new Error(`cfs ${argv.join(' ')}: ${err}`);
    return out;
  }

  async function sampleImage(name: string): Promise<Source> {
    const { id } = JSON.parse(await cli('images', 'build-sample', '--name', name, '--format', 'json')) as { id: string };
    const image = (await runtime.ports.images.get(id))!;
    const manifest = JSON.parse(readFileSync(store.pathOf(image.link!.path.replace(/^s3:\/\//, '')), 'utf8')) as { artifacts: Array<{ type: string; link: { path: string } }> };
    const rootfs = manifest.artifacts.find((a) => a.type.includes('rootfs'))!;
    return { id, rootfsPath: store.pathOf(rootfs.link.path.replace(/^s3:\/\//, '')) };
  }

  /** Files under the artifact store (image bytes, manifests), not the store's own bookkeeping. */
  function storedFiles(): string[] {
    const out: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        const path = join(dir, entry);
        if (statSync(path).isDirectory()) walk(path);
        else out.push(relative(store.root, path));
      }
    };
    walk(store.root);
    return out.filter((p) => !p.startsWith('.etags')).sort();
  }

  async function startSession(name: string, playbook: string, source: Source): Promise<void> {
    const commit = repo.commit('main', `${name}.yml`, playbook);
    const put = await fetch(`${runtime.url}/apis/cfs/v3/configurations/${name}`, { method: 'PUT', headers: { ...bearer(runtime), 'content-type': 'application/json' }, body: JSON.stringify({ layers: [{ name: 'only', clone_url: repo.url, commit, playbook: `${name}.yml` }] }) });
    expect(put.status).toBe(200);
    const created = await fetch(`${runtime.url}/apis/cfs/v3/sessions`, { method: 'POST', headers: { ...bearer(runtime), 'content-type': 'application/json' }, body: JSON.stringify({ name, configuration_name: name, target: { definition: 'image', groups: [{ name: 'Compute', members: [source.id] }] } }) });
    expect(created.status).toBe(201);
  }

  async function finished(name: string): Promise<SessionRecord> {
    return waitFor(async () => {
      const s = (await (await fetch(`${runtime.url}/apis/cfs/v3/sessions/${name}`, { headers: bearer(runtime) })).json()) as SessionRecord;
      return s.status.session.status === 'complete' ? s : undefined;
    }, 180_000, `session ${name} to complete`);
  }

  /** The promise after a failure: reason given, nothing registered, nothing left behind, source intact. */
  async function assertCleanFailure(session: SessionRecord, imagesBefore: number, filesBefore: string[], source: Source, sourceSha: string): Promise<string> {
    const reason = session.status.failure?.reason ?? '';
    expect(session.status.session.succeeded).toBe('false');
    expect(reason.length).toBeGreaterThan(0);
    expect(session.status.artifacts).toEqual([]);
    expect((await runtime.ports.images.list()).length).toBe(imagesBefore);
    await waitFor(async () => (existsSync(join(dataDir, 'work', 'workspaces', session.name)) ? undefined : true), 30_000, 'the workspace to be removed');
    // What may stay: the session's own logs, outcome and progress (kept for `cfs sessions logs`, under
    // sessions/ and the runner's prefix), never image bytes (a runner prefix's results/ must be gone);
    // and the layer cache's records of the layers that finished (what creating the session again
    // resumes from: issue 19), whose staged copies under the runner's prefix must be gone too.
    const record = /^runner\/[0-9a-f]{32}\/(logs\/.+|runner-outcome\.json|runner-progress\.json)$/;
    const leftover = () => storedFiles().filter((f) => !filesBefore.includes(f) && !f.startsWith(`sessions/${session.name}/`) && !f.startsWith('layer-cache/') && !record.test(f));
    await waitFor(async () => (leftover().length === 0 ? true : undefined), 30_000, 'uploads to be removed').catch(() => undefined);
    expect(leftover()).toEqual([]);
    expect(sha256(source.rootfsPath)).toBe(sourceSha);
    return reason;
  }

  beforeAll(async () => {
    parent = mkdtempSync(join(tmpdir(), 'cfs-faults-'));
    dataDir = join(parent, 'data');
    repo = makeTempRepo();
    runtime = await startEmbeddedRuntime({ dataDir, port: 0, maxConcurrentRuns: 2 });
    store = runtime.ports.artifacts as FsArtifactStore;
  });
  afterAll(async () => {
    await runtime.close();
    repo.dispose();
    rmSync(parent, { recursive: true, force: true });
  });

  it('fails cleanly when a layer fails', async () => {
    // Arrange
    const source = await sampleImage('fault-layer');
    const before = { images: (await runtime.ports.images.list()).length, files: storedFiles(), sha: sha256(source.rootfsPath) };
    // Act
    await startSession('fault-layer', '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - fail:\n        msg: this layer fails on purpose\n', source);
    const session = await finished('fault-layer');
    // Assert
    const reason = await assertCleanFailure(session, before.images, before.files, source, before.sha);
    expect(session.status.failure?.layer).toBeDefined();
    recordCase({ id: 'fault-layer', area: 'faults', case: 'a layer fails (Ansible `fail` task)', tried: 1, result: `complete, succeeded "false": "${reason.slice(0, 120)}"; no image registered, no workspace or upload left, source sha256 unchanged`, passed: true });
  });

  it('fails cleanly when the runner is killed mid-run', async () => {
    // Arrange
    const source = await sampleImage('fault-kill');
    const before = { images: (await runtime.ports.images.list()).length, files: storedFiles(), sha: sha256(source.rootfsPath) };
    await startSession('fault-kill', '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - command: sleep 120\n', source);
    const runners = await waitFor(async () => {
      const pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((pid) => {
        try {
          const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          return cmdline.includes('runner') && cmdline.includes(dataDir);
        } catch {
          return false;
        }
      });
      return pids.length > 0 ? pids.map(Number) : undefined;
    }, 60_000, 'a runner process');
    await waitFor(async () => {
      const s = (await (await fetch(`${runtime.url}/apis/cfs/v3/sessions/fault-kill`, { headers: bearer(runtime) })).json()) as SessionRecord;
      return s.status.steps?.some((step) => step.name === 'ansible') ? true : undefined;
    }, 60_000, 'the ansible step');
    // Act
    for (const pid of runners) process.kill(pid, 'SIGKILL');
    const session = await finished('fault-kill');
    // Assert
    const reason = await assertCleanFailure(session, before.images, before.files, source, before.sha);
    recordCase({ id: 'fault-runner-killed', area: 'faults', case: 'the runner process is SIGKILLed while Ansible runs', tried: 1, result: `complete, succeeded "false": "${reason.slice(0, 120)}"; no image registered, no workspace or upload left, source sha256 unchanged`, passed: true });
  });

  it('fails cleanly when the artifact store fails during the upload of the result', async () => {
    // Arrange: while Ansible runs, a directory is put where the result's rootfs object must go,
    // so the store's final rename fails (as root too), as a full or broken disk would.
    const source = await sampleImage('fault-upload');
    const before = { images: (await runtime.ports.images.list()).length, files: storedFiles(), sha: sha256(source.rootfsPath) };
    await startSession('fault-upload', '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - command: sleep 4\n', source);
    const prefix = await waitFor(async () => {
      // This session's run document: earlier sessions' stay in the store as their record.
      for (const file of storedFiles().filter((f) => f === 'sessions/fault-upload/run-document.json')) {
        const text = readFileSync(join(store.root, file), 'utf8');
        const match = /"upload_prefix"\s*:\s*"([^"]+)"/.exec(text);
        if (match) return match[1];
      }
      return undefined;
    }, 60_000, 'the run document naming the upload prefix');
    // The runner's upload and the key PackageAndUpload promotes it to: whichever write comes first fails.
    const resultId = /results\/([^/]+)\/$/.exec(prefix)?.[1] ?? '';
    const blockers = [store.pathOf(`${prefix}rootfs`), store.pathOf(`boot-images/${resultId}/rootfs`)];
    for (const blocker of blockers) mkdirSync(join(blocker, 'blocked'), { recursive: true });
    // Act
    const session = await finished('fault-upload');
    // Assert (the blocking directory is this test's, not the product's; it holds no file)
    const reason = await assertCleanFailure(session, before.images, before.files, source, before.sha);
    expect(session.status.failure?.step).toBeDefined();
    for (const blocker of blockers) rmSync(blocker, { recursive: true, force: true });
    recordCase({ id: 'fault-upload', area: 'faults', case: 'the artifact store fails while the result rootfs is uploaded (its target path made a directory mid-run)', tried: 1, result: `complete, succeeded "false" at step ${session.status.failure?.step}: "...${reason.slice(-100)}"; no image registered, no workspace or uploaded file left, source sha256 unchanged`, passed: true });
  });

  it('fails cleanly when the stored rootfs is corrupt or truncated behind the registry\'s back', async () => {
    const cases: Array<[string, (path: string) => void]> = [
      ['corrupt', (path) => {
        const bytes = readFileSync(path);
        bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
        writeFileSync(path, bytes);
      }],
      ['truncated', (path) => truncateSync(path, Math.floor(statSync(path).size / 2))],
    ];
    const reasons: string[] = [];
    for (const [kind, damage] of cases) {
      // Arrange
      const source = await sampleImage(`fault-${kind}`);
      damage(source.rootfsPath);
      const before = { images: (await runtime.ports.images.list()).length, files: storedFiles(), sha: sha256(source.rootfsPath) };
      // Act
      await startSession(`fault-${kind}`, '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - command: "true"\n', source);
      const session = await finished(`fault-${kind}`);
      // Assert
      reasons.push(await assertCleanFailure(session, before.images, before.files, source, before.sha));
    }
    expect(existsSync(join(dataDir, 'work'))).toBe(true);
    recordCase({ id: 'fault-rootfs', area: 'faults', case: 'the stored rootfs changed after registration: one byte flipped (checksum mismatch), cut to half (truncated)', tried: cases.length, result: `both complete, succeeded "false" (${reasons.map((r) => `"...${r.slice(-100)}"`).join('; ')}); no image registered, nothing left behind, the damaged source left as it was`, passed: true });
  });
});
