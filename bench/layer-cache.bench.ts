/**
 * The layer cache (issue 19, item 8) on the real Debian 12 root (the mmdebstrap fixture the
 * end-to-end tests use, imported as an image), three layers that each do real work: packages
 * from Debian's mirror, files and templates, a package and services enabled. Measured in one run,
 * whole sessions (API request to the bus's `Session Completed`, as in session.bench.ts):
 *
 *   (a) the cold full session with the cache recording (the `layer_cache` setting on, nothing to
 *       reuse yet) against (b) the same session with the setting off (nothing recorded):
 *       goal (a) <= 1.10x (b);
 *   (c) the rebuild after a new commit of the third layer only, the cache on (the first two
 *       layers come from the cache) against (d) the full rebuild of that same configuration
 *       with `"layer_cache": false` in the session body: goal (c) <= 0.5x (d).
 *
 * Each round has a git repository of its own (its own clone URL, so its keys are new and (a) is
 * cold). (d) runs the changed third layer at a twin commit (an empty commit on top: the same
 * tree, another key): a forced full run still records its layers, so without the twin a (d) run
 * before (c) would leave (c) its third layer cached too. Rounds alternate which side of each
 * pair goes first. The verdict on each goal is the median of the rounds' ratios (3 rounds by
 * default): a round's two sides run back to back, while the layers' own times (apt from the
 * mirror) move by seconds between sessions. Best-to-best ratios and what recording costs outside
 * the playbooks are printed too. The runner's phases come from its log; the layer cache's entry
 * files are counted after every session, so a side that records (or fails to) shows it.
 *
 * Every session repacks the whole root (mksquashfs with the source's compressor: zstd at
 * mksquashfs's default level, 15, for the fixture), cached layers or not, so that pack is a floor
 * under (c); LAYER_CACHE_BENCH_LEVEL=N sets the `squashfs_compression_level` setting first, to
 * see the cache's share with a cheaper pack.
 *
 *   LAYER_CACHE_BENCH_ROUNDS=3 flock /tmp/cfs-e2e.lock npx tsx bench/layer-cache.bench.ts
 *
 * LAYER_CACHE_BENCH_LOGS=1 prints every session's whole runner log too.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApiClient } from '../functions/cli/api-client.ts';
import { ImagesApi } from '../functions/cli/images/images-api.ts';
import { importImage } from '../functions/cli/images/import-image.ts';
import type { SessionRecord } from '../functions/core/model/session.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../functions/server/embedded-runtime.ts';
import { debianRoot } from '../test/helpers/debian-root.ts';

const run = promisify(execFile);
const ROUNDS = Number(process.env.LAYER_CACHE_BENCH_ROUNDS ?? 3);
const LEVEL = process.env.LAYER_CACHE_BENCH_LEVEL ? Number(process.env.LAYER_CACHE_BENCH_LEVEL) : null;
/** (a) recording over (b) not recording, both cold full runs. */
const RECORD_GOAL = 1.1;
/** (c) the rebuild of the changed third layer over (d) the full rebuild. */
const REBUILD_GOAL = 0.5;

/** Layer 0: what a site's base layer does first, tools from the mirror. */
const PACKAGES = `- hosts: cfs_image
  gather_facts: false
  # The runner's TMPDIR (a host path in its workspace) reaches commands run in the chroot, where
  # it does not exist: ca-certificates' postinst (mktemp) fails on it. The image's own /tmp instead.
  environment: { TMPDIR: /tmp }
  tasks:
    # As image builds do: package scripts must not start daemons inside the image being built.
    - name: Keep package scripts from starting services in the image
      copy: { dest: /usr/sbin/policy-rc.d, content: "#!/bin/sh\\nexit 101\\n", mode: "0755" }
    - name: Install the site's tools from the Debian mirror
      apt: { name: [curl, jq, rsync, less, hello], update_cache: true }
`;

