import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, linkSync, openSync, writeSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { BIN, cfsBin, ensureBuilt, tempDataDir } from '../cli/cli-harness.ts';
import { bearer, cliEnv } from '../helpers/api-token.ts';

let data: ReturnType<typeof tempDataDir>;
let runtime: EmbeddedRuntime;
let env: Record<string, string>;
let root: string;

/** A root holding everything an image root holds that a careless packer loses. */
function makeTrickyRoot(dir: string): void {
  mkdirSync(join(dir, 'usr/bin'), { recursive: true });
  mkdirSync(join(dir, 'home/alice'), { recursive: true });
  mkdirSync(join(dir, 'dev'), { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  mkdirSync(join(dir, 'empty'), { recursive: true });
  chmodSync(join(dir, 'tmp'), 0o1777);
  writeFileSync(join(dir, 'home/alice/notes.txt'), 'owned by alice\n');
  chownSync(join(dir, 'home/alice/notes.txt'), 1234, 5678);
  chownSync(join(dir, 'home/alice'), 1234, 5678);
  chmodSync(join(dir, 'home/alice'), 0o750);
  writeFileSync(join(dir, 'usr/bin/su-like'), '#!/bin/sh\necho setuid\n');
  chmodSync(join(dir, 'usr/bin/su-like'), 0o4755);
  writeFileSync(join(dir, 'usr/bin/pinger'), Buffer.alloc(70_000, 7));
  chmodSync(join(dir, 'usr/bin/pinger'), 0o755);
  execFileSync('setcap', ['cap_net_raw+ep', join(dir, 'usr/bin/pinger')]);
  execFileSync('setfattr', ['-n', 'user.origin', '-v', 'test-root', join(dir, 'home/alice/notes.txt')]);
  linkSync(join(dir, 'usr/bin/pinger'), join(dir, 'usr/bin/pinger-hardlink'));
  symlinkSync('pinger', join(dir, 'usr/bin/ping'));
  symlinkSync('/usr/bin/su-like', join(dir, 'usr/bin/absolute-link'));
  symlinkSync('../nowhere', join(dir, 'usr/bin/dangling'));
  execFileSync('mknod', ['-m', '666', join(dir, 'dev/null'), 'c', '1', '3']);
  execFileSync('mkfifo', [join(dir, 'tmp/fifo')]);
}

/** Everything about a tree that must survive the round trip, by relative path. */
function describeTree(dir: string): Record<string, unknown> {
  const entries: Record<string, unknown> = {};
  const inodes = new Map<number, string>();
  const walk = (path: string, rel: string) => {
    const info = lstatSync(path);
    const entry: Record<string, unknown> = { mode: info.mode.toString(8), uid: info.uid, gid: info.gid };
    if (info.isSymbolicLink()) entry.target = readlinkSync(path);
    if (info.isCharacterDevice() || info.isBlockDevice()) entry.rdev = info.rdev;
    if (info.isFile()) {
      entry.sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
      if (info.nlink > 1) entry.hardlinkGroup = inodes.get(info.ino) ?? (inodes.set(info.ino, rel), rel);
    }
    entries[rel || '.'] = entry;
    if (info.isDirectory()) for (const name of readdirSync(path).sort()) walk(join(path, name), rel ? `${rel}/${name}` : name);
  };
  walk(dir, '');
  return entries;
}

/** Every extended attribute (security.* included), as getfattr dumps them relative to `dir`. */
function xattrs(dir: string): string {
  return execFileSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: dir }).toString();
}

function sha(file: string, algorithm: 'md5' | 'sha256'): string {
  return createHash(algorithm).update(readFileSync(file)).digest('hex');
}

async function stored(): Promise<{ ids: string[]; files: string[] }> {
  return {
    ids: (await runtime.ports.images.list()).map((i) => i.id).sort(),
    files: await runtime.ports.artifacts.list(''),
  };
}

beforeAll(async () => {
  ensureBuilt();
  data = tempDataDir();
  runtime = await startEmbeddedRuntime({ dataDir: join(data.dir, 'server'), port: 0 });
  env = cliEnv(runtime);
  root = join(data.dir, 'root');
  makeTrickyRoot(root);
});
afterAll(async () => {
  await runtime.close();
  data.dispose();
});

