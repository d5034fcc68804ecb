import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { cfsBin } from '../cli/cli-harness.ts';
import { cliEnv } from '../helpers/api-token.ts';
import { embeddedRuntimeForFile } from '../helpers/e2e-runtime.ts';
import { GitBasicAuthServer } from '../helpers/git-basic-auth-server.ts';
import { callApi } from '../helpers/runtime-api.ts';
import { fileInImage } from '../helpers/stored-image.ts';

// Given to the playbook in two halves only, so the repository itself never holds the whole password.
const HALVES = ['pw-e2e', '5b1d9a0c7e'] as const;
const PASSWORD = HALVES.join('-');

/**
 * Runs in the layer's sandbox (ansible's `pipe` lookups run in the ansible-playbook process):
 * looks for the password in its environment, in every visible process's environment and argv,
 * in the clone's .git and on every visible filesystem (the host's read-only /usr and the
 * kernel's pseudo filesystems left out). A control file proves the search finds what is there.
 */
const PROBE = `#!/bin/sh
# The password goes only to a file that grep reads its pattern from (-f): in an argv, the search would find itself.
printf '%s-%s' "$1" "$2" > /tmp/control
D=$3
echo "env=$(env | grep -cFf /tmp/control)"
echo "proc=$(cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -cFf /tmp/control)"
echo "git=$(grep -rlsFf /tmp/control "$D/.git" | wc -l)"
echo "remote=$(grep -c 'url' "$D/.git/config")"
echo "fs=$(grep -rlsFf /tmp/control --exclude-dir=usr --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev / 2>/dev/null | tr '\\n' ' ')"
`;

const PLAYBOOK = `- hosts: cfs_image
  gather_facts: false
  tasks:
    - copy:
        dest: /etc/probe.txt
        content: "{{ lookup('pipe', 'sh ' + playbook_dir + '/probe.sh ${HALVES[0]} ${HALVES[1]} ' + playbook_dir) }}\\n"
`;

const e2e = embeddedRuntimeForFile('cfs-e2e-sources-');
const api = <T>(method: string, path: string, body?: unknown) => callApi<T>(e2e.runtime, method, path, body);

describe('a session whose layer names a CFS source with credentials', () => {
  let server: GitBasicAuthServer;
  beforeAll(async () => {
    server = new GitBasicAuthServer('cfs-reader', PASSWORD);
    await server.start();
  });
  afterAll(async () => server.close());

  it('clones with the source login outside the sandbox, and the layer finds it nowhere it can look', async () => {
    // Arrange
    const built = await cfsBin(cliEnv(e2e.runtime), 'images', 'build-sample', '--name', 'source-base', '--format', 'json');
    expect(built.code).toBe(0);
    const image = JSON.parse(built.out) as { id: string };
    const repo = e2e.repos.with({ 'probe.sh': PROBE, 'site.yml': PLAYBOOK });
    const url = server.serve('site', repo.repo.dir);
    const source = await api<{ credentials: { secret_name: string } }>('POST', '/apis/cfs/v3/sources', {
      name: 'site',
      clone_url: url,
      credentials: { username: 'cfs-reader', password: PASSWORD },
      ca_cert: { configmap_name: 'site-ca', pem: server.caPem },
    });
    expect(source.status).toBe(201);
    const configured = await api('PUT', '/apis/cfs/v3/configurations/with-source', { layers: [{ name: 'probe', source: 'site', playbook: 'site.yml', branch: 'main' }] });
    expect(configured.status).toBe(200);
    const authorizedBefore = server.authorized;
    // Act
    const created = await api('POST', '/apis/cfs/v3/sessions', {
      name: 'with-source',
      configuration_name: 'with-source',
      target: { definition: 'image', groups: [{ name: 'Compute', members: [image.id] }], image_map: [{ source_id: image.id, result_name: 'probed' }] },
    });
    let done: SessionRecord | undefined;
    for (const deadline = Date.now() + 180_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      done = (await api<SessionRecord>('GET', '/apis/cfs/v3/sessions/with-source')).body;
      if (done.status.session.status === 'complete') break;
    }
    // Assert
    expect(created.status).toBe(201);
    expect(done?.status.session.succeeded, JSON.stringify(done?.status)).toBe('true');
    expect(server.authorized).toBeGreaterThan(authorizedBefore);
    const result = (await api<{ link: { path: string } }>('GET', `/apis/ims/v3/images/${done!.status.artifacts[0]!.result_id}`)).body;
    const probe = fileInImage(e2e.runtime.dataDir, result, 'etc/probe.txt');
    expect(probe).toBe('env=0\nproc=0\ngit=0\nremote=0\nfs=/tmp/control\n');
    // The session's answers name the source, never its secret.
    const shown = JSON.stringify(done);
    expect(shown).toContain('"source":"site"');
    expect(shown).not.toContain(PASSWORD);
    // The runner's own log, and every run document, hold no password either.
    const logs = join(e2e.runtime.dataDir, 'work', 'runner-logs');
    for (const file of readdirSync(logs)) expect(readFileSync(join(logs, file), 'utf8')).not.toContain(PASSWORD);
    const secretFile = join(e2e.runtime.dataDir, 'source-secrets', `${source.body.credentials.secret_name}.json`);
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    const sessionsDir = join(e2e.runtime.dataDir, 'artifacts');
    const leaks = execFileSync('sh', ['-c', `grep -rlsF '${PASSWORD}' '${sessionsDir}' || true`], { encoding: 'utf8' });
    expect(leaks).toBe('');
  });
});