/** Layer 1: configuration files, most from templates, and an account. */
const FILES = `- hosts: cfs_image
  gather_facts: false
  vars:
    site: bench-site
    ntp_servers: [ntp1.example.com, ntp2.example.com]
  tasks:
    - name: The site's configuration directory
      file: { path: /etc/site, state: directory, mode: "0755" }
    - name: One configuration file per service
      template: { src: templates/service.conf.j2, dest: "/etc/site/{{ item }}.conf", mode: "0644" }
      loop: [compute, storage, network, monitoring, logging, scheduler]
    - name: The message of the day
      template: { src: templates/motd.j2, dest: /etc/motd, mode: "0644" }
    - name: A login profile
      copy: { dest: /etc/profile.d/site.sh, content: "export SITE={{ site }}\\n", mode: "0644" }
    - name: Kernel settings
      copy: { dest: /etc/sysctl.d/90-site.conf, content: "vm.swappiness = 10\\nnet.core.somaxconn = 1024\\n", mode: "0644" }
    - name: Mark the release
      lineinfile: { path: /etc/os-release, line: "SITE_IMAGE={{ site }}" }
    - name: The operators' account
      user: { name: siteops, shell: /bin/bash, create_home: true }
`;
const SERVICE_TEMPLATE = `# {{ site }}: {{ item }}, written by the files layer
[{{ item }}]
site = {{ site }}
{% for server in ntp_servers %}
time_server = {{ server }}
{% endfor %}
`;
const MOTD_TEMPLATE = `Welcome to {{ site }}.
Time from {{ ntp_servers | join(', ') }}.
`;

/** Layer 2: a package with a service, and a unit of the site's, both enabled (offline: only the wants links). */
const services = (greeting: string) => `- hosts: cfs_image
  gather_facts: false
  environment: { TMPDIR: /tmp }
  tasks:
    - name: Install cron (the package lists came with the first layer)
      apt: { name: cron }
    - name: Enable cron at boot
      systemd: { name: cron.service, enabled: true, daemon_reload: false }
    - name: Write the site's agent unit
      copy:
        dest: /etc/systemd/system/site-agent.service
        mode: "0644"
        content: |
          [Unit]
          Description=The site's agent
          [Service]
          Type=oneshot
          ExecStart=/usr/bin/hello --greeting="${greeting}"
          [Install]
          WantedBy=multi-user.target
    - name: Enable the agent
      systemd: { name: site-agent.service, enabled: true, daemon_reload: false }
`;

const seconds = (ms: number) => (ms / 1000).toFixed(2);
const loadAverage = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');

async function git(dir: string, ...args: string[]): Promise<string> {
  const env = { ...process.env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@example', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@example' };
  return (await run('git', ['-C', dir, ...args], { env })).stdout.trim();
}

/** Writes `files` into the repository and commits them; returns the commit. */
async function commit(repo: string, message: string, files: Record<string, string>): Promise<string> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(repo, path, '..'), { recursive: true });
    await writeFile(join(repo, path), text);
  }
  await git(repo, 'add', '--all');
  await git(repo, 'commit', '-q', '--allow-empty', '-m', message);
  return git(repo, 'rev-parse', 'HEAD');
}

interface RoundRepo {
  url: string;
  packages: string;
  files: string;
  services: string;
  /** The third layer changed (another greeting). */
  changed: string;
  /** An empty commit on top of `changed`: the same tree at another commit, so another key. */
  changedTwin: string;
}

/** One repository per round: three commits, one per layer's playbook, then the third changed, then its twin. */
async function roundRepo(dir: string): Promise<RoundRepo> {
  await mkdir(dir);
  await git(dir, 'init', '-q');
  const packages = await commit(dir, 'packages layer', { 'packages.yml': PACKAGES });
  const files = await commit(dir, 'files layer', { 'files.yml': FILES, 'templates/service.conf.j2': SERVICE_TEMPLATE, 'templates/motd.j2': MOTD_TEMPLATE });
  const servicesCommit = await commit(dir, 'services layer', { 'services.yml': services('first') });
  const changed = await commit(dir, 'services layer: another greeting', { 'services.yml': services('second') });
  const changedTwin = await commit(dir, 'the same services layer at another commit', {});
  return { url: `file://${dir}`, packages, files, services: servicesCommit, changed, changedTwin };
}

