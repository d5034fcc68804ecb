import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import type { CliIo } from '../../functions/cli/io.ts';
import { runCli } from '../../functions/cli/main.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { buildSampleRoot } from '../../functions/cli/images/sample-root.ts';
import { processStartTime } from '../../functions/runner/process-groups.ts';
import { processFileOf } from '../../functions/runner/workspace.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { cfsBin, ensureBuilt } from '../cli/cli-harness.ts';
import { bearer, cliEnv } from '../helpers/api-token.ts';
import { TempRepos } from '../helpers/git-repo.ts';
import { waitFor } from '../helpers/wait.ts';
import { recordCase, type CaseResult } from './results.ts';

/**
 * Issue 16, item 10: every route an attacker took out of a layer, each a real session on the
 * embedded runtime (real ansible-playbook, squashfs-tools and sandbox; layers pinned by commit).
 * Canaries are planted on the host outside any workspace (files under /var/tmp and /root with a
 * secret string, a secret file in the data directory, a TCP listener on every address, the
 * server's environment). After each session: the canaries unchanged (bytes and mtime), no
 * connection seen, no secret (canary string, /etc/shadow's lines, the API token, the signing
 * secret) in the result's unpacked rootfs, kernel, initrd, the layer logs, the session record or
 * the session's documents in the store; and the outcome says what was refused. The probes live in
 * sandbox-probe.py; each prints `<side> <probe>: ALLOWED|refused (<why>)`.
 */

const PROBE = readFileSync(fileURLToPath(new URL('./sandbox-probe.py', import.meta.url)), 'utf8');
const id = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
const SECRET = `cfs-attack-secret-${id}`;
const canaryDir = `/var/tmp/cfs-attack-${id}`;
const canary = join(canaryDir, 'canary.txt');
const rootCanary = `/root/.cfs-attack-canary-${id}`;
const playbookHead = '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n';

interface Evidence {
  record: SessionRecord;
  logs: string;
  /** Every blob looked at, by where it came from. */
  blobs: Map<string, Buffer>;
  /** The result's unpacked root (first artifact), if there is one. */
  root?: string;
  kernel?: Buffer;
  initrd?: Buffer;
}

