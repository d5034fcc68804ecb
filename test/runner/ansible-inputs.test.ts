import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSampleRoot } from '../../functions/cli/images/sample-root.ts';
import { ansibleEnvironment } from '../../functions/runner/ansible-environment.ts';
import { ansiblePlaybookArgs, writeInventory } from '../../functions/runner/layers.ts';
import { workspaceLayout, type WorkspaceLayout } from '../../functions/runner/workspace.ts';

// Real ansible-playbook (Debian's 2.14 with community.general) against a real image root, with
// exactly the files and environment the runner gives it, outside any sandbox: what is checked
// here is Ansible's own reading of them (the sandbox is the boundary beyond that).

const IMAGE = '6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b';

let base: string;
let layout: WorkspaceLayout;
let root: string;
let inventoryDir: string;

/** Writes a repository directory with the given files and runs one layer as the runner would. */
async function runLayer(
  name: string,
  files: Record<string, string>,
  ansible: { limit?: string; passthrough?: string[] } = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; output: string }> {
  const repo = join(base, 'layers', name);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(repo, path, '..'), { recursive: true });
    await writeFile(join(repo, path), text);
  }
  const document = {
    inventory: {
      all: {
        children: {
          cfs_image: { hosts: { [IMAGE]: {} }, vars: { ansible_connection: 'community.general.chroot', ansible_python_interpreter: '/usr/bin/python3', cray_cfs_image: true } },
          Compute: { hosts: { [IMAGE]: {} } },
        },
      },
    },
    ansible: { limit: ansible.limit ?? IMAGE, verbosity: 0, passthrough: ansible.passthrough ?? [] },
  };
  const inventory = join(inventoryDir, 'inventory.yaml');
  await writeInventory(inventory, document, new Map([[IMAGE, root]]));
  const args = ansiblePlaybookArgs({ inventory, limit: document.ansible.limit, verbosity: 0, passthrough: document.ansible.passthrough, playbook: 'site.yml' });
  return new Promise((resolve) => {
    execFile('ansible-playbook', args, { cwd: repo, env: ansibleEnvironment(layout, join(repo, 'roles'), env), maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

/** A marker path under /tmp, the same inside the image root and on the host. */
function marker(name: string): { path: string; inRoot: string } {
  const path = `/tmp/cfs-marker-${name}-${randomUUID()}`;
  return { path, inRoot: join(root, path) };
}

describe.skipIf(process.getuid?.() !== 0)('Ansible with the runner inputs (real ansible-playbook, a real image root)', () => {
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'cfs-ansible-inputs-'));
    layout = workspaceLayout(base);
    for (const dir of [layout.ansibleHome, layout.ansibleTemp, layout.tmp]) await mkdir(dir, { recursive: true });
    root = join(base, 'images', IMAGE);
    await buildSampleRoot(root);
    inventoryDir = join(base, 'inventory');
    await mkdir(inventoryDir);
  }, 120_000);

  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('runs every task inside the image root whatever group_vars, host_vars, play vars, the connection keyword or set_fact say', async () => {
    // Arrange: each route a repository has to turn the connection into `local`.
    const markers = { groupVars: marker('group-vars'), play: marker('play'), setFact: marker('set-fact'), delegate: marker('delegate') };
    const touch = (m: { path: string }) => `      ansible.builtin.copy:\n        content: "written"\n        dest: ${m.path}\n`;
    const files = {
      'group_vars/cfs_image.yml': 'ansible_connection: local\nansible_host: /\n',
      'group_vars/all.yml': 'ansible_connection: local\n',
      [`host_vars/${IMAGE}.yml`]: 'ansible_connection: local\nansible_host: /\nansible_chroot_exe: /bin/false\n',
      'site.yml': [
        '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - name: with repository group_vars and host_vars\n',
        touch(markers.groupVars),
        '- hosts: cfs_image\n  gather_facts: false\n  connection: local\n  vars:\n    ansible_connection: local\n    ansible_host: /\n  tasks:\n    - name: with play vars and the connection keyword\n',
        touch(markers.play),
        '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - ansible.builtin.set_fact:\n        ansible_connection: local\n        ansible_host: /\n    - name: after set_fact\n',
        touch(markers.setFact),
        '    - name: delegated to localhost\n      delegate_to: localhost\n',
        touch(markers.delegate),
      ].join(''),
    };

    // Act
    const run = await runLayer('connection', files);

    // Assert
    expect(run.code, run.output).toBe(0);
    for (const [name, m] of Object.entries(markers)) {
      expect(existsSync(m.inRoot), `${name} inside the root`).toBe(true);
      expect(existsSync(m.path), `${name} on the host`).toBe(false);
    }
  });

  it('fails a play aimed at localhost instead of running it on the host', async () => {
    // Arrange
    const m = marker('localhost-play');
    const files = { 'site.yml': `- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.copy:\n        content: "written"\n        dest: ${m.path}\n` };

    // Act
    const run = await runLayer('localhost-play', files, { limit: `${IMAGE},localhost` });

    // Assert: localhost has no image root, so its connection (remote_addr) cannot be made.
    expect(run.code, run.output).not.toBe(0);
    expect(run.output).toMatch(/fatal: \[localhost\]: FAILED! => .*'remote_addr' has an invalid value.*no attribute 'localhost'/);
    expect(existsSync(m.path)).toBe(false);
    expect(existsSync(m.inRoot)).toBe(false);
  });

  it('hands passthrough extra vars to tasks as literal text: a lookup in a value runs nothing', async () => {
    // Arrange
    const pwned = marker('pwned');
    const lookup = `{{ lookup('pipe', 'touch ${pwned.path} ${pwned.inRoot}; id -u') }}`;
    const out = marker('values');
    const passthrough = [
      '--extra-vars', JSON.stringify({ from_json: lookup, nested: { list: [lookup, 7] }, count: 3 }),
      '--extra-vars', `from_kv="${lookup}" plain=word`,
      '--extra-vars', `{from_yaml: "${lookup.replace(/"/g, '\\"')}", flag: yes}`,
    ];
    const files = {
      'site.yml': [
        '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - ansible.builtin.copy:\n',
        `        dest: ${out.path}\n`,
        '        content: "{{ {\'json\': from_json, \'nested\': nested.list[0], \'kv\': from_kv, \'yaml\': from_yaml, \'plain\': plain, \'sum\': count + nested.list[1], \'flag\': flag} | to_json }}"\n',
      ].join(''),
    };

    // Act
    const run = await runLayer('passthrough', files, { passthrough });

    // Assert
    expect(run.code, run.output).toBe(0);
    expect(JSON.parse(await readFile(out.inRoot, 'utf8'))).toEqual({ json: lookup, nested: lookup, kv: lookup, yaml: lookup, plain: 'word', sum: 10, flag: true });
    expect(existsSync(pwned.path)).toBe(false);
    expect(existsSync(pwned.inRoot)).toBe(false);
  });

  it("keeps the server's environment from ansible-playbook, the processes it starts and the image root", async () => {
    // Arrange: canaries in the environment the runner would pass on, as the server's would be.
    const canary = `canary-${randomUUID()}`;
    const env = { ...process.env, CFS_API_TOKEN: canary, AWS_SECRET_ACCESS_KEY: canary, ECS_CONTAINER_METADATA_URI_V4: canary, SOME_SERVER_SETTING: canary, https_proxy: 'http://proxy.example:3128', LC_ALL: 'C.UTF-8' };
    const inRoot = marker('env-in-root');
    const controller = marker('env-controller');
    const files = {
      'site.yml': [
        '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n',
        `    - ansible.builtin.shell: "env > ${inRoot.path}"\n`,
        '    - ansible.builtin.copy:\n',
        `        dest: ${controller.path}\n`,
        // The worker's own /proc/self/environ (a lookup runs in ansible-playbook's process) and a child's env.
        `        content: "{{ lookup('file', '/proc/self/environ') }}\\n{{ lookup('pipe', 'env') }}"\n`,
      ].join(''),
    };

    // Act
    const run = await runLayer('environment', files, {}, env);

    // Assert
    expect(run.code, run.output).toBe(0);
    const seenInRoot = await readFile(inRoot.inRoot, 'utf8');
    const seenByController = (await readFile(controller.inRoot, 'utf8')).replace(/\0/g, '\n');
    for (const seen of [seenInRoot, seenByController]) {
      expect(seen).not.toContain(canary);
      expect(seen).not.toMatch(/^(CFS_|AWS_|ECS_)/m);
      expect(seen).toContain('https_proxy=http://proxy.example:3128');
      expect(seen).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    }
    // Ansible sets the modules' locale to C itself; the controller keeps the runner's.
    expect(seenByController).toContain('LC_ALL=C.UTF-8');
    expect(seenByController).toContain(`ANSIBLE_HOME=${layout.ansibleHome}`);
  });
});