async function request<T>(runtime: EmbeddedRuntime, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${runtime.url}${path}`, { method, headers: { Authorization: `Bearer ${runtime.apiToken}`, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status >= 400) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

async function configure(runtime: EmbeddedRuntime, name: string, repo: RoundRepo, thirdCommit: string): Promise<void> {
  await request(runtime, 'PUT', `/apis/cfs/v3/configurations/${name}`, {
    layers: [
      { name: 'packages', clone_url: repo.url, commit: repo.packages, playbook: 'packages.yml' },
      { name: 'files', clone_url: repo.url, commit: repo.files, playbook: 'files.yml' },
      { name: 'services', clone_url: repo.url, commit: thirdCommit, playbook: 'services.yml' },
    ],
  });
}

/** The deployment-wide setting: off records and reuses nothing. */
async function setLayerCache(runtime: EmbeddedRuntime, on: boolean): Promise<void> {
  const settings = await request<{ layer_cache?: boolean }>(runtime, 'PATCH', '/apis/cfs-image/v1/settings', { layer_cache: on });
  if (settings.layer_cache !== on) throw new Error(`PATCH settings {layer_cache: ${on}} answered layer_cache ${String(settings.layer_cache)}`);
}

/** The layer cache's entries in the embedded store (`layer-cache/entries/<key>.json`), by key: the store keeps an ETag beside each file under the same path. */
async function cacheEntries(runtime: EmbeddedRuntime): Promise<number> {
  const files = await readdir(join(runtime.dataDir, 'artifacts'), { recursive: true }).catch(() => [] as string[]);
  return new Set(files.map((file) => /(?:^|\/)layer-cache\/entries\/([^/]+)\.json$/.exec(file)?.[1]).filter(Boolean)).size;
}

interface Measured {
  name: string;
  wallMs: number;
  /** Each layer's state in status.steps, in layer order (`cached` when it came from the cache). */
  layers: string[];
  /** Each layer's own time in status.steps (its playbook; 0 for a cached layer). */
  playbooks: number[];
  /** Entry files the session added to the cache. */
  recorded: number;
  phases: Record<string, number>;
  /** The runner log's lines about the cache. */
  cacheLines: string[];
  /** The runner's whole log. */
  log: string;
}

/**
 * Creates a session and waits for its `Session Completed` event on the in-process bus (as
 * session.bench.ts does: no polling on the two cores the session runs on); returns its wall
 * time, its layers' states, what it recorded and the runner's phases.
 */
async function session(runtime: EmbeddedRuntime, name: string, configuration: string, imageId: string, body: Record<string, unknown> = {}): Promise<Measured> {
  const before = await cacheEntries(runtime);
  let unsubscribe = () => {};
  const completed = new Promise<void>((resolve) => {
    unsubscribe = runtime.bus.subscribe('Session Completed', (event) => {
      if ((event.detail as { name?: string }).name === name) resolve();
    });
  });
  let wallMs: number;
  try {
    const started = performance.now();
    await request(runtime, 'POST', '/apis/cfs/v3/sessions', {
      name,
      configuration_name: configuration,
      target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] },
      ...body,
    });
    await completed;
    wallMs = performance.now() - started;
  } finally {
    unsubscribe();
  }
  const record = await request<SessionRecord>(runtime, 'GET', `/apis/cfs/v3/sessions/${name}`);
  if (record.status.session.succeeded !== 'true') {
    // The failed layer's Ansible output ends the message: a layer that cannot reach the mirror says so there.
    const logs = await request<{ text: string }>(runtime, 'GET', `/apis/cfs/v3/sessions/${name}/logs?max_bytes=1000000`).catch(() => ({ text: '' }));
    throw new Error(`session ${name} failed: ${record.status.failure?.reason}\n${logs.text.split('\n').slice(-40).join('\n')}`);
  }
  const log = await readFile(join(runtime.dataDir, 'work', 'runner-logs', `${name}.runner.log`), 'utf8');
  const layerSteps = (record.status.steps ?? []).filter((step) => step.name === 'ansible' && step.layer !== undefined);
  return {
    name,
    wallMs,
    layers: layerSteps.map((step) => step.state),
    playbooks: layerSteps.map((step) => (step.start_time && step.end_time ? Date.parse(step.end_time) - Date.parse(step.start_time) : 0)),
    recorded: (await cacheEntries(runtime)) - before,
    phases: runnerPhases(log),
    cacheLines: log.split('\n').filter((line) => /cach|change set/i.test(line)),
    log,
  };
}

/**
 * The runner's phases from the lines it logged (`cfs-runner [+S.SSs] ...`): each mark starts a
 * phase that lasts to the next mark; marks of the same name in a row are one phase, and a name
 * met again adds to its total. stage (verify and unpack), clone, layer N (its playbook, and
 * what the runner does after it until the next mark: capturing and recording its change set
 * when the cache records; the playbook alone is the layer step's own time in status.steps),
 * cache (from any line about the cache or a change set to the next mark), squash, store (the
 * rootfs moved in and hashed), clean.
 */
function runnerPhases(log: string): Record<string, number> {
  const marks: [string, number][] = [];
  for (const line of log.split('\n')) {
    const match = /^cfs-runner \[\+([\d.]+)s\] (.*)$/.exec(line);
    if (!match) continue;
    const text = match[2]!;
    // A recording that ended in the background, while a later layer ran, is no mark of its own.
    if (/in the background/.test(text)) continue;
    const name = /^staging image/.test(text)
      ? 'stage'
      : /^cloning layer/.test(text)
        ? 'clone'
        : /^running layer (\d+)/.test(text)
          ? `layer ${/^running layer (\d+)/.exec(text)![1]}`
          : /cach|change set/i.test(text)
            ? 'cache'
            : /^squashing and uploading/.test(text)
              ? 'squash'
              : /: squashed/.test(text)
                ? 'store'
                : /: rootfs stored/.test(text)
                  ? 'clean'
                  : /\(exit \d+\)/.test(text)
                    ? 'end'
                    : undefined;
    if (name !== undefined && marks.at(-1)?.[0] !== name) marks.push([name, Number(match[1]) * 1000]);
  }
  const phases: Record<string, number> = {};
  for (const [i, [name, at]] of marks.entries()) {
    const next = marks[i + 1];
    if (next) phases[name] = (phases[name] ?? 0) + next[1] - at;
  }
  return phases;
}

const phaseList = (phases: Record<string, number>) => Object.entries(phases).map(([phase, ms]) => `${phase} ${seconds(ms)}`).join(', ');
const describe = (m: Measured) =>
  `${seconds(m.wallMs)} s [layers ${m.layers.join('/')}, playbooks ${m.playbooks.map(seconds).join('/')} s; ${m.recorded} entries recorded] (runner: ${phaseList(m.phases)})`;

/** Runs `first` then `second`, or the other way round; answers in the order given. */
async function pair<T>(firstGoesFirst: boolean, first: () => Promise<T>, second: () => Promise<T>): Promise<[T, T]> {
  if (firstGoesFirst) {
    const a = await first();
    return [a, await second()];
  }
  const b = await second();
  return [await first(), b];
}

async function main(): Promise<void> {
  // The engine starts the runner bundle scripts/build.mjs makes: build it from the current source.
  await run(process.execPath, ['scripts/build.mjs']);
  const fixture = await debianRoot();
  const base = await mkdtemp(join(tmpdir(), 'cfs-layer-cache-bench-'));
  const runtime = await startEmbeddedRuntime({ dataDir: join(base, 'data'), port: 0, maxConcurrentRuns: 1 });
  try {
    const images = new ImagesApi(new ApiClient({ env: { CFS_API_URL: runtime.url, CFS_API_TOKEN: runtime.apiToken } }));
    const source = await importImage(images, { name: 'debian12', arch: 'x86_64', squashfs: fixture.rootfs, kernel: fixture.kernel, initrd: fixture.initrd });
    const packing = await request<{ squashfs_compressor: string; squashfs_compression_level: number | null }>(runtime, 'PATCH', '/apis/cfs-image/v1/settings', { squashfs_compression_level: LEVEL });
    console.log(`layer-cache bench: results packed with compressor ${packing.squashfs_compressor}, level ${packing.squashfs_compression_level ?? "the compressor's default"}`);
    console.log(`layer-cache bench: the Debian 12 root ${fixture.dir} (rootfs ${((await stat(fixture.rootfs)).size / 1e6).toFixed(0)} MB) imported as ${source.id}; load average ${await loadAverage()}`);

    const rows: { a: Measured; b: Measured; c: Measured; d: Measured }[] = [];
    for (let round = 1; round <= ROUNDS; round += 1) {
      const repo = await roundRepo(join(base, `repo-${round}`));
      await configure(runtime, `r${round}-full`, repo, repo.services);
      await configure(runtime, `r${round}-changed`, repo, repo.changed);
      await configure(runtime, `r${round}-changed-twin`, repo, repo.changedTwin);
      // Odd rounds: (a) before (b) and (c) before (d); even rounds the other way round.
      const odd = round % 2 === 1;
      const [a, b] = await pair(
        odd,
        async () => {
          await setLayerCache(runtime, true);
          return session(runtime, `r${round}-a-recording`, `r${round}-full`, source.id);
        },
        async () => {
          await setLayerCache(runtime, false);
          return session(runtime, `r${round}-b-off`, `r${round}-full`, source.id);
        },
      );
      await setLayerCache(runtime, true);
      const [c, d] = await pair(
        odd,
        () => session(runtime, `r${round}-c-rebuild`, `r${round}-changed`, source.id),
        () => session(runtime, `r${round}-d-full`, `r${round}-changed-twin`, source.id, { layer_cache: false }),
      );
      rows.push({ a, b, c, d });
      console.log(`  round ${round} (${odd ? '(a) before (b), (c) before (d)' : '(b) before (a), (d) before (c)'}); load average ${await loadAverage()}`);
      console.log(`    (a) cold, recording: ${describe(a)}`);
      console.log(`    (b) cache off:       ${describe(b)}`);
      console.log(`    (c) third changed:   ${describe(c)}`);
      console.log(`    (d) full rebuild:    ${describe(d)}`);
      console.log(`    (a)/(b) ${(a.wallMs / b.wallMs).toFixed(3)}x, (c)/(d) ${(c.wallMs / d.wallMs).toFixed(3)}x`);
      if (round === 1) for (const line of c.cacheLines) console.log(`    (c) runner: ${line}`);
      // LAYER_CACHE_BENCH_LOGS=1: every session's whole runner log, to see where a phase's time went.
      if (process.env.LAYER_CACHE_BENCH_LOGS === '1') {
        for (const [side, m] of Object.entries({ a, b, c, d })) for (const line of m.log.split('\n').filter(Boolean)) console.log(`    (${side}) ${line}`);
      }
    }

    // What the sides must show for the ratios to mean anything.
    const problems: string[] = [];
    for (const [i, { a, b, c, d }] of rows.entries()) {
      if (a.layers.includes('cached') || a.recorded < 3) problems.push(`round ${i + 1} (a) was not a cold recording run (layers ${a.layers.join('/')}, ${a.recorded} entries recorded)`);
      if (b.layers.includes('cached') || b.recorded !== 0) problems.push(`round ${i + 1} (b) with the cache off reused or recorded (layers ${b.layers.join('/')}, ${b.recorded} entries recorded)`);
      if (c.layers.join('/') !== 'cached/cached/succeeded') problems.push(`round ${i + 1} (c) did not reuse the first two layers (layers ${c.layers.join('/')})`);
      if (d.layers.includes('cached')) problems.push(`round ${i + 1} (d) reused layers despite "layer_cache": false (layers ${d.layers.join('/')})`);
    }
    const best = (side: 'a' | 'b' | 'c' | 'd') => Math.min(...rows.map((row) => row[side].wallMs));
    const median = (values: number[]) => {
      const sorted = [...values].sort((x, y) => x - y);
      const middle = Math.floor(sorted.length / 2);
      return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
    };
    // The verdict: the median of each round's ratio. The two sides of a round run back to back, so
    // they share the mirror's and the machine's moment; the layers' own times (apt from the mirror)
    // move by seconds from one session to the next, more than recording costs.
    const record = median(rows.map(({ a, b }) => a.wallMs / b.wallMs));
    const rebuild = median(rows.map(({ c, d }) => c.wallMs / d.wallMs));
    // What recording costs outside the playbooks, whose times it does not decide: (a) and (b) less their layers' own times.
    const outside = (m: Measured) => m.wallMs - m.playbooks.reduce((sum, ms) => sum + ms, 0);
    const extra = median(rows.map(({ a, b }) => outside(a) - outside(b)));
    const verdict = (ratio: number, goal: number) => `${ratio.toFixed(3)}x (goal <= ${goal}x) ${ratio <= goal ? 'PASS' : 'OVER'}`;
    console.log(
      `layer-cache bench: ${ROUNDS} round(s), median of the rounds' ratios: (a)/(b) ${verdict(record, RECORD_GOAL)}, (c)/(d) ${verdict(rebuild, REBUILD_GOAL)}; ` +
        `best to best: (a) ${seconds(best('a'))} s / (b) ${seconds(best('b'))} s = ${(best('a') / best('b')).toFixed(3)}x, (c) ${seconds(best('c'))} s / (d) ${seconds(best('d'))} s = ${(best('c') / best('d')).toFixed(3)}x; ` +
        `recording outside the playbooks: ${seconds(extra)} s a session (median), ${((best('b') + extra) / best('b')).toFixed(3)}x on the best (b); load average ${await loadAverage()}`,
    );
    if (problems.length > 0) throw new Error(`the layer cache did not behave as the bench needs:\n  ${problems.join('\n  ')}`);
  } finally {
    await runtime.close();
    await rm(base, { recursive: true, force: true });
  }
}

await main();
