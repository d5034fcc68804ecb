import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { changesReport, MAX_REPORTED_FILES } from '../../functions/runner/change-sets/changes-report.ts';
import { savePackageDatabases } from '../../functions/runner/change-sets/package-diff.ts';
import { diffToUpper, snapshotTree } from '../../functions/runner/change-sets/tree-compare.ts';
import { ProcessGroups } from '../../functions/runner/process-groups.ts';
import { rootIdMapping } from '../../functions/runner/user-namespace.ts';
import { FIXTURE_CACHE } from '../helpers/debian-root.ts';
import { tempDirPerTest } from '../helpers/temp-dir.ts';

const KEY = 'a'.repeat(64);
const sh = (cwd: string, script: string) => execFileSync('sh', ['-euc', script], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
const OVERLAY_OPTIONS = 'redirect_dir=off,metacopy=off,index=off';

/** A tree before a layer, made under `base` of the working directory. */
const BASE_TREE = `
  mkdir -p base/etc/dir-meta base/srv/gone/sub base/srv/opaque/oldsub base/srv/replace-dir base/srv/xattr-dir base/usr/share/doc
  echo old > base/etc/motd; echo keep > base/etc/keep; echo x > base/etc/chmod-me; echo x > base/etc/old-file
  echo a > base/srv/gone/a; echo c > base/srv/gone/sub/c
  echo 1 > base/srv/opaque/old1; echo 2 > base/srv/opaque/oldsub/old2; echo x > base/srv/replace-dir/x
  ln -s etc/motd base/link
`;

/**
 * What the layer does, run in the root: every kind of change a report tells apart. srv/opaque's
 * replacement is made beside it first, so it cannot get the old one's freed inode number (the
 * tree compare would then, rightly, record it entry by entry rather than as opaque).
 */
const LAYER_CHANGES = `
  echo new > etc/motd; echo x > etc/new-file; chmod 600 etc/chmod-me; chmod 700 etc/dir-meta; rm etc/old-file
  echo doc > usr/share/doc/readme
  rm -rf srv/gone
  mkdir srv/opaque.new; echo again > srv/opaque.new/old1; echo new > srv/opaque.new/new1; rm -rf srv/opaque; mv srv/opaque.new srv/opaque
  rm -rf srv/replace-dir; echo now-a-file > srv/replace-dir
  rm link; ln -s etc/keep link
  mkfifo srv/pipe; mknod srv/null c 1 3; echo ok > srv/café
`;

/** The files part of the report of LAYER_CHANGES on BASE_TREE, sorted. */
const EXPECTED_FILES = [
  { path: '/etc/chmod-me', change: 'modified', type: 'file' },
  { path: '/etc/dir-meta', change: 'modified', type: 'directory' },
  { path: '/etc/motd', change: 'modified', type: 'file' },
  { path: '/etc/new-file', change: 'added', type: 'file' },
  { path: '/etc/old-file', change: 'removed', type: 'file' },
  { path: '/link', change: 'modified', type: 'symlink' },
  { path: '/srv/café', change: 'added', type: 'file' },
  { path: '/srv/gone', change: 'removed', type: 'directory' },
  { path: '/srv/gone/a', change: 'removed', type: 'file' },
  { path: '/srv/gone/sub', change: 'removed', type: 'directory' },
  { path: '/srv/gone/sub/c', change: 'removed', type: 'file' },
  { path: '/srv/null', change: 'added', type: 'device' },
  { path: '/srv/opaque/new1', change: 'added', type: 'file' },
  { path: '/srv/opaque/old1', change: 'modified', type: 'file' },
  { path: '/srv/opaque/oldsub', change: 'removed', type: 'directory' },
  { path: '/srv/opaque/oldsub/old2', change: 'removed', type: 'file' },
  { path: '/srv/pipe', change: 'added', type: 'fifo' },
  { path: '/srv/replace-dir', change: 'modified', type: 'file' },
  { path: '/srv/replace-dir/x', change: 'removed', type: 'file' },
  { path: '/usr/share/doc/readme', change: 'added', type: 'file' },
];

/**
 * A layer run for real through overlayfs, as the runner's overlay path does: `base` is the tree
 * before, `script` runs in the merged tree (as host root), and what it changed stays in the
 * returned upper directory; `after` is a read-only overlay of the upper on the base. `done`
 * unmounts it.
 */
async function runLayer(dir: string, base: string, script: string): Promise<{ upper: string; after: string; done: () => void }> {
  const [upper, work, merged, after] = ['upper', 'work', 'merged', 'after'].map((name) => join(dir, name)) as [string, string, string, string];
  for (const d of [upper, work, merged, after]) await mkdir(d);
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${base},upperdir=${upper},workdir=${work},${OVERLAY_OPTIONS}`, merged]);
  try {
    sh(merged, script);
  } finally {
    execFileSync('umount', [merged]);
  }
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${upper}:${base},${OVERLAY_OPTIONS}`, after]);
  return { upper, after, done: () => execFileSync('umount', [after]) };
}

