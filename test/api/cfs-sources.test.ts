import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbConfigurationStore } from '../../functions/adapters/dynamodb/dynamodb-configuration-store.ts';
import { DynamoDbImageRegistry } from '../../functions/adapters/dynamodb/dynamodb-image-registry.ts';
import { DynamoDbOptionsStore } from '../../functions/adapters/dynamodb/dynamodb-options-store.ts';
import { DynamoDbSessionStore } from '../../functions/adapters/dynamodb/dynamodb-session-store.ts';
import { DynamoDbSourceStore } from '../../functions/adapters/dynamodb/dynamodb-source-store.ts';
import { startLocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { FsSourceSecretStore } from '../../functions/adapters/local/fs-source-secret-store.ts';
import { GitCliResolver } from '../../functions/adapters/local/git-cli-resolver.ts';
import { createApp } from '../../functions/api/app.ts';
import { optionDefaultsFrom } from '../../functions/core/options/workflow-settings.ts';
import { systemClock } from '../../functions/ports/clock.ts';
import type { AppPorts } from '../../functions/ports/index.ts';
import { DEFAULT_WORKFLOW_SETTINGS } from '../../functions/steps/step-ports.ts';
import { FakeWorkflow } from '../helpers/cfs-fakes.ts';
import { GitBasicAuthServer } from '../helpers/git-basic-auth-server.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { call } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';

const PASSWORD = 'pw-7f3c1e-never-shown';

describe('CFS v3 sources: credentials in the secret store, never in an answer', () => {
  let app: Hono;
  let ports: AppPorts;
  let secrets: FsSourceSecretStore;
  let close: () => Promise<void>;
  let dir: string;
  let server: GitBasicAuthServer;
  let repo: TempRepo;
  let repoUrl: string;
  let mainCommit: string;
  const secretFiles = () => readdirSync(secrets.directory).filter((f) => f.endsWith('.json')).sort();
  const create = (body: Record<string, unknown>) => call(app, 'POST', '/apis/cfs/v3/sources', body);

  beforeAll(async () => {
    const dynamo = await startLocalDynamo({ tableName: 'cfs-sources-test' });
    dir = mkdtempSync(join(tmpdir(), 'cfs-sources-api-'));
    secrets = new FsSourceSecretStore(join(dir, 'source-secrets'));
    ports = {
      sessions: new DynamoDbSessionStore(dynamo.documents, 'cfs-sources-test'),
      configurations: new DynamoDbConfigurationStore(dynamo.documents, 'cfs-sources-test'),
      images: new DynamoDbImageRegistry(dynamo.documents, 'cfs-sources-test'),
      artifacts: new FsArtifactStore(join(dir, 'store')),
      events: { publish: async () => undefined },
      workflow: new FakeWorkflow(),
      git: new GitCliResolver(),
      clock: systemClock,
      options: new DynamoDbOptionsStore(dynamo.documents, 'cfs-sources-test', optionDefaultsFrom(DEFAULT_WORKFLOW_SETTINGS)),
      sources: new DynamoDbSourceStore(dynamo.documents, 'cfs-sources-test'),
      sourceSecrets: secrets,
    };
    app = createApp(ports);
    server = new GitBasicAuthServer('cfs-reader', PASSWORD);
    await server.start();
    repo = makeTempRepo();
    mainCommit = repo.commit('main', 'site.yml', '- hosts: all\n  tasks: []\n');
    repoUrl = server.serve('layers', repo.dir);
    close = async () => {
      await dynamo.close();
      await server.close();
      repo.dispose();
      rmSync(dir, { recursive: true, force: true });
    };
  });
  afterAll(async () => close());

  it('creates a source whose answer names the secret but holds neither username nor password, valid against the spec', async () => {
    // Act
    const res = await create({ name: 'site-repo', description: 'site playbooks', clone_url: repoUrl, credentials: { username: 'cfs-reader', password: PASSWORD }, ca_cert: { configmap_name: 'site-ca', pem: server.caPem } });
    const got = await call(app, 'GET', '/apis/cfs/v3/sources/site-repo');
    const listed = await call(app, 'GET', '/apis/cfs/v3/sources');
    // Assert
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: 'site-repo', clone_url: repoUrl, credentials: { authentication_method: 'password', secret_name: expect.stringMatching(/^cfs-source-/) }, ca_cert: { configmap_name: 'site-ca' } });
    expect(await cfsResponseErrors('post', '/v3/sources', 201, res.body)).toBeUndefined();
    expect(got.status).toBe(200);
    expect(await cfsResponseErrors('get', '/v3/sources/{source_id}', 200, got.body)).toBeUndefined();
    expect(await cfsResponseErrors('get', '/v3/sources', 200, listed.body)).toBeUndefined();
    for (const text of [res.text, got.text, listed.text]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain('cfs-reader');
      expect(text).not.toContain('BEGIN CERTIFICATE');
    }
  });

  it('keeps the login in one owner-only file of an owner-only directory, named by the secret', async () => {
    // Arrange
    const { body } = await call(app, 'GET', '/apis/cfs/v3/sources/site-repo');
    const file = join(secrets.directory, `${body.credentials.secret_name}.json`);
    // Act
    const modes = await secrets.modes(body.credentials.secret_name);
    // Assert
    expect(modes).toEqual({ directory: 0o700, file: 0o600 });
    expect(statSync(file).uid).toBe(process.getuid!());
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ username: 'cfs-reader', password: PASSWORD });
  });

  it('refuses a second source of the same name with 409 and writes no second secret', async () => {
    // Arrange
    const before = secretFiles();
    // Act
    const res = await create({ name: 'site-repo', clone_url: repoUrl, credentials: { username: 'u', password: 'p' } });
    // Assert
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(await cfsResponseErrors('post', '/v3/sources', 409, res.body)).toBeUndefined();
    expect(secretFiles()).toEqual(before);
  });

  it.each([
    ['no credentials', { name: 'bad-1', clone_url: 'https://git.example/a.git' }, 'credentials'],
    ['an empty password', { name: 'bad-2', clone_url: 'https://git.example/a.git', credentials: { username: 'u', password: '' } }, 'credentials.password'],
    ['a login inside the clone URL', { name: 'bad-3', clone_url: 'https://u:p@git.example/a.git', credentials: { username: 'u', password: 'p' } }, 'clone_url'],
    ['an ssh clone URL', { name: 'bad-4', clone_url: 'ssh://git.example/a.git', credentials: { username: 'u', password: 'p' } }, 'clone_url'],
    ['an unknown field', { name: 'bad-5', clone_url: 'https://git.example/a.git', credentials: { username: 'u', password: 'p' }, token: 'x' }, 'token'],
    ['a CA configmap without the bundle', { name: 'bad-6', clone_url: 'https://git.example/a.git', credentials: { username: 'u', password: 'p' }, ca_cert: { configmap_name: 'ca' } }, 'ca_cert.pem'],
  ])('refuses a create with %s with 400 naming the field, storing nothing', async (_what, body, field) => {
    // Arrange
    const before = secretFiles();
    // Act
    const res = await create(body);
    const got = await call(app, 'GET', `/apis/cfs/v3/sources/${body.name}`);
    // Assert
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(new RegExp(`^${field.replace('.', '\\.')}`));
    expect(await cfsResponseErrors('post', '/v3/sources', 400, res.body)).toBeUndefined();
    expect(got.status).toBe(404);
    expect(secretFiles()).toEqual(before);
  });

  it('resolves a branch of a configuration layer that names the source with its login and CA bundle, and shows the source, not the URL', async () => {
    // Arrange
    const refusedBefore = server.refused;
    // Act
    const res = await call(app, 'PUT', '/apis/cfs/v3/configurations/with-source', { layers: [{ name: 'site', source: 'site-repo', playbook: 'site.yml', branch: 'main' }] });
    const plain = await call(app, 'PUT', '/apis/cfs/v3/configurations/without-login', { layers: [{ clone_url: repoUrl, playbook: 'site.yml', branch: 'main' }] });
    // Assert
    expect(res.body.detail).toBeUndefined();
    expect(res.status).toBe(200);
    expect(res.body.layers).toEqual([{ name: 'site', source: 'site-repo', playbook: 'site.yml', branch: 'main', commit: mainCommit }]);
    expect(await cfsResponseErrors('put', '/v3/configurations/{configuration_id}', 200, res.body)).toBeUndefined();
    expect(server.refused).toBeGreaterThan(refusedBefore);
    expect(plain.status).toBe(400);
    expect(plain.text).not.toContain(PASSWORD);
  });

  it('refuses a layer that names a missing source, or both a source and a clone URL, with 400', async () => {
    // Act
    const missing = await call(app, 'PUT', '/apis/cfs/v3/configurations/bad-source', { layers: [{ source: 'nope', playbook: 'site.yml', commit: mainCommit }] });
    const both = await call(app, 'PUT', '/apis/cfs/v3/configurations/bad-source', { layers: [{ source: 'site-repo', clone_url: repoUrl, playbook: 'site.yml', commit: mainCommit }] });
    // Assert
    expect(missing.status).toBe(400);
    expect(missing.body.detail).toBe("layers[0].source: source 'nope' does not exist");
    expect(both.status).toBe(400);
    expect(both.body.detail).toMatch(/^layers\[0\]: give either a clone_url or a source/);
  });

  it('lists only the sources configurations use with in_use=True, and the others with in_use=false', async () => {
    // Arrange
    await create({ name: 'spare-repo', clone_url: `${server.url}/spare.git`, credentials: { username: 'u', password: 'p' } });
    // Act
    const used = await call(app, 'GET', '/apis/cfs/v3/sources?in_use=True');
    const unused = await call(app, 'GET', '/apis/cfs/v3/sources?in_use=false');
    const paged = await call(app, 'GET', '/apis/cfs/v3/sources?limit=1');
    const rest = await call(app, 'GET', `/apis/cfs/v3/sources?limit=1&after_id=${paged.body.next?.after_id}`);
    // Assert
    expect(used.body.sources.map((s: { name: string }) => s.name)).toEqual(['site-repo']);
    expect(unused.body.sources.map((s: { name: string }) => s.name)).toEqual(['spare-repo']);
    expect(paged.body.sources.map((s: { name: string }) => s.name)).toEqual(['site-repo']);
    expect(paged.body.next).toMatchObject({ limit: 1, after_id: 'site-repo' });
    expect(rest.body.sources.map((s: { name: string }) => s.name)).toEqual(['spare-repo']);
  });

  it('refuses to delete a source a configuration uses, naming the configuration, and deletes it with its secret once unused', async () => {
    // Arrange
    const { body } = await call(app, 'GET', '/apis/cfs/v3/sources/site-repo');
    // Act
    const refused = await call(app, 'DELETE', '/apis/cfs/v3/sources/site-repo');
    await call(app, 'DELETE', '/apis/cfs/v3/configurations/with-source');
    const deleted = await call(app, 'DELETE', '/apis/cfs/v3/sources/site-repo');
    const after = await call(app, 'GET', '/apis/cfs/v3/sources/site-repo');
    // Assert
    expect(refused.status).toBe(400);
    expect(refused.body.detail).toBe("source 'site-repo' is used by configuration 'with-source'; change or delete them first");
    expect(await cfsResponseErrors('delete', '/v3/sources/{source_id}', 400, refused.body)).toBeUndefined();
    expect(deleted.status).toBe(204);
    expect(after.status).toBe(404);
    expect(secretFiles()).not.toContain(`${body.credentials.secret_name}.json`);
  });

  it('changes the password with PATCH, keeping the username, and refuses a new secret_name', async () => {
    // Arrange
    const { body } = await call(app, 'GET', '/apis/cfs/v3/sources/spare-repo');
    // Act
    const res = await call(app, 'PATCH', '/apis/cfs/v3/sources/spare-repo', { description: 'spare', credentials: { password: 'new-password' } });
    const renamed = await call(app, 'PATCH', '/apis/cfs/v3/sources/spare-repo', { credentials: { secret_name: 'other' } });
    // Assert
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'spare-repo', description: 'spare', credentials: { secret_name: body.credentials.secret_name } });
    expect(res.text).not.toContain('new-password');
    expect(await cfsResponseErrors('patch', '/v3/sources/{source_id}', 200, res.body)).toBeUndefined();
    expect(await secrets.get(body.credentials.secret_name)).toEqual({ username: 'u', password: 'new-password' });
    expect(renamed.status).toBe(400);
  });

  it('restores a source that names an existing secret (POST on its name) and refuses a name the store cannot hold', async () => {
    // Arrange
    await secrets.put('cfs-source-restored', { username: 'cfs-reader', password: PASSWORD });
    // Act
    const res = await call(app, 'POST', '/apis/cfs/v3/sources/restored-repo', { clone_url: repoUrl, credentials: { authentication_method: 'password', secret_name: 'cfs-source-restored' }, ca_cert: { configmap_name: 'ca', pem: server.caPem } });
    const bad = await call(app, 'POST', '/apis/cfs/v3/sources/bad-restore', { clone_url: repoUrl, credentials: { authentication_method: 'password', secret_name: '../../etc/passwd' } });
    const resolved = await call(app, 'PUT', '/apis/cfs/v3/configurations/restored', { layers: [{ source: 'restored-repo', playbook: 'site.yml', branch: 'main' }] });
    // Assert
    expect(res.status).toBe(201);
    expect(await cfsResponseErrors('post', '/v3/sources/{source_id}', 201, res.body)).toBeUndefined();
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/^credentials\.secret_name/);
    expect(resolved.body.layers[0].commit).toBe(mainCommit);
  });

  it('finds a source whose name is its clone URL (the default) by the URL-encoded name', async () => {
    // Arrange
    const url = `${server.url}/by-url.git`;
    // Act
    const res = await create({ clone_url: url, credentials: { username: 'u', password: 'p' } });
    const got = await call(app, 'GET', `/apis/cfs/v3/sources/${encodeURIComponent(url)}`);
    // Assert
    expect(res.body.name).toBe(url);
    expect(got.status).toBe(200);
    expect(got.body.clone_url).toBe(url);
  });

  it('never passes the password to git on its command line while resolving a branch', async () => {
    // Arrange: record every git argv by putting a logging wrapper first on PATH.
    const bin = mkdtempSync(join(tmpdir(), 'cfs-git-argv-'));
    const log = join(bin, 'argv.log');
    const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
    execFileSync('sh', ['-c', `printf '#!/bin/sh\\nprintf "%%s\\\\n" "$*" >> ${log}\\nenv >> ${log}\\nexec ${realGit} "$@"\\n' > ${bin}/git && chmod 755 ${bin}/git`]);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      // Act
      const res = await call(app, 'PATCH', '/apis/cfs/v3/configurations/restored');
      // Assert
      expect(res.status).toBe(200);
      const seen = readFileSync(log, 'utf8');
      expect(seen).toContain('ls-remote');
      expect(seen).not.toContain(PASSWORD);
    } finally {
      process.env.PATH = path;
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
