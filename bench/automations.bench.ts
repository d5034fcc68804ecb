/**
 * A scheduled evaluation of 100 automations over 10 configurations with nothing changed, on the
 * embedded runtime (dynalite, the filesystem artifact store, real `git ls-remote` on file://
 * repositories): every automation re-resolves its configuration's branches, picks its newest
 * source, computes the fingerprint, finds a result image that already carries it, and records
 * a skip. Goal: under 2 seconds, no session started, and as few git calls as the floor (one per
 * distinct repository and branch).
 *
 *   npx tsx bench/automations.bench.ts          (or `npm run bench`, which runs every bench file)
 *
 * The evaluation is `runAutomations(..., 'schedule')`, the function the embedded scheduler runs
 * when ticks fire together (and what a Scheduler target runs in AWS). Sources and results are
 * registered with manifests that list a rootfs digest; no image bytes are needed, since an
 * evaluation reads manifests only.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GitCliResolver } from '../functions/adapters/local/git-cli-resolver.ts';
import { planAutomationNow, runAutomations } from '../functions/core/automations/trigger.ts';
import { createImage } from '../functions/core/images/create-image.ts';
import { ROOTFS_TYPE } from '../functions/core/model/image.ts';
import type { GitResolver } from '../functions/ports/git-resolver.ts';
import { startEmbeddedRuntime } from '../functions/server/embedded-runtime.ts';

const run = promisify(execFile);
const CONFIGURATIONS = 10;
const AUTOMATIONS = 100;
const ROUNDS = Number(process.env.AUTOMATIONS_BENCH_ROUNDS ?? 3);
const GOAL_MS = 2000;

/** The real resolver, counting the branch resolutions that reach git. */
class CountingGit implements GitResolver {
  calls = 0;
  private readonly inner = new GitCliResolver();
  assertAllowedCloneUrl(url: string): void {
    this.inner.assertAllowedCloneUrl(url);
  }
  resolveBranch(cloneUrl: string, branch: string): Promise<string> {
    this.calls++;
    return this.inner.resolveBranch(cloneUrl, branch);
  }
}

async function makeRepo(dir: string, playbook: string): Promise<string> {
  const env = { ...process.env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@example', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@example' };
  await mkdir(dir, { recursive: true });
  await run('git', ['-C', dir, 'init', '-q', '-b', 'main'], { env });
  await writeFile(join(dir, playbook), '- hosts: cfs_image\n  gather_facts: false\n  tasks: []\n');
  await run('git', ['-C', dir, 'add', playbook], { env });
  await run('git', ['-C', dir, 'commit', '-q', '-m', playbook], { env });
  return `file://${dir}`;
}

async function request(server: { url: string; apiToken: string }, method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${server.url}${path}`, { method, headers: { Authorization: `Bearer ${server.apiToken}`, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status >= 400) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'cfs-automations-bench-'));
  const git = new CountingGit();
  const runtime = await startEmbeddedRuntime({ dataDir: join(base, 'data'), port: 0, overrides: { git } });
  try {
    // 10 configurations: a layer from one shared repository and one from each configuration's own.
    const common = await makeRepo(join(base, 'repos', 'common'), 'common.yml');
    for (let c = 0; c < CONFIGURATIONS; c++) {
      const own = await makeRepo(join(base, 'repos', `own-${c}`), 'site.yml');
      await request(runtime, 'PUT', `/apis/cfs/v3/configurations/config-${c}`, {
        layers: [
          { name: 'common', clone_url: common, playbook: 'common.yml', branch: 'main' },
          { name: 'site', clone_url: own, playbook: 'site.yml', branch: 'main' },
        ],
      });
    }
    const distinctBranches = 1 + CONFIGURATIONS;

    // One source image per configuration, and 100 automations: 10 per configuration, each in its own group.
    const manifestOf = async (key: string, seed: string) => {
      const sha256 = createHash('sha256').update(seed).digest('hex');
      const manifest = { version: '1.0', created: new Date().toISOString(), artifacts: [{ link: { path: `s3://boot-images/bench/${seed}`, type: 's3' }, type: ROOTFS_TYPE, md5: '0'.repeat(32), sha256, size: 1 }] };
      await runtime.ports.artifacts.put(key, JSON.stringify(manifest));
      return { path: `s3://${key}`, type: 's3' };
    };
    for (let c = 0; c < CONFIGURATIONS; c++) {
      await createImage(runtime.ports, { name: `base-${c}-1`, link: await manifestOf(`boot-images/bench/base-${c}.json`, `base-${c}`) });
    }
    const names: string[] = [];
    for (let i = 0; i < AUTOMATIONS; i++) {
      const name = `auto-${String(i).padStart(3, '0')}`;
      names.push(name);
      await request(runtime, 'PUT', `/apis/cfs/v3/automations/${name}`, {
        configuration_name: `config-${i % CONFIGURATIONS}`,
        source: { name_pattern: `base-${i % CONFIGURATIONS}-*`, arch: 'x86_64' },
        groups: [`Group${Math.floor(i / CONFIGURATIONS)}`],
        schedule: { expression: 'cron(0 3 * * ? *)', timezone: 'UTC' },
        only_if_changed: true,
      });
    }
    // Nothing changed since the last build: a result image carries each automation's fingerprint.
    for (const name of names) {
      const plan = await planAutomationNow(runtime.trigger, name);
      if (plan.action !== 'build') throw new Error(`${name}: expected a first build, got ${plan.action}: ${plan.reasons.join('; ')}`);
      await createImage(runtime.ports, {
        name: plan.result_name!,
        link: await manifestOf(`boot-images/bench/result-${name}.json`, `result-${name}`),
        metadata: { cfs_source_image_id: plan.source!.id, cfs_session: plan.session_name!, cfs_fingerprint: plan.fingerprint!, cfs_automation: name },
      });
    }
    await runtime.bus.idle();
    const images = (await runtime.ports.images.list()).length;
    console.log(`automations bench: ${AUTOMATIONS} automations over ${CONFIGURATIONS} configurations (${distinctBranches} distinct repository+branch pairs), ${images} images`);

    const times: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const sessionsBefore = (await runtime.ports.sessions.list()).length;
      git.calls = 0;
      const started = performance.now();
      const { results, git_calls } = await runAutomations(runtime.trigger, names, 'schedule');
      const ms = performance.now() - started;
      times.push(ms);
      const outcomes = new Map<string, number>();
      for (const r of results) outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
      const sessionsStarted = (await runtime.ports.sessions.list()).length - sessionsBefore;
      const nothingChanged = results.filter((r) => r.reason.startsWith('nothing changed:')).length;
      console.log(
        `  round ${round}: ${(ms / 1000).toFixed(3)} s; outcomes ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')} (${nothingChanged} 'nothing changed'); sessions started ${sessionsStarted}; git calls ${git.calls} (evaluation counted ${git_calls}; floor ${distinctBranches})`,
      );
      if (sessionsStarted !== 0 || outcomes.get('started')) throw new Error('an evaluation with nothing changed started a session');
    }
    const worst = Math.max(...times);
    console.log(
      `automations bench: worst of ${ROUNDS} rounds ${(worst / 1000).toFixed(3)} s, best ${(Math.min(...times) / 1000).toFixed(3)} s (goal < ${GOAL_MS / 1000} s) ${worst < GOAL_MS ? 'PASS' : 'OVER'}`,
    );
  } finally {
    await runtime.close();
    await rm(base, { recursive: true, force: true });
  }
}

await main();