/** The Debian 12 fixture's dpkg status file when this machine has the fixture cached (test/helpers/debian-root.ts), else undefined. */
function fixtureDpkgStatus(): string | undefined {
  const fixtures = existsSync(FIXTURE_CACHE) ? readdirSync(FIXTURE_CACHE).filter((n) => n.startsWith('debian12-')) : [];
  for (const name of fixtures) {
    const rootfs = join(FIXTURE_CACHE, name, 'rootfs.squashfs');
    if (existsSync(join(FIXTURE_CACHE, name, 'fixture.json')) && existsSync(rootfs)) {
      return execFileSync('unsquashfs', ['-cat', rootfs, 'var/lib/dpkg/status'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    }
  }
  return undefined;
}

/** Real stanzas of Debian 12's status file (trimmed descriptions), for machines without the fixture. */
const SMALL_STATUS = `Package: bash
Essential: yes
Status: install ok installed
Priority: required
Section: shells
Installed-Size: 7163
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 5.2.15-2+b7
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: kmod
Status: install ok installed
Priority: important
Section: admin
Installed-Size: 271
Maintainer: Marco d'Itri <md@linux.it>
Architecture: amd64
Version: 30+20221128-1
Description: tools for managing Linux kernel modules
 This package contains a set of programs for loading, inserting, and
 removing kernel modules for Linux.

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12987
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u9
Description: GNU C Library: Shared libraries

Package: udev
Status: install ok installed
Priority: important
Section: admin
Installed-Size: 9396
Maintainer: Debian systemd Maintainers <pkg-systemd-maintainers@lists.alioth.debian.org>
Architecture: amd64
Source: systemd
Version: 252.33-1~deb12u1
Description: /dev/ and hotplug management daemon
`;

/** The stanza of `name` in a status file's text. */
function stanza(status: string, name: string): string {
  const found = status.split(/\n(?=Package: )/).find((s) => s.startsWith(`Package: ${name}\n`));
  if (!found) throw new Error(`no stanza for ${name}`);
  return found.trimEnd();
}

describe('changesReport', () => {
  const tempDir = tempDirPerTest('cfs-changes-');
  const groups = new ProcessGroups();

  it('lists what a layer added, modified and removed, with whiteouts and opaque directories, sorted, and nothing it only passed through', async () => {
    // Arrange
    const dir = tempDir();
    const base = join(dir, 'base');
    sh(dir, BASE_TREE);
    const layer = await runLayer(dir, base, `${LAYER_CHANGES}\nsetfattr -n user.color -v blue srv/xattr-dir`);

    // Act
    let report;
    try {
      report = await changesReport({ upper: layer.upper, before: base, after: layer.after, key: KEY, image_id: 'img-1', layer_index: 2, groups });
    } finally {
      layer.done();
    }

    // Assert
    expect(execFileSync('getfattr', ['--absolute-names', '-n', 'trusted.overlay.opaque', '--only-values', join(layer.upper, 'srv/opaque')], { encoding: 'utf8' })).toBe('y');
    expect(report).toEqual({
      key: KEY,
      image_id: 'img-1',
      layer_index: 2,
      files: [...EXPECTED_FILES, { path: '/srv/xattr-dir', change: 'modified', type: 'directory' }].sort((a, b) => (a.path < b.path ? -1 : 1)),
      files_truncated: false,
      packages: null,
    });
  });

  it('reports the same from the tree form: a snapshot before the layer, the tree after it, the upper diffToUpper made, the databases saved before', async () => {
    // Arrange: a plain tree changed in place, as on Fargate; its dpkg status loses kmod
    const dir = tempDir();
    const [base, upper, saved] = [join(dir, 'base'), join(dir, 'upper'), join(dir, 'saved')];
    sh(dir, BASE_TREE);
    await mkdir(join(base, 'var/lib/dpkg'), { recursive: true });
    await writeFile(join(base, 'var/lib/dpkg/status'), SMALL_STATUS);
    const snapshot = await snapshotTree(base);
    await savePackageDatabases(base, saved);
    sh(base, LAYER_CHANGES);
    await writeFile(join(base, 'var/lib/dpkg/status'), SMALL_STATUS.replace(`${stanza(SMALL_STATUS, 'kmod')}\n\n`, ''));
    await mkdir(upper);
    await diffToUpper({ root: base, before: snapshot, upper, groups });
    const common = { upper, before: base, after: base, beforeSnapshot: snapshot, key: KEY, image_id: 'img-1', layer_index: 0, groups };
    const logged: string[] = [];

    // Act
    const report = await changesReport({ ...common, beforePackages: saved });
    const unsaved = await changesReport({ ...common, log: (line) => logged.push(line) });
    // The marker file diffToUpper writes where it may not set trusted xattrs says the same as the xattr.
    execFileSync('setfattr', ['-x', 'trusted.overlay.opaque', join(upper, 'srv/opaque')]);
    await writeFile(join(upper, 'srv/opaque/.wh..wh..opq'), '');
    const marked = await changesReport({ ...common, beforePackages: saved });

    // Assert
    const files = [...EXPECTED_FILES, { path: '/var/lib/dpkg/status', change: 'modified', type: 'file' }];
    expect(report.files).toEqual(files);
    expect(report.packages).toEqual({ manager: 'dpkg', changes: [{ name: 'kmod', old: '30+20221128-1', new: null }] });
    expect(unsaved.files).toEqual(files);
    expect(unsaved.packages).toBeNull();
    expect(logged).toEqual([expect.stringMatching(/packages not listed: the package databases before the layer were not saved/)]);
    expect(marked.files).toEqual(files);
  });

  it('keeps the first paths in byte order up to the cap, however many arrive, and says the list is truncated', async () => {
    // Arrange: 40 new directories of 25 files (1,040 paths) against a cap of 100, so the list is cut back many times while it fills
    const dir = tempDir();
    const [base, upper] = [join(dir, 'base'), join(dir, 'upper')];
    await mkdir(base);
    const two = (n: number) => String(n).padStart(2, '0');
    for (let d = 39; d >= 0; d--) {
      await mkdir(join(upper, `d${two(d)}`), { recursive: true });
      for (let f = 24; f >= 0; f--) await writeFile(join(upper, `d${two(d)}`, `f${two(f)}`), '');
    }

    // Act
    const report = await changesReport({ upper, before: base, after: upper, key: KEY, image_id: 'img-1', layer_index: 0, groups, maxFiles: 100 });

    // Assert: d00 to d02 with their files (78 paths), then d03 and its first 21 files
    expect(MAX_REPORTED_FILES).toBe(100_000);
    expect(report.files_truncated).toBe(true);
    expect(report.files).toHaveLength(100);
    expect(report.files.slice(0, 2)).toEqual([
      { path: '/d00', change: 'added', type: 'directory' },
      { path: '/d00/f00', change: 'added', type: 'file' },
    ]);
    expect(report.files.at(-1)).toEqual({ path: '/d03/f20', change: 'added', type: 'file' });
    expect(report.files.map((f) => f.path)).toEqual(report.files.map((f) => f.path).sort());
  });

  it('says nothing is truncated at exactly the cap', async () => {
    // Arrange
    const dir = tempDir();
    const [base, upper] = [join(dir, 'base'), join(dir, 'upper')];
    await mkdir(base);
    await mkdir(upper);
    for (let f = 0; f < 10; f++) await writeFile(join(upper, `f${f}`), '');

    // Act
    const report = await changesReport({ upper, before: base, after: upper, key: KEY, image_id: 'img-1', layer_index: 0, groups, maxFiles: 10 });

    // Assert
    expect(report.files).toHaveLength(10);
    expect(report.files_truncated).toBe(false);
  });

  it('lists the dpkg packages a layer added, removed, upgraded and downgraded, from the status files before and after', async () => {
    // Arrange: the Debian 12 fixture's status file when it is cached here, else real stanzas of it
    const dir = tempDir();
    const base = join(dir, 'base');
    const status = fixtureDpkgStatus() ?? SMALL_STATUS;
    await mkdir(join(base, 'var/lib/dpkg'), { recursive: true });
    await writeFile(join(base, 'var/lib/dpkg/status'), status);
    const bash = stanza(status, 'bash');
    const udev = stanza(status, 'udev');
    const libc6 = stanza(status, 'libc6');
    const edited = status
      .replace(`${stanza(status, 'kmod')}\n`, '')
      .replace(bash, bash.replace(/^Version: .*$/m, 'Version: 9.9-1'))
      .replace(udev, udev.replace(/^Version: .*$/m, 'Version: 1.0-1'))
      .concat(`\n${libc6.replace('Architecture: amd64', 'Architecture: i386')}\n`)
      .concat('\nPackage: cfs-probe\nStatus: install ok installed\nArchitecture: all\nVersion: 2.0-1\nDescription: probe\n');
    await writeFile(join(dir, 'status.new'), edited);
    const layer = await runLayer(dir, base, `cp ${join(dir, 'status.new')} var/lib/dpkg/status.new && mv var/lib/dpkg/status.new var/lib/dpkg/status`);

    // Act
    let report;
    try {
      report = await changesReport({ upper: layer.upper, before: base, after: layer.after, key: KEY, image_id: 'img-1', layer_index: 1, groups });
    } finally {
      layer.done();
    }

    // Assert
    const version = (text: string) => /^Version: (.*)$/m.exec(text)![1]!;
    expect(report.files).toEqual([{ path: '/var/lib/dpkg/status', change: 'modified', type: 'file' }]);
    expect(report.packages).toEqual({
      manager: 'dpkg',
      changes: [
        { name: 'bash', old: version(bash), new: '9.9-1' },
        { name: 'cfs-probe', old: null, new: '2.0-1' },
        { name: 'kmod', old: version(stanza(status, 'kmod')), new: null },
        { name: 'libc6:i386', old: null, new: version(libc6) },
        { name: 'udev', old: version(udev), new: '1.0-1' },
      ],
    });
  });

  it('reads nothing outside the root when a layer turns var/lib/dpkg into a symlink pointing out of it', async () => {
    // Arrange: the host path the link names holds a status file the report must never read
    const dir = tempDir();
    const base = join(dir, 'base');
    const outside = join(dir, 'outside');
    await mkdir(join(base, 'var/lib/dpkg'), { recursive: true });
    await writeFile(join(base, 'var/lib/dpkg/status'), stanza(SMALL_STATUS, 'bash'));
    await mkdir(outside);
    await writeFile(join(outside, 'status'), 'Package: host-secret\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n');
    const layer = await runLayer(dir, base, `rm -rf var/lib/dpkg && ln -s ${outside} var/lib/dpkg`);

    // Act
    let report;
    try {
      report = await changesReport({ upper: layer.upper, before: base, after: layer.after, key: KEY, image_id: 'img-1', layer_index: 0, groups });
    } finally {
      layer.done();
    }

    // Assert: the link is a change; through it the image sees no status file, so bash is gone and no host package appears
    expect(report.files).toEqual([
      { path: '/var/lib/dpkg', change: 'modified', type: 'symlink' },
      { path: '/var/lib/dpkg/status', change: 'removed', type: 'file' },
    ]);
    expect(report.packages).toEqual({ manager: 'dpkg', changes: [{ name: 'bash', old: '5.2.15-2+b7', new: null }] });
  });

  it('lists the rpm packages a layer installed, upgraded and erased, queried as root of the user namespace', async () => {
    // Arrange: tiny noarch packages built here; the tree before has probe 1.0 and gone 1.0 in its database
    const dir = tempDir();
    const base = join(dir, 'base');
    const mapping = await rootIdMapping();
    if ('problem' in mapping) throw new Error(mapping.problem);
    const rpm = (name: string, version: string, epoch?: number) => {
      const spec = join(dir, `${name}-${version}.spec`);
      const header = [`Name: ${name}`, `Version: ${version}`, 'Release: 1', ...(epoch ? [`Epoch: ${epoch}`] : []), 'Summary: probe', 'License: MIT', 'BuildArch: noarch'];
      execFileSync('sh', ['-c', `printf '%s\\n' "$@" > ${spec}`, 'sh', ...header, '%description', 'probe', '%files']);
      execFileSync('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${join(dir, 'rpmbuild')}`, spec], { stdio: 'ignore' });
      return join(dir, 'rpmbuild/RPMS/noarch', `${name}-${version}-1.noarch.rpm`);
    };
    const [probe1, probe2, gone, fresh] = [rpm('cfs-probe', '1.0'), rpm('cfs-probe', '2.0'), rpm('cfs-gone', '1.0'), rpm('cfs-fresh', '0.5', 3)];
    await mkdir(base);
    const install = (root: string, ...args: string[]) => execFileSync('rpm', ['--root', root, '--dbpath', '/var/lib/rpm', '--nodeps', '--justdb', ...args], { stdio: 'ignore' });
    install(base, '-i', probe1, gone);
    const layer = await runLayer(dir, base, `rpm --root "$PWD" --dbpath /var/lib/rpm --nodeps --justdb -U ${probe2} && rpm --root "$PWD" --dbpath /var/lib/rpm --nodeps --justdb -e cfs-gone && rpm --root "$PWD" --dbpath /var/lib/rpm --nodeps --justdb -i ${fresh}`);

    // Act
    let report;
    try {
      // The test's directory is 0700 like a workspace: the copy goes where the namespace's root can reach it.
      report = await changesReport({ upper: layer.upper, before: base, after: layer.after, key: KEY, image_id: 'img-1', layer_index: 3, mapping, groups, scratch: dir });
    } finally {
      layer.done();
    }

    // Assert
    expect(report.files.map((f) => f.path)).toContain('/var/lib/rpm/rpmdb.sqlite');
    expect(report.packages).toEqual({
      manager: 'rpm',
      changes: [
        { name: 'cfs-fresh', old: null, new: '3:0.5-1' },
        { name: 'cfs-gone', old: '1.0-1', new: null },
        { name: 'cfs-probe', old: '1.0-1', new: '2.0-1' },
      ],
    });
  });

  it('leaves the packages part null, and says why, when the rpm database after the layer is one rpm cannot read', async () => {
    // Arrange: a layer that overwrites the database with garbage
    const dir = tempDir();
    const base = join(dir, 'base');
    await mkdir(join(base, 'var/lib/rpm'), { recursive: true });
    execFileSync('rpm', ['--root', base, '--dbpath', '/var/lib/rpm', '--initdb']);
    const layer = await runLayer(dir, base, 'rm -f var/lib/rpm/* && head -c 65536 /dev/urandom > var/lib/rpm/rpmdb.sqlite');
    const logged: string[] = [];

    // Act
    let report;
    try {
      report = await changesReport({ upper: layer.upper, before: base, after: layer.after, key: KEY, image_id: 'img-1', layer_index: 0, groups, log: (line) => logged.push(line) });
    } finally {
      layer.done();
    }

    // Assert
    expect(report.files).toContainEqual({ path: '/var/lib/rpm/rpmdb.sqlite', change: 'modified', type: 'file' });
    expect(report.packages).toBeNull();
    expect(logged).toEqual([expect.stringMatching(/^changes of layer 0 on image img-1: packages not listed: rpm exited with 1/)]);
  });
});
