import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { cfs, startServer, tempDataDir } from './cli-harness.ts';

describe('cfs sources', () => {
  let data: ReturnType<typeof tempDataDir>;
  let runtime: EmbeddedRuntime;
  const file = (name: string, text: string) => {
    const path = join(data.dir, name);
    writeFileSync(path, text);
    return path;
  };
  const secrets = () => readdirSync(join(runtime.dataDir, 'source-secrets')).filter((f) => f.endsWith('.json'));
  beforeAll(async () => {
    data = tempDataDir();
    ({ runtime } = await startServer(data.dir));
  });
  afterAll(async () => {
    await runtime.close();
    data.dispose();
  });

  it('creates a source with the password from a file, printing the secret name and never the password', async () => {
    // Arrange
    const password = file('password', 'cli-pass-41a7\n');
    // Act
    const res = await cfs(runtime, 'sources', 'create', '--name', 'site', '--clone-url', 'https://git.example/site.git', '--username', 'reader', '--password-file', password, '--format', 'json');
    const described = await cfs(runtime, 'sources', 'describe', 'site');
    // Assert
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.out)).toMatchObject({ name: 'site', clone_url: 'https://git.example/site.git', credentials: { secret_name: expect.stringMatching(/^cfs-source-/) } });
    expect(res.out + described.out).not.toContain('cli-pass-41a7');
    expect(described.out).toContain('Source site');
    const [secret] = secrets();
    expect(JSON.parse(readFileSync(join(runtime.dataDir, 'source-secrets', secret!), 'utf8'))).toEqual({ username: 'reader', password: 'cli-pass-41a7' });
  });

  it('refuses a create without a password source, with one Error line and nothing stored', async () => {
    // Arrange
    const before = secrets();
    // Act
    const res = await cfs(runtime, 'sources', 'create', '--name', 'nopass', '--clone-url', 'https://git.example/x.git', '--username', 'reader');
    // Assert
    expect(res.code).toBe(1);
    expect(res.err.trim()).toBe('Error: give the password with --password-file FILE or --password-stdin');
    expect(secrets()).toEqual(before);
  });

  it('updates the password from a file, lists unused sources and deletes one', async () => {
    // Arrange
    const password = file('password2', 'cli-pass-2\n');
    // Act
    const updated = await cfs(runtime, 'sources', 'update', 'site', '--password-file', password, '--description', 'site repo', '--format', 'json');
    const listed = await cfs(runtime, 'sources', 'list', '--in-use', 'false', '--format', 'json');
    const deleted = await cfs(runtime, 'sources', 'delete', 'site');
    // Assert
    expect(updated.code).toBe(0);
    expect(JSON.parse(updated.out).description).toBe('site repo');
    expect(updated.out).not.toContain('cli-pass-2');
    expect(JSON.parse(listed.out).sources.map((s: { name: string }) => s.name)).toEqual(['site']);
    expect(deleted.out.trim()).toBe('Deleted source site.');
    expect(secrets()).toEqual([]);
  });
});
