import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseMountInfo } from '../../functions/runner/mounts.ts';
import {
  prepareRootMounts,
  readOnlyMountPoints,
  resolveInRoot,
  sandboxedArgv,
  sandboxScript,
  shellQuote,
  undoRootMounts,
} from '../../functions/runner/sandbox.ts';

const MOUNTINFO = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,mode=755',
  '25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw',
  '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
  '29 26 0:26 / /dev/pts rw,relatime - devpts devpts rw',
  '30 27 0:40 / /srv/my\\040data rw - ext4 /dev/vdb rw',
  '31 27 0:41 / /var/cfs/ws rw - ext4 /dev/vdc rw',
  '32 31 0:42 / /var/cfs/ws/images/a/proc rw - proc proc rw',
  '33 26 0:26 / /dev/pts rw,relatime - devpts devpts rw',
].join('\n');

describe('readOnlyMountPoints', () => {
  it('lists every host mount once, except the workspace, what is under it and /dev/shm', () => {
    // Arrange
    const mounts = parseMountInfo(MOUNTINFO);

    // Act
    const points = readOnlyMountPoints(mounts, '/var/cfs/ws');

    // Assert
    expect(points).toEqual(['/proc', '/dev', '/', '/dev/pts', '/srv/my data']);
  });
});

describe('sandboxScript', () => {
  it('binds the workspace, mounts /dev/shm, makes the rest read-only, then binds proc, sys, dev and resolv.conf into each root', () => {
    // Arrange
    const plan = {
      workspace: '/var/cfs/ws',
      readOnly: ['/', "/srv/it's"],
      roots: [{ root: '/var/cfs/ws/images/a', resolvTarget: '/var/cfs/ws/images/a/etc/resolv.conf', created: [] }],
      hostResolvConf: '/etc/resolv.conf',
    };

    // Act
    const script = sandboxScript(plan);

    // Assert
    const mounts = script.split('\n').filter((l) => l.startsWith('mount '));
    expect(mounts.map((l) => l.split(' || ')[0])).toEqual([
      'mount --make-rprivate /',
      "mount --bind '/var/cfs/ws' '/var/cfs/ws'",
      'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm',
      "mount -o remount,bind,ro '/'",
      `mount -o remount,bind,ro '/srv/it'\\''s'`,
      "mount --rbind /proc '/var/cfs/ws/images/a/proc'",
      "mount --rbind /sys '/var/cfs/ws/images/a/sys'",
      "mount --rbind /dev '/var/cfs/ws/images/a/dev'",
      "mount --bind '/etc/resolv.conf' '/var/cfs/ws/images/a/etc/resolv.conf'",
    ]);
    expect(script.trimEnd().endsWith('"$@"')).toBe(true);
    expect(script).toMatch(/exit 125/);
  });

  it('is run by unshare in new mount and pid namespaces that die with it', () => {
    // Arrange
    const script = '/ws/sandbox.sh';

    // Act
    const [command, args] = sandboxedArgv(script, 'ansible-playbook', ['--', 'site.yml']);

    // Assert
    expect(command).toBe('unshare');
    expect(args).toEqual(['--mount', '--pid', '--fork', '--mount-proc', '--kill-child', '--', '/bin/sh', '/ws/sandbox.sh', 'ansible-playbook', '--', 'site.yml']);
  });
});

describe('shellQuote', () => {
  it('quotes so the shell reads the exact string back', () => {
    // Arrange
    const value = `a b'c$(d)`;

    // Act
    const quoted = shellQuote(value);

    // Assert
    expect(quoted).toBe(`'a b'\\''c$(d)'`);
  });
});

describe('image root mount points', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'cfs-sandbox-root-'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates missing /proc, /sys, /dev and an empty resolv.conf, and removes exactly those again', async () => {
    // Arrange
    await mkdir(join(root, 'etc'));
    await mkdir(join(root, 'proc'));

    // Act
    const mounts = await prepareRootMounts(root, true);
    const during = (await readdir(root)).sort();
    await undoRootMounts(mounts);

    // Assert
    expect(during).toEqual(['dev', 'etc', 'proc', 'sys']);
    expect(mounts.resolvTarget).toBe(join(root, 'etc/resolv.conf'));
    expect((await readdir(root)).sort()).toEqual(['etc', 'proc']);
    expect(await readdir(join(root, 'etc'))).toEqual([]);
  });

  it('binds resolv.conf onto the file a symlink names inside the root, and skips a dangling one', async () => {
    // Arrange
    await mkdir(join(root, 'etc'));
    await mkdir(join(root, 'run/resolve'), { recursive: true });
    await writeFile(join(root, 'run/resolve/stub.conf'), 'nameserver 127.0.0.53\n');
    await symlink('/run/resolve/stub.conf', join(root, 'etc/resolv.conf'));
    const dangling = await mkdtemp(join(tmpdir(), 'cfs-sandbox-root-'));
    await mkdir(join(dangling, 'etc'));
    await symlink('../run/systemd/resolve/stub-resolv.conf', join(dangling, 'etc/resolv.conf'));

    // Act
    const linked = await prepareRootMounts(root, true);
    const missing = await prepareRootMounts(dangling, true);
    await rm(dangling, { recursive: true });

    // Assert
    expect(linked.resolvTarget).toBe(join(root, 'run/resolve/stub.conf'));
    expect(missing.resolvTarget).toBeUndefined();
  });

  it('resolves absolute symlinks against the root and refuses links that leave it', async () => {
    // Arrange
    await mkdir(join(root, 'boot'));
    await writeFile(join(root, 'boot/vmlinuz-1'), 'k');
    await symlink('/boot/vmlinuz-1', join(root, 'boot/vmlinuz'));
    await symlink('../../../../../../etc/passwd', join(root, 'boot/escape'));

    // Act
    const inside = await resolveInRoot(root, join(root, 'boot/vmlinuz'));
    const outside = await resolveInRoot(root, join(root, 'boot/escape'));

    // Assert
    expect(inside).toBe(join(root, 'boot/vmlinuz-1'));
    expect(outside).toBeUndefined();
  });
});
