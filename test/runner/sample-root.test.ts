import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSampleRoot } from '../../functions/cli/images/sample-root.ts';

const run = promisify(execFile);

describe('buildSampleRoot', () => {
  let dir: string;
  let root: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cfs-sample-root-'));
    root = join(dir, 'root');
    await buildSampleRoot(root);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the system python3 and its standard library inside a chroot', async () => {
    // Arrange
    const script = 'import sys, json, hashlib, zipfile, subprocess; print(json.dumps([sys.executable, hashlib.sha256(b"a").hexdigest()[:8]]))';

    // Act
    const { stdout } = await run('chroot', [root, '/usr/bin/python3', '-c', script]);

    // Assert
    expect(JSON.parse(stdout)).toEqual(['/usr/bin/python3', 'ca978112']);
  });

  it('has /bin/sh, sleep and dd for the chroot connection', async () => {
    // Arrange
    const command = 'echo staged | dd of=/tmp/probe status=none && sleep 0 && cat /tmp/probe';

    // Act
    const { stdout } = await run('chroot', [root, '/bin/sh', '-c', command]);

    // Assert
    expect(stdout).toBe('staged\n');
  });

  it('has a world-writable sticky /tmp, dummy boot files and an os-release naming it a sample', async () => {
    // Arrange
    const tmp = await stat(join(root, 'tmp'));

    // Act
    const osRelease = await readFile(join(root, 'etc/os-release'), 'utf8');
    const kernel = await readFile(join(root, 'boot/vmlinuz-sample'), 'utf8');

    // Assert
    expect(tmp.mode & 0o7777).toBe(0o1777);
    expect(osRelease).toMatch(/sample/i);
    expect(kernel).toMatch(/dummy kernel/);
    await expect(stat(join(root, 'boot/initrd.img-sample'))).resolves.toBeTruthy();
  });

  it('stays small: no test suites, GUI toolkits or bytecode caches', async () => {
    // Arrange
    const python = '/usr/lib/python3.11';

    // Act
    const { stdout } = await run('du', ['-sm', root]);

    // Assert
    expect(Number(stdout.split('\t')[0])).toBeLessThan(40);
    await expect(stat(join(root, python, 'test'))).rejects.toThrow();
    await expect(stat(join(root, python, 'tkinter'))).rejects.toThrow();
    await expect(stat(join(root, python, '__pycache__'))).rejects.toThrow();
  });
});