describe('attacks from a layer, each a real session', () => {
  let parent: string;
  let dataDir: string;
  let runtime: EmbeddedRuntime;
  let store: FsArtifactStore;
  let imageId: string;
  let bystanderImage: string;
  let listener: Server;
  let listenerPort: number;
  const connections: string[] = [];
  const repos = new TempRepos();
  const savedEnv = { ...process.env };
  const hostFiles = ['/etc/shadow', '/etc/passwd', '/etc/resolv.conf', '/etc/hosts', canary, rootCanary];
  let hostBefore: Record<string, string>;
  let needles: Array<[string, Buffer]>;
  /** Host paths an attack tries to create: none may exist after. */
  const markers: string[] = [];
  const hostAddresses = Object.values(networkInterfaces()).flat().filter((i) => i?.family === 'IPv4' && !i.internal).map((i) => i!.address);
  const disks = ['/dev/sda', '/dev/vda', '/dev/nvme0n1', '/dev/xvda'].filter((d) => existsSync(d));

  const fingerprint = (path: string) => {
    try {
      const stat = statSync(path);
      return `${createHash('sha256').update(readFileSync(path)).digest('hex')}:${stat.size}:${stat.mtimeMs}`;
    } catch {
      return 'absent';
    }
  };
  const snapshot = () => Object.fromEntries(hostFiles.map((f) => [f, fingerprint(f)]));

  /** fetch, tried once more when the connection was reset (a kept-alive socket the server had just closed, with a dozen routes at once). */
  const request = async (url: string, init: RequestInit = {}): Promise<Response> => {
    try {
      return await fetch(url, init);
    } catch (error) {
      if ((error as { cause?: { code?: string } }).cause?.code !== 'ECONNRESET') throw error;
      return fetch(url, init);
    }
  };

  const send = async (method: string, path: string, body?: unknown) => {
    const response = await request(`${runtime.url}${path}`, { method, headers: { ...bearer(runtime), 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as { detail?: string; field?: string } };
  };

  async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const io: CliIo = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`), env: cliEnv(runtime) };
    const code = await runCli(argv, io);
    return { code, out, err };
  }

  /** The probe config a layer reads (committed beside its playbook). */
  function probeConfig(extra: Record<string, unknown> = {}): string {
    const diskNumbers = Object.fromEntries(disks.map((d) => {
      const rdev = statSync(d).rdev;
      return [d, [Math.floor(rdev / 256) & 0xfff, (rdev & 0xff) | ((Math.floor(rdev / 1048576) & 0xfff00))]];
    }));
    return JSON.stringify({
      canary,
      rootCanary,
      canaryDir,
      dataDir,
      dataSecret: join(dataDir, 'attack-secret.txt'),
      signingSecret: join(dataDir, 'artifact-url-secret'),
      tokenFile: join(dataDir, 'api-token'),
      workspaces: join(dataDir, 'work', 'workspaces'),
      apiPort: Number(new URL(runtime.url).port),
      listenerPort,
      hostAddresses,
      bystanderImage,
      disks,
      diskNumbers,
      ...extra,
    });
  }

  /** A layer that runs the probes for `routes` on the controller side, inside the image root, and on any extra sides. */
  function probePlaybook(routes: string, extraTasks = ''): string {
    return [
      playbookHead,
      '    - name: probes on the controller side (a lookup runs there)\n',
      `      ansible.builtin.set_fact: { controller_report: "{{ lookup('pipe', 'python3 ' ~ playbook_dir ~ '/probe.py controller ${routes} ' ~ playbook_dir ~ '/cfg.json') }}" }\n`,
      '    - ansible.builtin.file: { path: /cfs-attack, state: directory }\n',
      '    - ansible.builtin.copy: { src: "{{ item }}", dest: "/cfs-attack/{{ item }}" }\n      loop: [probe.py, cfg.json]\n',
      `    - name: probes inside the image root\n      ansible.builtin.command: python3 /cfs-attack/probe.py root ${routes} /cfs-attack/cfg.json\n      register: root_report\n`,
      extraTasks,
      '    - ansible.builtin.copy: { dest: /cfs-attack/report.txt, content: "{{ controller_report }}\\n{{ root_report.stdout }}\\n{{ extra_report | default(\'\') }}\\n" }\n',
      '    - ansible.builtin.debug: { msg: "{{ controller_report }}\\n{{ root_report.stdout }}\\n{{ extra_report | default(\'\') }}" }\n',
    ].join('');
  }

  /** Commits `files` in a repository of their own (so group_vars cannot reach other routes) and pins a configuration on it. */
  async function configure(name: string, layers: Array<{ files: Record<string, string>; playbook: string }>): Promise<void> {
    const pinned = layers.map((layer, index) => {
      const { url, commit } = repoWith(layer.files);
      return { name: `${name}-${index}`, clone_url: url, commit, playbook: layer.playbook };
    });
    const put = await send('PUT', `/apis/cfs/v3/configurations/${name}`, { layers: pinned });
    expect(put.status, put.body.detail).toBe(200);
  }

  /** Pins configuration `name` on one layer that runs the probes for `routes` (probe.py, its config, probePlaybook). */
  async function configureProbes(name: string, routes: string, options: { config?: string; extraTasks?: string } = {}): Promise<void> {
    await configure(name, [{ files: { 'probe.py': PROBE, 'cfg.json': options.config ?? probeConfig(), 'site.yml': probePlaybook(routes, options.extraTasks) }, playbook: 'site.yml' }]);
  }

  async function create(name: string, options: { source?: string; passthrough?: string; limit?: string; debug?: boolean } = {}): Promise<void> {
    const created = await send('POST', '/apis/cfs/v3/sessions', {
      name,
      configuration_name: name,
      ...(options.passthrough ? { ansible_passthrough: options.passthrough } : {}),
      ...(options.limit ? { ansible_limit: options.limit } : {}),
      ...(options.debug ? { debug_on_failure: true } : {}),
      target: { definition: 'image', groups: [{ name: 'Compute', members: [options.source ?? imageId] }] },
    });
    expect(created.status, created.body.detail).toBe(201);
  }

  async function complete(name: string): Promise<SessionRecord> {
    return waitFor(async () => {
      const s = (await (await request(`${runtime.url}/apis/cfs/v3/sessions/${name}`, { headers: bearer(runtime) })).json()) as SessionRecord;
      // A failed session held for debugging stays `running` until its hold ends.
      return s.status.session.status === 'complete' || (s.status.debug && !s.status.debug.released_at) ? s : undefined;
    }, 280_000, `session ${name} to complete`, 250);
  }

  /** Files under `dir` (regular files only, never following a link), as paths relative to it. */
  function filesUnder(dir: string): string[] {
    const out: string[] = [];
    const walk = (d: string) => {
      for (const entry of readdirSync(d, { withFileTypes: true })) {
        const path = join(d, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.isFile()) out.push(path);
      }
    };
    if (existsSync(dir)) walk(dir);
    return out;
  }

  /** Everything the product keeps about a session: record, logs, its store documents, and its result unpacked. */
  async function evidence(name: string): Promise<Evidence> {
    const record = await complete(name);
    const logs = (await cli('sessions', 'logs', name)).out;
    const blobs = new Map<string, Buffer>([['session record', Buffer.from(JSON.stringify(record))], ['logs', Buffer.from(logs)]]);
    for (const file of filesUnder(join(store.root, 'sessions', name))) blobs.set(`store ${relative(store.root, file)}`, readFileSync(file));
    const result: Evidence = { record, logs, blobs };
    for (const artifact of record.status.artifacts) {
      // The session is complete: its result is committed, shown or about to be (the reveal step may still run).
      const image = (await runtime.ports.images.get(artifact.result_id, { includePending: true }))!;
      const manifest = JSON.parse(readFileSync(store.pathOf(image.link!.path.replace(/^s3:\/\//, '')), 'utf8')) as { artifacts: Array<{ type: string; link: { path: string } }> };
      const path = (kind: string) => {
        const found = manifest.artifacts.find((a) => a.type.includes(kind));
        return found ? store.pathOf(found.link.path.replace(/^s3:\/\//, '')) : undefined;
      };
      const root = join(parent, 'unpacked', `${name}-${artifact.result_id}`);
      mkdirSync(dirname(root), { recursive: true });
      execFileSync('unsquashfs', ['-quiet', '-no-progress', '-d', root, path('rootfs')!], { stdio: ['ignore', 'ignore', 'pipe'] });
      for (const file of filesUnder(root)) blobs.set(`result ${relative(root, file)}`, readFileSync(file));
      const kernel = path('kernel');
      const initrd = path('initrd');
      if (kernel) blobs.set('result kernel', (result.kernel = readFileSync(kernel)));
      if (initrd) blobs.set('result initrd', (result.initrd = readFileSync(initrd)));
      result.root ??= root;
    }
    return result;
  }

  /** Where a host secret shows up in the evidence (`<blob>: <needle>`), if anywhere. */
  function leaks(found: Evidence, extraNeedles: Array<[string, Buffer]> = []): string[] {
    const hits: string[] = [];
    for (const [where, blob] of found.blobs) for (const [what, needle] of [...needles, ...extraNeedles]) if (blob.includes(needle)) hits.push(`${where}: ${what}`);
    return hits;
  }

  /** Starts session `name` on the configuration of the same name (`create`'s options) and gathers its evidence once it completes. */
  async function attack(name: string, options: Parameters<typeof create>[1] = {}): Promise<Evidence> {
    await create(name, options);
    return evidence(name);
  }

  /** The host after a session: canary files, /etc/shadow and friends unchanged, no marker, no connection, the bystander image there. */
  async function assertHostUntouched(): Promise<void> {
    expect(snapshot()).toEqual(hostBefore);
    expect(markers.filter((m) => existsSync(m))).toEqual([]);
    expect(readdirSync(canaryDir).sort()).toEqual(['canary.txt']);
    expect(connections).toEqual([]);
    expect((await runtime.ports.images.get(bystanderImage))?.id).toBe(bystanderImage);
  }

  /** Nothing of the host in what the product kept of the session (`extraNeedles` besides the host's secrets), and the host as it was. */
  async function assertNoTrace(found: Evidence, extraNeedles: Array<[string, Buffer]> = []): Promise<void> {
    expect(leaks(found, extraNeedles)).toEqual([]);
    await assertHostUntouched();
  }

  /** A security row of RELIABILITY.md, written once the test's assertions held. */
  const recordAttack = (row: Omit<CaseResult, 'area' | 'passed'>) => recordCase({ ...row, area: 'security', passed: true });

  /** The `<side> <probe>: ALLOWED|refused` lines of a report, as `side probe` -> verdict. */
  function verdicts(report: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const match of report.matchAll(/^(controller|root|escaped|delegated) ([^\s:]+(?: [^\s:]+)?): (ALLOWED|refused)/gm)) out.set(`${match[1]} ${match[2]}`, match[3]!);
    return out;
  }

  /** The report a probe layer left in the result's root. */
  function reportOf(found: Evidence): string {
    expect(found.root, `no result for ${found.record.name}: ${found.record.status.failure?.reason}`).toBeDefined();
    return readFileSync(join(found.root!, 'cfs-attack', 'report.txt'), 'utf8');
  }

  /** The report of a probe layer whose session succeeded (the logs say why when it did not). */
  function succeededReport(found: Evidence): string {
    expect(found.record.status.session.succeeded, found.logs).toBe('true');
    return reportOf(found);
  }

  /** `<side> <probe>` for each probe on each side it ran on: the controller side, the image root and after the chroot escape unless told. */
  const onSides = (probes: string[], sides = ['controller', 'root', 'escaped']) => sides.flatMap((side) => probes.map((p) => `${side} ${p}`));

  /** The distinct errors the refusals of a report ended in (`FileNotFoundError`, `PermissionError`, ...). */
  const refusalKinds = (report: string) => [...new Set([...report.matchAll(/: refused \((\w+)/g)].map((m) => m[1]))].sort().join(', ');

  /** Asserts every expected probe ran and was refused; gives a one-line summary for the row. */
  function assertRefused(report: string, expected: string[]): string {
    const seen = verdicts(report);
    const missing = expected.filter((p) => !seen.has(p));
    expect(missing, report).toEqual([]);
    const allowed = [...seen].filter(([, v]) => v !== 'refused').map(([p]) => p);
    expect(allowed, report).toEqual([]);
    return `${seen.size} probes refused`;
  }

  function runnerPidOf(session: string): number | undefined {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        if (args.some((a) => a.endsWith('runner.mjs')) && args.includes(join(dataDir, 'work', 'workspaces', session))) return Number(pid);
      } catch {
        // gone
      }
    }
    return undefined;
  }

  /** The host path of a file inside a running session's image root. */
  const inRoot = (session: string, path: string, image = imageId) => join(dataDir, 'work', 'workspaces', session, 'images', image, path);

  /** A layer that writes `secret` into its root, then waits (up to 200 s) until the test puts /cfs-attack/go there. */
  const waiter = (secret: string): { files: Record<string, string>; playbook: string } => ({
    files: {
      'wait.py': "import os, time\nfor _ in range(800):\n    if os.path.exists('/cfs-attack/go'):\n        break\n    time.sleep(0.25)\n",
      'site.yml': `${playbookHead}    - ansible.builtin.file: { path: /cfs-attack, state: directory }\n    - ansible.builtin.copy: { src: wait.py, dest: /cfs-attack/wait.py }\n    - ansible.builtin.copy: { dest: /cfs-attack/secret.txt, content: "${secret}" }\n    - ansible.builtin.command: python3 /cfs-attack/wait.py\n`,
    },
    playbook: 'site.yml',
  });

  /** A repository holding `files` (directories made as needed), committed on main: its URL, commit and directory. */
  function repoWith(files: Record<string, string>): { url: string; commit: string; dir: string } {
    const { url, repo } = repos.with({ '.cfs-attack': `${id}\n` });
    let commit = '';
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(dirname(join(repo.dir, file)), { recursive: true });
      commit = repo.commit('main', file, text);
    }
    return { url, commit, dir: repo.dir };
  }

  beforeAll(async () => {
    ensureBuilt();
    parent = mkdtempSync('/var/tmp/cfs-attacks-');
    dataDir = join(parent, 'data');
    mkdirSync(canaryDir, { mode: 0o755 });
    writeFileSync(canary, `host canary ${SECRET}\n`);
    writeFileSync(rootCanary, `root's canary ${SECRET}\n`, { mode: 0o600 });
    listener = createServer((socket) => {
      connections.push(`${socket.remoteAddress} -> ${socket.localAddress}:${socket.localPort}`);
      socket.destroy();
    });
    await new Promise<void>((ready) => listener.listen(0, '0.0.0.0', ready));
    listenerPort = (listener.address() as { port: number }).port;
    runtime = await startEmbeddedRuntime({ dataDir, port: 0, maxConcurrentRuns: 4, retentionSweepMs: 3_600_000 });
    store = runtime.ports.artifacts as FsArtifactStore;
    writeFileSync(join(dataDir, 'attack-secret.txt'), `data directory secret ${SECRET}\n`, { mode: 0o600 });
    // The server's environment, which its runners inherit: a canary, cloud credentials and its token.
    Object.assign(process.env, { CFS_ATTACK_CANARY: SECRET, AWS_SECRET_ACCESS_KEY: `aws-${SECRET}`, ECS_CONTAINER_METADATA_URI_V4: `http://169.254.170.2/${SECRET}`, CFS_API_TOKEN: runtime.apiToken });
    for (const name of ['attack-base', 'attack-bystander']) {
      const built = await cli('images', 'build-sample', '--name', name, '--format', 'json');
      expect(built.code, built.err).toBe(0);
      if (name === 'attack-base') imageId = (JSON.parse(built.out) as { id: string }).id;
      else bystanderImage = (JSON.parse(built.out) as { id: string }).id;
    }
    const signing = readFileSync(join(dataDir, 'artifact-url-secret'));
    const shadow = readFileSync('/etc/shadow', 'utf8').split('\n').filter((l) => l.length >= 12).slice(0, 3);
    needles = [
      ['the canary secret', Buffer.from(SECRET)],
      ['the API token', Buffer.from(runtime.apiToken)],
      ['the signing secret (bytes)', signing],
      ['the signing secret (hex)', Buffer.from(signing.toString('hex'))],
      ...shadow.map((line, i): [string, Buffer] => [`/etc/shadow line ${i + 1}`, Buffer.from(line)]),
    ];
    hostBefore = snapshot();
  }, 180_000);

  afterAll(async () => {
    for (const name of ['CFS_ATTACK_CANARY', 'AWS_SECRET_ACCESS_KEY', 'ECS_CONTAINER_METADATA_URI_V4', 'CFS_API_TOKEN']) {
      if (savedEnv[name] === undefined) delete process.env[name];
      else process.env[name] = savedEnv[name];
    }
    await runtime?.close();
    await new Promise<void>((done) => (listener ? listener.close(() => done()) : done()));
    repos.disposeAll();
    rmSync(parent, { recursive: true, force: true });
    rmSync(canaryDir, { recursive: true, force: true });
    rmSync(rootCanary, { force: true });
  });

  describe('the routes', { concurrent: true, timeout: 420_000 }, () => {
    it('1. remount: delegate_to localhost, the chroot escape, the remount and host writes from both', async () => {
      // Arrange: mount(2) from the controller side and inside the root, then again after the escape; a delegate_to localhost task runs the probes and writes a host path.
      const delegated = join(canaryDir, 'marker-delegate-copy');
      markers.push(delegated, ...['controller', 'root', 'escaped', 'delegated'].map((s) => join(canaryDir, `marker-${s}-remount`)));
      const extra = [
        '    - name: the probes again, delegated to localhost\n      delegate_to: localhost\n      ansible.builtin.command: python3 /cfs-attack/probe.py delegated remount /cfs-attack/cfg.json\n      register: delegated_report\n',
        `    - name: a host write, delegated to localhost\n      delegate_to: localhost\n      block:\n        - ansible.builtin.file: { path: ${canaryDir}, state: directory }\n        - ansible.builtin.copy: { dest: ${delegated}, content: "delegated\\n" }\n`,
        '    - ansible.builtin.set_fact: { extra_report: "{{ delegated_report.stdout }}" }\n',
      ].join('');
      await configureProbes('attack-remount', 'remount,escape', { extraTasks: extra });

      // Act
      const found = await attack('attack-remount');

      // Assert
      const report = succeededReport(found);
      const probes = ['remount-syscall', 'overwrite-canary', 'overwrite-root-canary', 'create-marker', 'proc1-overwrite-canary'];
      const summary = assertRefused(report, [
        ...onSides(probes, ['controller', 'root', 'escaped', 'delegated']),
        'controller remount-command',
        'escaped remount-command',
      ]);
      expect(report).toMatch(/^escaped escaped-to: /m);
      expect(readFileSync(join(found.root!, delegated), 'utf8')).toBe('delegated\n');
      await assertNoTrace(found);
      const why = /^controller remount-syscall: refused \((.*)\)$/m.exec(report)?.[1];
      recordAttack({
        id: 'sandbox-attack-remount',
        case: 'mount(2) remount,bind,rw of / and `mount -o remount,bind,rw /`, then overwriting host canaries (/var/tmp, /root, via /proc/1/root) and creating a host file: from the controller side, inside the image root, from a delegate_to: localhost task, and after the python chroot escape (chroot to a subdir, chdir .. x64, chroot .); a delegate_to localhost copy to a host path',
        tried: 1,
        result: `session succeeded; ${summary} (remount: "${why}"; the escape lands in the sandbox's view: ${/^escaped escaped-to: (.*)$/m.exec(report)?.[1]}); the delegated copy landed in the image root (found in the result rootfs), canaries' sha256/mtime unchanged, no marker on the host, no secret in rootfs/logs/record/store`,
      });
    });

    it('2. a repository group_vars/host_vars connection override writing host paths', async () => {
      // Arrange
      const gv = join(canaryDir, 'marker-group-vars');
      markers.push(gv);
      const playbook = `${playbookHead}    - ansible.builtin.file: { path: ${canaryDir}, state: directory }\n    - ansible.builtin.copy: { dest: ${gv}, content: "group vars\\n" }\n    - ansible.builtin.copy: { dest: ${canary}, content: "overwritten by a layer\\n" }\n    - ansible.builtin.copy: { dest: ${rootCanary}, content: "overwritten by a layer\\n" }\n`;
      await configure('attack-group-vars', [{ files: { 'group_vars/cfs_image.yml': 'ansible_connection: local\nansible_host: localhost\n', [`host_vars/${imageId}.yml`]: 'ansible_connection: local\n', 'site.yml': playbook }, playbook: 'site.yml' }]);

      // Act
      const found = await attack('attack-group-vars');

      // Assert
      expect(found.record.status.session.succeeded, found.logs).toBe('true');
      expect(readFileSync(join(found.root!, gv), 'utf8')).toBe('group vars\n');
      expect(readFileSync(join(found.root!, canary), 'utf8')).toBe('overwritten by a layer\n');
      expect(readFileSync(join(found.root!, rootCanary), 'utf8')).toBe('overwritten by a layer\n');
      await assertNoTrace(found);
      recordAttack({
        id: 'sandbox-attack-group-vars',
        case: 'a layer repository whose group_vars/cfs_image.yml (ansible_connection: local, ansible_host: localhost) and host_vars/<image>.yml (ansible_connection: local) override the connection, then copy to a new host path and over the /var/tmp and /root canaries',
        tried: 1,
        result: 'session succeeded with all three files written inside the image root (read back from the result rootfs); host canaries\' sha256/mtime unchanged, no file created on the host, no secret in rootfs/logs/record/store',
      });
    });

    it('3. /proc/1/root and direct reads of /etc/shadow, the data directory and another running session\'s workspace', async () => {
      // Arrange: a second session writes its own secret into its root and waits; the attacker reads while that workspace exists.
      const otherSecret = `other-session-secret-${id}`;
      await configure('attack-read-other', [waiter(otherSecret)]);
      await create('attack-read-other');
      const otherFile = inRoot('attack-read-other', 'cfs-attack/secret.txt');
      await waitFor(async () => (existsSync(otherFile) ? true : undefined), 200_000, 'the other session\'s secret in its root');
      const cfg = probeConfig({ ownWorkspace: 'attack-read', otherWorkspaceFiles: [otherFile, join(dataDir, 'work', 'workspaces', 'attack-read-other', '.cfs-runner-workspace')] });
      await configureProbes('attack-read', 'read,escape', { config: cfg });

      // Act
      const found = await attack('attack-read');
      writeFileSync(inRoot('attack-read-other', 'cfs-attack/go'), '');
      const other = await complete('attack-read-other');

      // Assert
      const report = succeededReport(found);
      expect(other.status.session.succeeded).toBe('true');
      // The other session was still running (its workspace there) until the attacker had finished.
      expect(Date.parse(other.status.session.completion_time!)).toBeGreaterThanOrEqual(Date.parse(found.record.status.session.completion_time!));
      const targets = ['shadow', 'canary', 'root-canary', 'data-secret', 'signing-secret', 'token-file', 'other-workspace secret.txt', 'other-workspace .cfs-runner-workspace'];
      const summary = assertRefused(report, onSides([...targets.flatMap((t) => [`read-${t}`, `proc1-read-${t}`]), 'proc1-list-data-dir', 'list-data-dir', 'list-other-workspaces']));
      await assertNoTrace(found, [['the other session\'s secret', Buffer.from(otherSecret)]]);
      recordAttack({
        id: 'sandbox-attack-proc1-root',
        case: 'reads of /etc/shadow, the /var/tmp and /root canaries, a secret file in the data directory, the artifact signing secret, the API token file and a file in another session\'s workspace (running at the same time), each directly and through /proc/1/root/, and listings of the data directory (also through /proc/1/root) and of the workspaces directory: from the controller side, inside the image root and after the chroot escape',
        tried: 1,
        result: `session succeeded; ${summary} (${refusalKinds(report)}; the listings show only the sandbox's own path to its workspace); no secret, shadow line, token or the other session's secret in rootfs/logs/record/store; the other session then succeeded`,
      });
    });

    it('4a. boot-file and resolv.conf symlinks through intermediate directories, made by a layer', async () => {
      // Arrange: layer 0 makes the links (and an /etc/shadow of the image's own); layer 1 runs with them in place (resolv.conf is bound before every layer).
      const own = `image-own-shadow-${id}\n`;
      const links = [
        playbookHead,
        `    - ansible.builtin.copy: { dest: /etc/shadow, content: "${own.trim()}\\n" }\n`,
        '    - ansible.builtin.file: { path: /boot/x, src: /etc, state: link }\n',
        '    - ansible.builtin.file: { path: /boot/vmlinuz, src: x/shadow, state: link, force: true, follow: false }\n',
        `    - ansible.builtin.file: { path: /boot/y, src: ${dataDir}, state: link, force: true }\n`,
        '    - ansible.builtin.file: { path: /boot/initrd.img, src: y/artifact-url-secret, state: link, force: true, follow: false }\n',
        '    - ansible.builtin.file: { path: /r, src: /etc, state: link }\n',
        // /etc/resolv.conf is the sandbox's bind mount during a layer (replacing it is EBUSY): the layer moves /etc aside instead.
        '    - ansible.builtin.copy: { src: relink.py, dest: /relink.py }\n',
        '    - ansible.builtin.command: python3 /relink.py\n',
      ].join('');
      const relink = [
        'import os, shutil',
        "os.rename('/etc', '/etc.moved')",
        "shutil.copytree('/etc.moved', '/etc', symlinks=True, ignore=lambda d, names: ['resolv.conf'] if d == '/etc.moved' else [])",
        "os.symlink('../r/resolv.conf', '/etc/resolv.conf')",
        "print('linked', os.readlink('/etc/resolv.conf'))",
        '',
      ].join('\n');
      const second = `${playbookHead}    - ansible.builtin.command: python3 -c "print(open('/etc/resolv.conf').read())"\n      register: resolv\n      ignore_errors: true\n    - ansible.builtin.debug: { var: resolv }\n`;
      await configure('attack-boot-layer', [{ files: { 'relink.py': relink, 'links.yml': links }, playbook: 'links.yml' }, { files: { 'second.yml': second }, playbook: 'second.yml' }]);

      // Act
      const found = await attack('attack-boot-layer');

      // Assert
      expect(found.record.status.session.succeeded, found.logs).toBe('true');
      const sample = readFileSync(join(found.root!, 'boot/vmlinuz-sample'));
      expect([own, sample.toString()]).toContain(found.kernel?.toString());
      expect(found.initrd?.toString()).toBe(readFileSync(join(found.root!, 'boot/initrd.img-sample'), 'utf8'));
      expect(lstatSync(join(found.root!, 'boot/vmlinuz')).isSymbolicLink()).toBe(true);
      expect(execFileSync('readlink', [join(found.root!, 'etc/resolv.conf')], { encoding: 'utf8' }).trim()).toBe('../r/resolv.conf');
      await assertNoTrace(found);
      const kernelIs = found.kernel?.toString() === own ? "the image's own /etc/shadow (x -> /etc resolved inside the root)" : 'the root\'s /boot/vmlinuz-sample';
      recordAttack({
        id: 'sandbox-attack-boot-links-layer',
        case: 'a layer makes /boot/x -> /etc, /boot/vmlinuz -> x/shadow, /boot/y -> <data dir>, /boot/initrd.img -> y/artifact-url-secret, /r -> /etc, and (moving /etc aside, as the bind-mounted resolv.conf cannot be replaced in place: EBUSY) /etc/resolv.conf -> ../r/resolv.conf; a second layer runs with them in place and reads /etc/resolv.conf',
        tried: 1,
        result: `session succeeded; registered kernel = ${kernelIs}, initrd = the root's initrd.img-sample; no host byte (shadow line, signing secret) in kernel/initrd/rootfs/logs; host /etc/resolv.conf and /etc/shadow sha256/mtime unchanged`,
      });
    });

    it('4b. the same symlinks in a source image, customized by a no-op layer', async () => {
      // Arrange: a sample root holding the links, imported as an image.
      const dir = join(parent, 'linked-root');
      await buildSampleRoot(dir);
      symlinkSync('/etc', join(dir, 'boot/x'));
      symlinkSync('x/shadow', join(dir, 'boot/vmlinuz'));
      symlinkSync(dataDir, join(dir, 'boot/y'));
      symlinkSync('y/artifact-url-secret', join(dir, 'boot/initrd.img'));
      symlinkSync('/etc', join(dir, 'r'));
      rmSync(join(dir, 'etc/resolv.conf'), { force: true });
      symlinkSync('../r/resolv.conf', join(dir, 'etc/resolv.conf'));
      const imported = await cli('images', 'import', '--name', 'attack-linked', '--rootfs', dir, '--format', 'json');
      expect(imported.code, imported.err).toBe(0);
      const source = (JSON.parse(imported.out) as { id: string }).id;
      await configure('attack-boot-source', [{ files: { 'noop.yml': `${playbookHead}    - ansible.builtin.command: "true"\n` }, playbook: 'noop.yml' }]);

      // Act
      const found = await attack('attack-boot-source', { source });

      // Assert
      expect(found.record.status.session.succeeded, found.logs).toBe('true');
      expect(found.kernel?.toString()).toBe(readFileSync(join(dir, 'boot/vmlinuz-sample'), 'utf8'));
      expect(found.initrd?.toString()).toBe(readFileSync(join(dir, 'boot/initrd.img-sample'), 'utf8'));
      await assertNoTrace(found);
      recordAttack({
        id: 'sandbox-attack-boot-links-source',
        case: 'a source image (imported sample root) already holding /boot/vmlinuz -> x/shadow with /boot/x -> /etc, /boot/initrd.img -> y/artifact-url-secret with /boot/y -> <data dir>, /etc/resolv.conf -> ../r/resolv.conf with /r -> /etc; customized by a no-op layer',
        tried: 1,
        result: 'session succeeded; registered kernel and initrd are the root\'s own vmlinuz-sample and initrd.img-sample (the links resolve inside the root to nothing); no host byte in kernel/initrd/rootfs/logs; host /etc/shadow and /etc/resolv.conf unchanged',
      });
    });

    it('5. an @file limit is a 400 naming the field; a templated passthrough value stays literal text', async () => {
      // Arrange
      const marker = join(canaryDir, 'marker-passthrough');
      markers.push(marker);
      await configure('attack-options', [{ files: { 'site.yml': `${playbookHead}    - ansible.builtin.debug: { msg: "x={{ x }}" }\n` }, playbook: 'site.yml' }]);
      const passthrough = `-e '{"x": "{{ lookup(\\"pipe\\", \\"cat /etc/shadow; touch ${marker}\\") }}"}'`;

      // Act
      const limited = await send('POST', '/apis/cfs/v3/sessions', { name: 'attack-limit', configuration_name: 'attack-options', ansible_limit: '@/etc/shadow', target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] } });
      const found = await attack('attack-options', { passthrough });

      // Assert
      expect(limited.status).toBe(400);
      expect(limited.body.field).toBe('ansible_limit');
      expect(await runtime.ports.sessions.get('attack-limit')).toBeUndefined();
      expect(found.record.status.session.succeeded, found.logs).toBe('true');
      expect(found.logs).toContain(`x={{ lookup(\\"pipe\\", \\"cat /etc/shadow; touch ${marker}\\") }}`);
      await assertNoTrace(found);
      recordAttack({
        id: 'sandbox-attack-options',
        case: 'ansible_limit "@/etc/shadow" at session create; ansible_passthrough -e \'{"x": "{{ lookup("pipe", "cat /etc/shadow; touch <host path>") }}"}\' printed by a debug task',
        tried: 2,
        result: `limit: 400, field ansible_limit ("${limited.body.detail}"), no session stored; passthrough: session succeeded, the log shows the lookup as literal text, no /etc/shadow line anywhere, the host path never created`,
      });
    });

    it('6. env, /proc/self/environ and /proc/1/environ dumped into the image root', async () => {
      // Arrange
      await configureProbes('attack-env', 'env,escape');

      // Act
      const found = await attack('attack-env');

      // Assert
      const report = succeededReport(found);
      for (const side of ['controller', 'root', 'escaped']) expect(report).toContain(`${side} env PYTHONUNBUFFERED=1`);
      expect(report).toMatch(/^root \/proc\/self\/environ PATH=/m);
      expect(report).not.toMatch(/\b(CFS|AWS|ECS)_[A-Z0-9_]*=/);
      await assertNoTrace(found);
      const names = [...new Set([...report.matchAll(/^\w+ env ([A-Z_a-z0-9]+)=/gm)].map((m) => m[1]))].sort();
      recordAttack({
        id: 'sandbox-attack-environment',
        case: 'os.environ, /proc/self/environ and /proc/1/environ dumped into the image root and the log (controller side, in the root, after the chroot escape), with CFS_ATTACK_CANARY, AWS_SECRET_ACCESS_KEY, ECS_CONTAINER_METADATA_URI_V4 and CFS_API_TOKEN (the real token) in the server\'s environment',
        tried: 1,
        result: `session succeeded; the dumps hold only ${names.join(', ')}; no CFS_/AWS_/ECS_ variable, canary or token in rootfs/logs/record/store`,
      });
    });

    it('7. the loopback API (with and without the token) and link-local endpoints', async () => {
      // Arrange
      await configureProbes('attack-network', 'net,escape');

      // Act
      const found = await attack('attack-network');

      // Assert
      const report = succeededReport(found);
      const probes = ['api-without-token', 'api-with-token', 'api-delete-bystander', 'listener-loopback', ...hostAddresses.map((a) => `listener-${a}`), 'metadata-169.254.169.254', 'ecs-credentials-169.254.170.2'];
      const summary = assertRefused(report, onSides(probes));
      await assertNoTrace(found);
      const why = /^root api-without-token: refused \((.*)\)$/m.exec(report)?.[1];
      recordAttack({
        id: 'sandbox-attack-network',
        case: `HTTP to the server on 127.0.0.1 (GET sessions without and with a token, DELETE a bystander image with force), TCP to a listener on 127.0.0.1 and on the host's addresses (${hostAddresses.join(', ')}), HTTP to 169.254.169.254 and 169.254.170.2: from the controller side, the image root and after the chroot escape (network egress)`,
        tried: 1,
        result: `session succeeded; ${summary} (e.g. "${why}"); the listener saw no connection; the bystander image is still registered`,
      });
    });

    it('8. a playbook that is a symlink to a host file, absolute or climbing out of the clone', async () => {
      // Arrange
      const cases = { absolute: '/etc/shadow', climbing: '../../../../../../../../../../etc/shadow' };
      const reasons: string[] = [];
      const logs: string[] = [];
      for (const [kind, target] of Object.entries(cases)) {
        const { url, commit, repo } = repos.with({ 'README.md': 'x\n' });
        symlinkSync(target, join(repo.dir, 'site.yml'));
        execFileSync('git', ['-C', repo.dir, 'add', 'site.yml']);
        execFileSync('git', ['-C', repo.dir, '-c', 'user.name=t', '-c', 'user.email=t@example', 'commit', '-q', '-m', 'link']);
        const linked = execFileSync('git', ['-C', repo.dir, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
        expect(linked).not.toBe(commit);
        expect((await send('PUT', `/apis/cfs/v3/configurations/attack-link-${kind}`, { layers: [{ name: 'linked', clone_url: url, commit: linked, playbook: 'site.yml' }] })).status).toBe(200);

        // Act
        const created = await send('POST', '/apis/cfs/v3/sessions', { name: `attack-link-${kind}`, configuration_name: `attack-link-${kind}`, target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] } });
        expect(created.status, created.body.detail).toBe(201);
        const found = await evidence(`attack-link-${kind}`);

        // Assert
        expect(found.record.status.session.succeeded).toBe('false');
        const reason = found.record.status.failure?.reason ?? '';
        expect(reason).toContain("has symlinks that lead outside its clone: 'site.yml'");
        expect(found.record.status.artifacts).toEqual([]);
        expect(leaks(found)).toEqual([]);
        reasons.push(`${kind}: "${reason}"`);
        logs.push(found.logs);
      }
      await assertHostUntouched();
      recordAttack({
        id: 'sandbox-attack-playbook-link',
        case: 'a layer whose playbook site.yml is a symlink to /etc/shadow, and one to ../../../../../../../../../../etc/shadow (climbing out of the clone)',
        tried: 2,
        result: `both sessions failed before Ansible ran: ${reasons.join('; ')}; no /etc/shadow line in the logs, record or store; no result`,
      });
    });

    it('9. the debug hold: a failed layer rewrites its workspace, then the hold\'s enter, rerun and release', async () => {
      // Arrange: every file the layer reaches (controller side and in the root) becomes a script that would create a host marker.
      const marker = join(canaryDir, 'marker-debug-hold');
      markers.push(marker);
      const rewrite = [
        'import os, sys',
        `payload = b"#!/bin/sh\\necho pwned > ${marker}\\n"`,
        'count = 0',
        'for top, dirs, files in os.walk(sys.argv[1]):',
        "    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ('/proc', '/dev', '/sys')]",
        '    for name in files:',
        '        path = os.path.join(top, name)',
        '        try:',
        '            if os.path.islink(path) or not os.path.isfile(path): continue',
        "            with open(path, 'wb') as f: f.write(payload)",
        '            os.chmod(path, 0o755)',
        '            count += 1',
        '        except OSError:',
        '            pass',
        "print(f'rewrote {count} files under {sys.argv[1]}')",
        '',
      ].join('\n');
      const playbook = [
        playbookHead,
        '    - ansible.builtin.file: { path: /cfs-attack, state: directory }\n',
        '    - ansible.builtin.copy: { src: rewrite.py, dest: /cfs-attack/rewrite.py }\n',
        '    - name: rewrite the image root from inside\n      ansible.builtin.command: python3 /cfs-attack/rewrite.py /\n      ignore_errors: true\n',
        "    - name: rewrite the workspace from the controller side\n      ansible.builtin.debug: { msg: \"{{ lookup('pipe', 'python3 ' ~ playbook_dir ~ '/rewrite.py ' ~ playbook_dir ~ '/../..') }}\" }\n",
        '    - ansible.builtin.fail: { msg: "failing on purpose, after the rewrite" }\n',
      ].join('');
      await configure('attack-hold', [{ files: { 'rewrite.py': rewrite, 'site.yml': playbook }, playbook: 'site.yml' }]);
      const bin = (...argv: string[]) => cfsBin({ CFS_API_URL: runtime.url, CFS_DATA_DIR: dataDir }, ...argv);

      // Act
      const found = await attack('attack-hold', { debug: true });
      const hold = found.record.status.debug!;
      const instructions = await bin('sessions', 'debug', 'attack-hold');
      const entered = await bin('sessions', 'debug', 'attack-hold', '--enter', imageId, '--', '-c', 'echo entered');
      const rerun = await bin('sessions', 'debug', 'attack-hold', '--rerun', '0');
      const madeBeforeRelease = existsSync(marker);
      const released = await bin('sessions', 'release', 'attack-hold');

      // Assert
      expect(found.record.status.session).toMatchObject({ status: 'running', succeeded: 'none' });
      expect(found.record.status.failure).toMatchObject({ step: 'ansible', layer: 'attack-hold-0' });
      expect(hold.workspace).toContain('attack-hold');
      expect(instructions.code, instructions.err).toBe(0);
      expect(instructions.out).toContain(`cfs sessions debug attack-hold --enter ${imageId}`);
      expect(entered.out).not.toContain('pwned');
      expect(rerun.code).not.toBe(0);
      expect(madeBeforeRelease).toBe(false);
      expect(released.code, released.err).toBe(0);
      expect(existsSync(hold.workspace)).toBe(false);
      await assertNoTrace(found);
      recordAttack({
        id: 'sandbox-attack-debug-hold',
        case: 'a layer (debug_on_failure) overwrites every file it reaches in its workspace (controller side) and its root with a script that creates a host file, then fails; then `cfs sessions debug NAME`, `--enter IMAGE -- -c "echo entered"`, `--rerun 0` and `cfs sessions release`',
        tried: 1,
        result: `session failed ("${found.record.status.failure?.reason.slice(0, 100)}"); instructions printed, enter exited ${entered.code} ("${entered.out.trim().slice(0, 40)}"), rerun exited ${rerun.code}; the host file never created, the workspace removed on release`,
      });
    });

    it('10. a forged process record naming a bystander sleep and another session\'s runner, then the kill, recovery and retention sweep', async () => {
      // Arrange: a bystander and another running session; the attacker writes records naming them everywhere it can, chattr +i, and waits.
      const bystander: ChildProcess = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
      bystander.unref();
      try {
        await configure('attack-record-victim', [waiter(`victim-${id}`)]);
        await create('attack-record-victim');
        const victimRunner = await waitFor(async () => runnerPidOf('attack-record-victim'), 120_000, 'the victim\'s runner');
        const record = (pid: number) => ({ pid, start: '' });
        const forged = { runner: record(bystander.pid!), groups: [record(bystander.pid!), record(victimRunner)] };
        for (const entry of [forged.runner, ...forged.groups]) entry.start = (await processStartTime(entry.pid))!;
        const forge = [
          'W="$1/../.."',
          'for t in "$W/.cfs-runner-processes.json" "$W/../.attack-record.processes.json" "$W/images/.cfs-runner-processes.json" "$W/images/../.attack-record.processes.json" "$W/tmp/.cfs-runner-processes.json" "$W/ansible/home/.cfs-runner-processes.json" "$W/ansible/tmp/.cfs-runner-processes.json"; do',
          '  cp "$1/records.json" "$t" 2>/dev/null && chattr +i "$t" 2>/dev/null',
          '  echo "forged $t: $(head -c 12 "$t" 2>/dev/null)"',
          'done',
          'true',
          '',
        ].join('\n');
        const playbook = [
          playbookHead,
          "    - ansible.builtin.debug: { msg: \"{{ lookup('pipe', 'sh ' ~ playbook_dir ~ '/forge.sh ' ~ playbook_dir) }}\" }\n",
          '    - ansible.builtin.file: { path: /cfs-attack, state: directory }\n',
          '    - ansible.builtin.copy: { src: records.json, dest: "{{ item }}" }\n      loop: [/.cfs-runner-processes.json, /cfs-attack/.cfs-runner-processes.json, /.attack-record.processes.json]\n',
          '    - ansible.builtin.copy: { dest: /cfs-attack/ready, content: "" }\n',
          '    - ansible.builtin.command: sleep 300\n',
        ].join('');
        await configure('attack-record', [{ files: { 'records.json': JSON.stringify(forged), 'forge.sh': forge, 'site.yml': playbook }, playbook: 'site.yml' }]);
        await create('attack-record');
        await waitFor(async () => (existsSync(inRoot('attack-record', 'cfs-attack/ready')) ? true : undefined), 200_000, 'the forged records');
        const realRecord = JSON.parse(readFileSync(processFileOf(join(dataDir, 'work', 'workspaces', 'attack-record')), 'utf8')) as { runner: { pid: number }; groups: Array<{ pid: number }> };

        // Act: the attacker's runner dies (the engine cleans its workspace), then the retention sweep runs.
        const attackerRunner = runnerPidOf('attack-record')!;
        process.kill(attackerRunner, 'SIGKILL');
        const attacked = await complete('attack-record');
        const swept = await runtime.sweeper.sweep();
        const bystanderAlive = (() => {
          try {
            process.kill(bystander.pid!, 0);
            return true;
          } catch {
            return false;
          }
        })();
        const victimAlive = (await processStartTime(victimRunner)) === forged.groups[1]!.start;
        writeFileSync(inRoot('attack-record-victim', 'cfs-attack/go'), '');
        const victim = await complete('attack-record-victim');
        const found = await evidence('attack-record');

        // Assert
        expect([realRecord.runner.pid, ...realRecord.groups.map((g) => g.pid)].filter((p) => p === bystander.pid || p === victimRunner)).toEqual([]);
        expect(attacked.status.session.succeeded).toBe('false');
        expect(bystanderAlive).toBe(true);
        expect(victimAlive).toBe(true);
        expect(victim.status.session.succeeded).toBe('true');
        await waitFor(async () => (existsSync(join(dataDir, 'work', 'workspaces', 'attack-record')) ? undefined : true), 30_000, 'the attacker\'s workspace to be removed');
        expect(existsSync(processFileOf(join(dataDir, 'work', 'workspaces', 'attack-record')))).toBe(false);
        await assertNoTrace(found);
        recordAttack({
          id: 'sandbox-attack-process-record',
          case: 'a layer writes process records (.cfs-runner-processes.json and .<session>.processes.json, with the right start times) naming a bystander `sleep` and another running session\'s runner at every path it can reach (workspace top and parent, images, tmp, ansible home, the image root) and chattr +i them; its runner is then SIGKILLed and the retention sweep runs',
          tried: 1,
          result: `the real record (beside the workspace) named neither; the session failed ("${attacked.status.failure?.reason.slice(0, 80)}"), its workspace and record removed (sweep removed ${swept.workspaces.length} workspace(s)); the bystander sleep and the other session's runner lived, and that session then succeeded`,
        });
      } finally {
        bystander.kill('SIGKILL');
      }
    });

    it('11. /dev/kmsg writes and raw disk reads (also through mknod) from the root', async () => {
      // Arrange
      await configureProbes('attack-devices', 'devices,escape');

      // Act
      const found = await attack('attack-devices');

      // Assert
      const report = succeededReport(found);
      const probes = ['write-kmsg', ...disks.flatMap((d) => [`read-${d}`, `mknod-read-${d.slice(5)}`])];
      const summary = assertRefused(report, onSides(probes));
      await assertNoTrace(found);
      recordAttack({
        id: 'sandbox-attack-devices',
        case: `writing /dev/kmsg, reading the first sector of ${disks.join(', ') || '(no disk on this host)'}, and mknod of that disk's block device then reading it: from the controller side, the image root and after the chroot escape`,
        tried: 1,
        result: `session succeeded; ${summary} (${/^root write-kmsg: refused \((.*)\)$/m.exec(report)?.[1]}; ${/^root mknod-read-\S+: refused \((.*)\)$/m.exec(report)?.[1] ?? 'no disk'})`,
      });
    });
  });

  describe('afterwards', () => {
    it('leaves no host secret anywhere in the artifact store and nothing of the attacks on the host', async () => {
      // Arrange / Act: every file the store holds (results were unpacked per route; this covers manifests, documents and logs of every session).
      const files = filesUnder(store.root);
      const hits: string[] = [];
      for (const file of files) {
        const blob = readFileSync(file);
        for (const [what, needle] of needles) if (blob.includes(needle)) hits.push(`${relative(store.root, file)}: ${what}`);
      }

      // Assert
      expect(hits).toEqual([]);
      await assertHostUntouched();
      expect(readFileSync(canary, 'utf8')).toBe(`host canary ${SECRET}\n`);
    });
  });
});
