/**
 * What the runner's namespace sandbox (user namespace, bwrap, seccomp, its own network through
 * slirp4netns) costs a run, next to the same run with no sandbox (`sandbox: 'container'`, as on
 * Fargate) in the same process: the sample root, one layer with a three-task playbook, staging
 * and packing included. Rounds alternate so neither side gets the warmer cache; the fastest and
 * the median round of each are compared, for the layer alone and for the whole run.
 *
 *   npx tsx bench/sandbox.bench.ts          (SANDBOX_BENCH_ROUNDS=N, default 5; also `npm run bench`)
 */
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FsArtifactStore } from '../functions/adapters/local/fs-artifact-store.ts';
import { buildSampleRoot } from '../functions/cli/images/sample-root.ts';
import { runCustomization } from '../functions/runner/run-customization.ts';
import { parseRunDocument } from '../functions/runner/run-document.ts';
import type { SandboxMode } from '../functions/runner/sandbox.ts';
import { TempRepos } from '../test/helpers/git-repo.ts';
import { localRunDocumentFor } from '../test/helpers/run-document.ts';
import { SANDBOX_BENCH_PLAYBOOK } from './fixtures/playbooks.ts';

const run = promisify(execFile);
const ROUNDS = Number(process.env.SANDBOX_BENCH_ROUNDS ?? 5);
const IMAGE = '5b1d7c2e-3f4a-4b5c-8d6e-7f8091a2b3c4';

const base = await mkdtemp(join(tmpdir(), 'cfs-sandbox-bench-'));
const repos = new TempRepos();
try {
  const store = new FsArtifactStore(join(base, 'store'));
  const root = join(base, 'source');
  await buildSampleRoot(root);
  const squashfs = join(base, 'source.squashfs');
  await run('mksquashfs', [root, squashfs, '-noappend', '-quiet', '-no-progress', '-comp', 'gzip']);
  const rootfs = await store.put(`boot-images/${IMAGE}/rootfs`, createReadStream(squashfs));
  const layer = repos.with({ 'site.yml': SANDBOX_BENCH_PLAYBOOK });

  const once = async (mode: SandboxMode, session: string) => {
    const document = parseRunDocument(localRunDocumentFor(session, { id: IMAGE, name: 'sample', rootfs }, { name: 'bench', ...layer }));
    const started = performance.now();
    const result = await runCustomization(document, { store, local: store, workspace: join(base, 'workspaces', session), sandbox: mode });
    const total = performance.now() - started;
    if (result.outcome.status !== 'succeeded') throw new Error(`${mode} run failed: ${result.outcome.reason}`);
    await store.delete(`boot-images/result-${session}/rootfs`).catch(() => {});
    return { layer: result.outcome.layers[0]!.duration_ms, total };
  };

  const samples: Record<SandboxMode, { layer: number[]; total: number[] }> = { container: { layer: [], total: [] }, namespace: { layer: [], total: [] } };
  for (let round = 0; round < ROUNDS; round += 1) {
    const order: SandboxMode[] = round % 2 === 0 ? ['container', 'namespace'] : ['namespace', 'container'];
    for (const mode of order) {
      const sample = await once(mode, `${mode}-${round}`);
      samples[mode].layer.push(sample.layer);
      samples[mode].total.push(sample.total);
      console.log(`round ${round + 1} ${mode.padEnd(9)} layer ${(sample.layer / 1000).toFixed(2)} s, whole run ${(sample.total / 1000).toFixed(2)} s`);
    }
  }
  const best = (values: number[]) => Math.min(...values);
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  for (const part of ['layer', 'total'] as const) {
    const none = samples.container[part];
    const boxed = samples.namespace[part];
    console.log(
      `${part === 'layer' ? 'layer     ' : 'whole run '} no sandbox best ${(best(none) / 1000).toFixed(2)} s median ${(median(none) / 1000).toFixed(2)} s; ` +
        `sandbox best ${(best(boxed) / 1000).toFixed(2)} s median ${(median(boxed) / 1000).toFixed(2)} s; ` +
        `ratio ${(best(boxed) / best(none)).toFixed(3)}x best-to-best, ${(median(boxed) / median(none)).toFixed(3)}x median`,
    );
  }
} finally {
  repos.disposeAll();
  await rm(base, { recursive: true, force: true });
}