describe('cfs images import and download, through the bundled CLI and the embedded server', () => {
  let id: string;

  it('imports a root with other owners, setuid, symlinks, a hard link, a device node and a file capability', async () => {
    // Act
    const imported = await cfsBin(env, 'images', 'import', '--name', 'tricky', '--rootfs', root, '--format', 'json');
    // Assert
    expect(imported.code).toBe(0);
    id = JSON.parse(imported.out).id;
    expect(JSON.parse(imported.out)).toMatchObject({ name: 'tricky', arch: 'x86_64', link: { path: `s3://boot-images/${id}/manifest.json` } });
  });

  it('passes the CFS docs check: cfs images list --format json | jq -r \'any(.[]; .id == "ID")\' prints true', async () => {
    // Act
    const listed = await cfsBin(env, 'images', 'list', '--format', 'json');
    const printed = execFileSync('jq', ['-r', `any(.[]; .id == "${id}")`], { input: listed.out }).toString();
    const absent = execFileSync('jq', ['-r', 'any(.[]; .id == "00000000-0000-4000-8000-000000000000")'], { input: listed.out }).toString();
    // Assert
    expect(printed).toBe('true\n');
    expect(absent).toBe('false\n');
  });

  it('records md5 and sha256 in the manifest that match the stored bytes', async () => {
    // Act
    const manifest = (await (await fetch(`${runtime.url}/apis/ims/v3/images/${id}/manifest`, { headers: bearer(runtime) })).json()) as { artifacts: { link: { path: string }; md5: string; sha256: string; size: number }[] };
    const rootfs = manifest.artifacts[0]!;
    const file = (runtime.ports.artifacts as FsArtifactStore).pathOf(rootfs.link.path.replace('s3://', ''));
    // Assert
    expect(rootfs.md5).toBe(sha(file, 'md5'));
    expect(rootfs.sha256).toBe(sha(file, 'sha256'));
    expect(rootfs.size).toBe(lstatSync(file).size);
  });

  it('downloads a rootfs that unpacks identical in contents, modes, owners, links, devices and xattrs', async () => {
    // Arrange
    const output = join(data.dir, 'downloaded.squashfs');
    const unpacked = join(data.dir, 'unpacked');
    // Act
    const downloaded = await cfsBin(env, 'images', 'download', id, '-o', output);
    execFileSync('unsquashfs', ['-q', '-n', '-d', unpacked, output]);
    // Assert
    expect(downloaded.code).toBe(0);
    const original = describeTree(root);
    expect(describeTree(unpacked)).toEqual(original);
    expect(original['dev/null']).toMatchObject({ rdev: lstatSync('/dev/null').rdev });
    expect(original['usr/bin/su-like']).toMatchObject({ mode: '104755' });
    expect(original['home/alice/notes.txt']).toMatchObject({ uid: 1234, gid: 5678 });
    expect(original['usr/bin/pinger-hardlink']).toMatchObject({ hardlinkGroup: 'usr/bin/pinger' });
    expect(xattrs(unpacked)).toBe(xattrs(root));
    expect(xattrs(root)).toContain('security.capability=');
    expect(execFileSync('getcap', [join(unpacked, 'usr/bin/pinger')]).toString()).toContain('cap_net_raw=ep');
  });

  it('registers an existing squashfs that passes the whole-file check', async () => {
    // Arrange
    const file = join(data.dir, 'given.squashfs');
    execFileSync('mksquashfs', [root, file, '-noappend', '-quiet', '-no-progress']);
    // Act
    const imported = await cfsBin(env, 'images', 'import', '--name', 'given', '--squashfs', file, '--arch', 'aarch64', '--format', 'json');
    // Assert
    expect(imported.code).toBe(0);
    expect(JSON.parse(imported.out)).toMatchObject({ name: 'given', arch: 'aarch64' });
  });
});

