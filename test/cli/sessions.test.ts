import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { cfs, startServer, tempDataDir } from './cli-harness.ts';
import type { EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import type { FakeWorkflow } from '../helpers/cfs-fakes.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const IMG = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
const IMG2 = '0f1e2d3c-4b5a-4697-8a8b-9c0d1e2f3a4b';

describe('cfs sessions', () => {
  let data: ReturnType<typeof tempDataDir>;
  let runtime: EmbeddedRuntime;
  let workflow: FakeWorkflow;
  let repo: TempRepo;
  beforeAll(async () => {
    data = tempDataDir();
    ({ runtime, workflow } = await startServer(data.dir));
    repo = makeTempRepo();
    repo.commit('main', 'site.yml', '- hosts: all\n  tasks: []\n');
    const file = join(data.dir, 'config.json');
    writeFileSync(file, JSON.stringify({ layers: [{ name: 'base', clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] }));
    expect((await cfs(runtime, 'configurations', 'update', 'configurations-example', '--file', file)).code).toBe(0);
  });
  afterAll(async () => {
    await runtime.close();
    data.dispose();
    repo.dispose();
  });

  it('creates the CFS docs example and prints the API JSON', async () => {
    // Act
    const res = await cfs(runtime, 'sessions', 'create', '--name', 'example', '--configuration-name', 'configurations-example', '--target-definition', 'image', '--format', 'json',
      '--target-group', 'Application', IMG, '--target-group', 'Application_UAN', IMG, '--image-map', IMG, 'my-result');
    // Assert
    expect(res.code).toBe(0);
    const session = JSON.parse(res.out);
    expect(session.target).toEqual({
      definition: 'image',
      groups: [{ name: 'Application', members: [IMG] }, { name: 'Application_UAN', members: [IMG] }],
      image_map: [{ source_id: IMG, result_name: 'my-result' }],
    });
    expect(session.status.session.status).toBe('pending');
    expect(workflow.started).toContain('example');
  });

  it('takes --target-image-map as --image-map, comma-separated members, tags and every ansible option', async () => {
    // Act
    const res = await cfs(runtime, 'sessions', 'create', '--name', 'options', '--configuration-name', 'configurations-example', '--format', 'json',
      '--target-group', 'Compute', `${IMG},${IMG2}`, '--target-image-map', IMG2, 'second', '--configuration-limit', 'base',
      '--ansible-limit', IMG, '--ansible-verbosity', '2', '--ansible-passthrough', '-e motd=hi --tags x', '--tags', 'owner=ops,ticket=42', '--debug-on-failure');
    // Assert
    expect(res.err).toBe('');
    const s = JSON.parse(res.out);
    expect(s.target.groups).toEqual([{ name: 'Compute', members: [IMG, IMG2] }]);
    expect(s.target.image_map).toEqual([{ source_id: IMG2, result_name: 'second' }]);
    expect(s.configuration.limit).toBe('base');
    expect(s.ansible).toEqual({ config: 'cfs-default-ansible-cfg', limit: IMG, verbosity: 2, passthrough: '-e motd=hi --tags x' });
    expect(s.tags).toEqual({ owner: 'ops', ticket: '42' });
    expect(s.debug_on_failure).toBe(true);
  });

  it('describes a session as JSON, YAML and a human summary', async () => {
    // Act
    const json = await cfs(runtime, 'sessions', 'describe', 'example', '--format', 'json');
    const yaml = await cfs(runtime, 'sessions', 'describe', 'example', '--format', 'yaml');
    const human = await cfs(runtime, 'sessions', 'describe', 'example');
    // Assert
    expect(JSON.parse(json.out).name).toBe('example');
    expect(parseYaml(yaml.out)).toEqual(JSON.parse(json.out));
    expect(human.out).toContain('Session example: pending, succeeded none');
    expect(human.out).toContain(`Application: ${IMG}`);
    expect(human.out).toContain(`${IMG} -> my-result`);
    expect(human.out).toContain('base  ' + repo.url);
  });

  it('shows steps and the failure in the human summary when the workflow recorded them', async () => {
    // Arrange
    await runtime.ports.sessions.update('options', (s) => ({
      ...s,
      status: {
        ...s.status,
        session: { ...s.status.session, status: 'complete', succeeded: 'false', completion_time: '2026-11-26T11:00:00Z' },
        steps: [{ name: 'RunAnsible', state: 'failed', start_time: '2026-11-26T10:00:00Z', end_time: '2026-11-26T11:00:00Z', layer: 'base' }],
        failure: { step: 'RunAnsible', reason: 'layer base failed (exit code 2)', layer: 'base' },
      },
    }));
    // Act
    const human = await cfs(runtime, 'sessions', 'describe', 'options');
    // Assert
    expect(human.out).toContain('Session options: complete, succeeded false');
    expect(human.out).toContain('RunAnsible  failed  2026-11-26T10:00:00Z -> 2026-11-26T11:00:00Z  (layer base)');
    expect(human.out).toContain('failure        RunAnsible: layer base failed (exit code 2) (layer base)');
  });

  it('lists sessions as a table and as the API JSON', async () => {
    // Act
    const human = await cfs(runtime, 'sessions', 'list');
    const json = await cfs(runtime, 'sessions', 'list', '--format', 'json');
    // Assert
    expect(human.out.split('\n')[0]).toMatch(/^NAME\s+STATUS\s+SUCCEEDED\s+STARTED\s+CONFIGURATION$/);
    expect(human.out).toMatch(/example\s+pending\s+none/);
    expect(JSON.parse(json.out).sessions.map((s: { name: string }) => s.name)).toEqual(['example', 'options']);
  });

  it('prints one Error line and exits 2 on a duplicate name, as cray does', async () => {
    // Act
    const res = await cfs(runtime, 'sessions', 'create', '--name', 'example', '--configuration-name', 'configurations-example', '--target-group', 'Application', IMG);
    // Assert
    expect(res.code).toBe(2);
    expect(res.out).toBe('');
    expect(res.err).toBe("Error: Conflict: session 'example' already exists\n");
  });

  it.each([
    ['a bad name', ['--name', 'Bad_Name', '--target-group', 'A', IMG], 'name: must be a Kubernetes name'],
    ['a non-UUID member', ['--name', 'x1', '--target-group', 'A', 'nid000001'], "target.groups[0].members[0]: 'nid000001' is not an image ID"],
    ['a reserved group', ['--name', 'x2', '--target-group', 'all', IMG], "target.groups[0].name: 'all' is reserved"],
    ['no groups', ['--name', 'x3'], 'target.groups: an image session needs at least one group'],
  ])('answers %s with a 400 naming the field', async (_what, args, message) => {
    // Act
    const res = await cfs(runtime, 'sessions', 'create', '--configuration-name', 'configurations-example', ...args);
    // Assert
    expect(res.code).toBe(2);
    expect(res.err).toContain(`Error: Bad Request: ${message}`);
    expect(res.err.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a two-value option given one or three values, before calling the API', async () => {
    // Act
    const one = await cfs(runtime, 'sessions', 'create', '--name', 'y', '--configuration-name', 'c', '--target-group', 'A');
    const three = await cfs(runtime, 'sessions', 'create', '--name', 'y', '--configuration-name', 'c', '--image-map', IMG, 'r', 'extra');
    // Assert
    expect(one.code).toBe(1);
    expect(one.err).toBe('Error: --target-group takes exactly two values: NAME ID[,ID...] (got 1)\n');
    expect(three.err).toContain('--image-map takes exactly two values');
  });

  it('speaks v2 when asked, with v2 field names in the answer', async () => {
    // Act
    const created = await cfs(runtime, 'sessions', 'create', '--api-version', '2', '--format', 'json', '--name', 'v2-session', '--configuration-name', 'configurations-example', '--target-group', 'Compute', IMG);
    const described = await cfs(runtime, 'sessions', 'describe', 'v2-session', '--api-version', '2', '--format', 'json');
    // Assert
    expect(created.code).toBe(0);
    expect(JSON.parse(created.out).status.session).toHaveProperty('startTime');
    expect(JSON.parse(described.out)).not.toHaveProperty('debug_on_failure');
  });

  it('deletes a session, then reports it missing', async () => {
    // Act
    const deleted = await cfs(runtime, 'sessions', 'delete', 'v2-session');
    const missing = await cfs(runtime, 'sessions', 'describe', 'v2-session');
    // Assert
    expect(deleted.out).toBe('Deleted session v2-session.\n');
    expect(missing.code).toBe(2);
    expect(missing.err).toBe("Error: Not Found: session 'v2-session' does not exist\n");
  });

  it('sends --check (repeated), --boot-check, --boot-parameters and --boot-timeout as the validation, stored with its defaults', async () => {
    // Act
    const res = await cfs(runtime, 'sessions', 'create', '--name', 'proved', '--configuration-name', 'configurations-example', '--format', 'json', '--target-group', 'Compute', IMG,
      '--check', 'hello=/usr/bin/hello', '--check', 'ssh=systemctl is-enabled ssh', '--boot-check', 'Reached target .*Multi-User System',
      '--boot-parameters', 'root=live:/dev/vda rd.live.image console=ttyS0', '--boot-timeout', '120');
    const plain = await cfs(runtime, 'sessions', 'create', '--name', 'unproved', '--configuration-name', 'configurations-example', '--format', 'json', '--target-group', 'Compute', IMG);
    // Assert
    expect(res.err).toBe('');
    expect(JSON.parse(res.out).status.validation).toEqual({
      checks: [{ name: 'hello', command: '/usr/bin/hello' }, { name: 'ssh', command: 'systemctl is-enabled ssh' }],
      boot: { success_pattern: 'Reached target .*Multi-User System', kernel_parameters: 'root=live:/dev/vda rd.live.image console=ttyS0', timeout_seconds: 120, memory_mib: 1024, network: false },
    });
    expect(JSON.parse(plain.out).status).not.toHaveProperty('validation');
  });

  it('sends the validation through the v2 API too', async () => {
    // Act
    const res = await cfs(runtime, 'sessions', 'create', '--api-version', '2', '--name', 'proved-v2', '--configuration-name', 'configurations-example', '--format', 'json', '--target-group', 'Compute', IMG,
      '--check', 'hello=/usr/bin/hello');
    // Assert
    expect(res.err).toBe('');
    expect(JSON.parse(res.out).status.validation).toEqual({ checks: [{ name: 'hello', command: '/usr/bin/hello' }] });
  });

  it.each([
    ['a check without =', ['--check', 'hello'], "Error: --check: takes NAME=COMMAND, not 'hello'"],
    ['a repeated check name', ['--check', 'a=true', '--check', 'a=false'], "Error: --check: check 2's name: repeats the check name 'a'"],
    ['a pattern that does not compile', ['--boot-check', 'Reached (target'], 'Error: --boot-check: success_pattern: is not a valid regular expression'],
    ['a timeout that is not a number', ['--boot-check', 'up', '--boot-timeout', '5m'], "Error: --boot-timeout: takes a whole number of seconds, not '5m'"],
    ['a timeout out of range', ['--boot-check', 'up', '--boot-timeout', '5'], 'Error: --boot-timeout: timeout_seconds: must be from 10 to 3600'],
    ['boot parameters without a pattern', ['--boot-parameters', 'root=/dev/vda'], 'Error: --boot-parameters: needs --boot-check REGEX'],
  ])('refuses %s in one line naming the option, exit 1, creating nothing', async (_what, options, message) => {
    // Act
    const res = await cfs(runtime, 'sessions', 'create', '--name', 'never', '--configuration-name', 'configurations-example', '--target-group', 'Compute', IMG, ...options);
    // Assert
    expect(res.code).toBe(1);
    expect(res.out).toBe('');
    expect(res.err.startsWith(message)).toBe(true);
    expect(res.err.trim().split('\n')).toHaveLength(1);
    expect(await runtime.ports.sessions.get('never')).toBeUndefined();
    expect(workflow.started).not.toContain('never');
  });

  it('says in its help what each validation option does and the default kernel parameters', async () => {
    // Act
    const help = await cfs(runtime, 'sessions', 'create', '--help');
    // Assert
    const text = help.out.replace(/\s+/g, ' ');
    expect(text).toContain('--check <name=command> NAME=COMMAND: run COMMAND with /bin/sh in each customized root');
    expect(text).toContain('--boot-check <regex> boot each packed result in a VM');
    expect(text).toContain('(default: root=/dev/vda rootfstype=squashfs ro console=ttyS0)');
    expect(text).toContain('--boot-timeout <seconds> seconds the boot test waits for the pattern (10 to 3600, default 300)');
  });

  it('says where it looked when no server answers', async () => {
    // Act
    const res = await cfs('http://127.0.0.1:9', 'sessions', 'list');
    // Assert
    expect(res.code).toBe(1);
    expect(res.err).toContain('Error: cannot reach the CFS API at http://127.0.0.1:9');
  });
});
