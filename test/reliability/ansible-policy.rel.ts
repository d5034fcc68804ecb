import fc from 'fast-check';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../functions/cli/main.ts';
import type { CliIo } from '../../functions/cli/io.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { waitFor } from '../helpers/wait.ts';
import { recordCase } from './results.ts';
import { bearer, cliEnv } from '../helpers/api-token.ts';

// Security (issue 11, item 4): Ansible changes only the staged roots. Requests that would widen
// what Ansible reaches are refused; playbooks that try to reach the host change nothing there.

const RUNS = Number(process.env.CFS_RELIABILITY_RUNS ?? 300);

describe('what Ansible may reach', () => {
  let parent: string;
  let runtime: EmbeddedRuntime;
  let repo: TempRepo;
  let imageId: string;

  const send = async (method: string, path: string, body: unknown) => {
    const response = await fetch(`${runtime.url}${path}`, { method, headers: { ...bearer(runtime), 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as { detail?: string; field?: string } };
  };

  beforeAll(async () => {
    parent = mkdtempSync(join(tmpdir(), 'cfs-policy-'));
    repo = makeTempRepo();
    runtime = await startEmbeddedRuntime({ dataDir: join(parent, 'data'), port: 0, maxConcurrentRuns: 2 });
    let out = '';
    const io: CliIo = { out: (t) => void (out += t), err: () => undefined, env: cliEnv(runtime) };
    expect(await runCli(['images', 'build-sample', '--name', 'policy-base', '--format', 'json'], io)).toBe(0);
    imageId = (JSON.parse(out) as { id: string }).id;
  });
  afterAll(async () => {
    await runtime.close();
    repo.dispose();
    rmSync(parent, { recursive: true, force: true });
  });

  it('refuses clone URLs outside the allowed schemes or starting with -, and passthrough that sets ansible_* variables', async () => {
    // Arrange
    const badUrl = fc.oneof(
      fc.string({ minLength: 0, maxLength: 30 }).map((s) => `-${s}`),
      fc.constantFrom('ext::sh -c touch% /tmp/pwned', 'fd::3', 'http://git.example/repo.git', 'ftp://git.example/r.git', 'git://git.example/r.git', '--upload-pack=touch /tmp/x', ''),
      fc.tuple(fc.constantFrom('ext', 'fd', 'gopher', 'data', 'javascript'), fc.string({ maxLength: 20 })).map(([scheme, rest]) => `${scheme}::${rest}`),
    );
    const ansibleVar = fc.tuple(fc.constantFrom('ansible_connection', 'ansible_host', 'ansible_python_interpreter', 'ansible_chroot_exe', 'ANSIBLE_become'.toLowerCase()), fc.constantFrom('local', 'localhost', '/bin/sh')).map(([k, v]) => fc.constantFrom(`-e ${k}=${v}`, `--extra-vars ${k}=${v}`, `-e '{"${k}": "${v}"}'`, `--extra-vars=${k}=${v}`));
    let tried = 0;

    // Act / Assert
    await fc.assert(fc.asyncProperty(badUrl, async (url) => {
      tried += 1;
      const res = await send('PUT', '/apis/cfs/v3/configurations/policy-url', { layers: [{ name: 'l', clone_url: url, commit: 'a'.repeat(40), playbook: 'site.yml' }] });
      expect(res.status, url).toBe(400);
      expect(`${res.body.field} ${res.body.detail}`, url).toContain('clone_url');
    }), { numRuns: RUNS });
    await send('PUT', '/apis/cfs/v3/configurations/policy', { layers: [{ name: 'l', clone_url: repo.url, commit: repo.commit('main', 'noop.yml', '- hosts: cfs_image\n  gather_facts: false\n  tasks: []\n'), playbook: 'noop.yml' }] });
    await fc.assert(fc.asyncProperty(ansibleVar.chain((a) => a), async (passthrough) => {
      tried += 1;
      const res = await send('POST', '/apis/cfs/v3/sessions', { name: 'policy-pass', configuration_name: 'policy', ansible_passthrough: passthrough, target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] } });
      expect(res.status, passthrough).toBe(400);
      expect(`${res.body.field} ${res.body.detail}`, passthrough).toContain('ansible_passthrough');
    }), { numRuns: Math.min(RUNS, 100) });
    expect(await runtime.ports.sessions.get('policy-pass')).toBeUndefined();
    recordCase({ id: 'security-refusals', area: 'security', case: 'clone URLs starting with - or outside https/ssh/file (ext::, fd::, http, git, ...), and ansible_passthrough setting ansible_* variables', tried, result: 'every one a 400 naming clone_url or ansible_passthrough; no session stored', passed: true });
  });

  it('refuses limits and options that name a file or an option, at session create and for automations', async () => {
    // Arrange
    const file = fc.constantFrom('/etc/shadow', '/root/.ssh/id_rsa', 'hosts.txt', '');
    const badLimit = fc.oneof(
      file.map((f) => `@${f}`),
      fc.tuple(fc.constantFrom('Compute', imageId, 'all'), fc.constantFrom(',', ':', ':!', ':&'), file).map(([g, sep, f]) => `${g}${sep}@${f}`),
      fc.string({ maxLength: 20 }).filter((t) => !/[\s;]/.test(t)).map((t) => `-${t}`),
    );
    const badPassthrough = fc.oneof(
      file.map((f) => fc.constantFrom(`-e @${f}`, `--extra-vars=@${f}`, `-e@${f}`)).chain((a) => a),
      fc.tuple(fc.constantFrom('--tags', '--skip-tags', '--start-at-task', '-t'), fc.constantFrom('-', '@'), fc.string({ maxLength: 12 }).filter((t) => !/[\s'"\\]/.test(t))).map(([o, c, t]) => `${o}=${c}${t}`),
    );
    let tried = 0;

    // Act / Assert
    await fc.assert(fc.asyncProperty(badLimit, async (limit) => {
      tried += 1;
      const res = await send('POST', '/apis/cfs/v3/sessions', { name: 'policy-limit', configuration_name: 'policy', ansible_limit: limit, target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] } });
      expect(res.status, limit).toBe(400);
      expect(res.body.field, limit).toBe('ansible_limit');
      const v2 = await send('POST', '/apis/cfs/v2/sessions', { name: 'policy-limit', configurationName: 'policy', ansibleLimit: limit, target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] } });
      expect(v2.status, limit).toBe(400);
      expect(v2.body.field, limit).toBe('ansibleLimit');
    }), { numRuns: Math.min(RUNS, 100) });
    await fc.assert(fc.asyncProperty(badPassthrough, async (passthrough) => {
      tried += 1;
      const res = await send('POST', '/apis/cfs/v3/sessions', { name: 'policy-opt', configuration_name: 'policy', ansible_passthrough: passthrough, target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] } });
      expect(res.status, passthrough).toBe(400);
      expect(res.body.field, passthrough).toBe('ansible_passthrough');
      const automation = await send('PUT', '/apis/cfs/v3/automations/policy-opt', { configuration_name: 'policy', source: { name_pattern: 'policy-*' }, groups: ['Compute'], ansible_passthrough: passthrough });
      expect(automation.status, passthrough).toBe(400);
      expect(automation.body.field, passthrough).toBe('ansible_passthrough');
    }), { numRuns: Math.min(RUNS, 100) });
    expect(await runtime.ports.sessions.get('policy-limit')).toBeUndefined();
    expect(await runtime.ports.sessions.get('policy-opt')).toBeUndefined();
    recordCase({ id: 'security-options-are-data', area: 'security', case: 'ansible_limit naming a file (@..., also after , : :! :&) or starting with -, v3 and v2; ansible_passthrough -e @file and --tags/--skip-tags/--start-at-task values starting with - or @; the same in an automation', tried, result: 'every one a 400 naming ansible_limit/ansibleLimit or ansible_passthrough; no session or automation stored', passed: true });
  });

  it('runs a repository connection override, templated passthrough values and an environment dump inside the image root, with nothing of the server', async () => {
    // Arrange: the layer turns the connection into local three ways and writes markers at host paths;
    // the passthrough carries a lookup that would touch a host file; the server has canaries in its environment.
    const id = Date.now().toString(36);
    const markers = ['group-vars', 'set-fact', 'delegate', 'pwned'].map((n) => `/tmp/cfs-policy-${n}-${id}`);
    const canary = `canary-${id}-server-secret`;
    const write = (path: string) => `      ansible.builtin.copy: { content: "x", dest: ${path} }\n`;
    const files: Record<string, string> = {
      'group_vars/cfs_image.yml': 'ansible_connection: local\nansible_host: /\n',
      [`host_vars/${imageId}.yml`]: 'ansible_connection: local\n',
      'override.yml': [
        '- hosts: cfs_image\n  gather_facts: false\n  connection: local\n  vars: { ansible_connection: local }\n  tasks:\n    - name: group vars\n', write(markers[0]!),
        '    - ansible.builtin.set_fact: { ansible_connection: local }\n    - name: set_fact\n', write(markers[1]!),
        '    - name: delegate\n      delegate_to: localhost\n', write(markers[2]!),
        '    - name: passthrough value\n      ansible.builtin.debug: { msg: "value={{ probe }}" }\n',
        '    - name: environment\n      ansible.builtin.shell: "env; cat /proc/self/environ"\n      register: dump\n',
        '    - ansible.builtin.debug: { msg: "{{ dump.stdout }} controller={{ lookup(\'file\', \'/proc/self/environ\') }}" }\n',
      ].join(''),
    };
    let commit = '';
    for (const dir of ['group_vars', 'host_vars']) mkdirSync(join(repo.dir, dir), { recursive: true });
    for (const [file, text] of Object.entries(files)) commit = repo.commit('main', file, text);
    await send('PUT', '/apis/cfs/v3/configurations/policy-override', { layers: [{ name: 'override', clone_url: repo.url, commit, playbook: 'override.yml' }] });
    const saved = { ...process.env };
    Object.assign(process.env, { CFS_API_TOKEN: canary, AWS_SECRET_ACCESS_KEY: canary, ECS_CONTAINER_METADATA_URI_V4: canary, CFS_POLICY_CANARY: canary });

    // Act
    let session: SessionRecord;
    let logs = '';
    try {
      const created = await send('POST', '/apis/cfs/v3/sessions', {
        name: 'policy-override',
        configuration_name: 'policy-override',
        ansible_passthrough: `-e '{"probe": "{{ lookup(\\"pipe\\", \\"touch ${markers[3]}; echo ran\\") }}"}'`,
        target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] },
      });
      expect(created.status, created.body.detail).toBe(201);
      session = await waitFor(async () => {
        const s = (await (await fetch(`${runtime.url}/apis/cfs/v3/sessions/policy-override`, { headers: bearer(runtime) })).json()) as SessionRecord;
        return s.status.session.status === 'complete' ? s : undefined;
      }, 300_000, 'session policy-override');
      const io: CliIo = { out: (t) => void (logs += t), err: () => undefined, env: cliEnv(runtime) };
      await runCli(['sessions', 'logs', 'policy-override'], io);
    } finally {
      for (const name of ['CFS_API_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'ECS_CONTAINER_METADATA_URI_V4', 'CFS_POLICY_CANARY']) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    }

    // Assert
    expect(session.status.session.succeeded, JSON.stringify(session.status.failure)).toBe('true');
    for (const path of markers) expect(existsSync(path), path).toBe(false);
    expect(logs).toContain('value={{ lookup(\\"pipe\\", \\"touch');
    expect(logs).toContain('PYTHONUNBUFFERED=1');
    expect(logs).toContain('controller=');
    expect(logs).not.toContain(canary);
    expect(logs).not.toMatch(/\b(CFS_API_TOKEN|AWS_SECRET_ACCESS_KEY|ECS_CONTAINER_METADATA_URI_V4|CFS_POLICY_CANARY)=/);
    recordCase({
      id: 'security-connection-env',
      area: 'security',
      case: 'a layer whose group_vars/cfs_image.yml, host_vars, play vars, connection keyword and set_fact say ansible_connection: local, writing markers at host paths (also delegate_to localhost); a passthrough value {{ lookup("pipe", "touch <host path>") }}; env, /proc/self/environ (in the root) and the controller\'s /proc/self/environ dumped into the log, with CFS_API_TOKEN, AWS_SECRET_ACCESS_KEY, ECS_* and CFS_* canaries in the server\'s environment',
      tried: 1,
      result: 'session succeeded with every marker written inside the image root, none on the host; the lookup reached the task as literal text and ran nothing; the dumps hold the runner\'s allow-listed variables and no canary or CFS_/AWS_/ECS_ variable',
      passed: true,
    });
  });

  it('keeps the host unchanged when playbooks target localhost, delegate to it, or write to absolute host paths', async () => {
    // Arrange: each playbook tries to create a marker file on the host.
    const marker = (n: string) => join(parent, `escaped-${n}`);
    const playbooks: Record<string, string> = {
      'to-localhost': `- hosts: localhost\n  gather_facts: false\n  tasks:\n    - file:\n        path: ${marker('localhost')}\n        state: touch\n`,
      'delegate': `- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - file:\n        path: ${marker('delegate')}\n        state: touch\n      delegate_to: localhost\n`,
      'command': `- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - shell: touch ${marker('command')} || true; cd /proc/1/root 2>/dev/null && touch .${marker('proc')} || true\n`,
      'limit-all': `- hosts: all\n  gather_facts: false\n  tasks:\n    - file:\n        path: ${marker('limit')}\n        state: touch\n      delegate_to: 127.0.0.1\n`,
    };
    const outcomes: string[] = [];

    // Act
    for (const [name, playbook] of Object.entries(playbooks)) {
      const commit = repo.commit('main', `${name}.yml`, playbook);
      await send('PUT', `/apis/cfs/v3/configurations/${name}`, { layers: [{ name, clone_url: repo.url, commit, playbook: `${name}.yml` }] });
      const created = await send('POST', '/apis/cfs/v3/sessions', { name, configuration_name: name, ansible_limit: name === 'limit-all' ? 'all' : '', target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] } });
      expect([201, 400]).toContain(created.status);
      if (created.status === 400) {
        outcomes.push(`${name}: refused (${created.body.detail})`);
        continue;
      }
      const session = await waitFor(async () => {
        const s = (await (await fetch(`${runtime.url}/apis/cfs/v3/sessions/${name}`, { headers: bearer(runtime) })).json()) as SessionRecord;
        return s.status.session.status === 'complete' ? s : undefined;
      }, 180_000, `session ${name}`);
      outcomes.push(`${name}: succeeded=${session.status.session.succeeded}${session.status.failure ? ` (${session.status.failure.reason.slice(0, 80)})` : ''}`);
    }

    // Assert
    for (const n of ['localhost', 'delegate', 'command', 'proc', 'limit']) expect(existsSync(marker(n)), n).toBe(false);
    recordCase({
      id: 'security-sandbox',
      area: 'security',
      case: 'four sessions whose playbook tries to create a file in the test\'s own temporary directory on the host: a `hosts: localhost` play (file touch), a delegate_to localhost task (file touch), a shell task (touch, and touch through /proc/1/root), and an `all` limit with delegate_to 127.0.0.1',
      tried: Object.keys(playbooks).length,
      result: `checked: none of the 5 target paths (escaped-localhost, -delegate, -command, -proc, -limit in that directory) exists afterwards; outcomes: ${outcomes.join('; ')}. Remounts, chroot escapes, host reads, network, devices and the rest are the sandbox-attack-* rows`,
      passed: true,
    });
  });
});