describe('bad inputs are clear errors that leave nothing registered or stored', () => {
  /** A fresh squashfs of the test root and the bytes its filesystem uses (the rest is padding). */
  const packed = (name: string) => {
    const file = join(data.dir, name);
    execFileSync('mksquashfs', [root, file, '-noappend', '-quiet', '-no-progress']);
    const used = Number(/Filesystem size (\d+) bytes/.exec(execFileSync('unsquashfs', ['-s', file]).toString())?.[1]);
    return { file, used };
  };
  const corrupt = () => {
    const { file, used } = packed('corrupt.squashfs');
    // The inode, directory and id tables sit at the end of the used bytes.
    const bytes = readFileSync(file);
    bytes.fill(0x5a, used - 120, used - 80);
    writeFileSync(file, bytes);
    return file;
  };
  const truncated = () => {
    const { file, used } = packed('truncated.squashfs');
    truncateSync(file, Math.floor(used / 2));
    return file;
  };
  const notSquashfs = () => {
    const file = join(data.dir, 'not.squashfs');
    writeFileSync(file, 'hsqs but not really a filesystem');
    return file;
  };

  it.each([
    ['a corrupt squashfs', () => ['--name', 'bad', '--squashfs', corrupt()], /^Error: .*corrupt\.squashfs is corrupt: /],
    ['a truncated squashfs', () => ['--name', 'bad', '--squashfs', truncated()], /^Error: .*truncated\.squashfs is truncated: \d+ bytes, the filesystem needs \d+$/],
    ['a file that is not a squashfs', () => ['--name', 'bad', '--squashfs', notSquashfs()], /^Error: .*not\.squashfs is not a squashfs filesystem \(no squashfs superblock\)$/],
    ['a directory that does not exist', () => ['--name', 'bad', '--rootfs', join(data.dir, 'missing')], /^Error: --rootfs .*missing does not exist$/],
    ['an empty name', () => ['--name', '', '--rootfs', root], /^Error: --name: name must not be empty$/],
    ['an unknown arch', () => ['--name', 'bad', '--arch', 'riscv64', '--rootfs', root], /^Error: --arch: arch must be one of x86_64, aarch64, not 'riscv64'$/],
  ])('refuses %s', async (_what, args, message) => {
    // Arrange
    const before = await stored();
    // Act
    const result = await cfsBin(env, 'images', 'import', ...args());
    // Assert
    expect(result.code).not.toBe(0);
    const errors = result.err.split('\n').filter((line) => line.startsWith('Error:'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(message);
    expect(await stored()).toEqual(before);
  });
});

describe('interrupting an import', () => {
  /** A root with 256 MiB of random bytes: slow enough to pack and to upload that a signal lands mid-way. */
  const bigRoot = () => {
    const dir = join(data.dir, 'big-root');
    mkdirSync(dir, { recursive: true });
    const fd = openSync(join(dir, 'random.bin'), 'w');
    for (let i = 0; i < 256; i++) writeSync(fd, randomBytes(1 << 20));
    closeSync(fd);
    return dir;
  };

  it.each([
    ['while mksquashfs packs', 'packing'],
    ['while the rootfs uploads', 'uploading rootfs'],
  ])('exits 130 on SIGINT %s, leaving nothing registered or stored', async (_when, progressLine) => {
    // Arrange
    const rootDir = existsSync(join(data.dir, 'big-root')) ? join(data.dir, 'big-root') : bigRoot();
    const before = await stored();
    // Act
    const result = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, 'images', 'import', '--name', 'interrupted', '--rootfs', rootDir], { env: { ...process.env, ...env } });
      let err = '';
      let signalled = false;
      child.stderr.on('data', (chunk: Buffer) => {
        err += chunk.toString();
        if (!signalled && err.includes(progressLine)) {
          signalled = true;
          setTimeout(() => child.kill('SIGINT'), 100);
        }
      });
      child.on('close', (code) => resolve({ code, err }));
    });
    // Assert
    expect(result.code).toBe(130);
    expect(result.err.trim().split('\n').pop()).toBe('Error: interrupted; nothing was registered');
    expect(await stored()).toEqual(before);
  });
});
