import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  diffPackages,
  findRpmDatabase,
  packageChanges,
  parseDpkgStatus,
  parseRpmQuery,
  readDpkgPackages,
  readRpmPackages,
  savePackageDatabases,
} from '../../functions/runner/change-sets/package-diff.ts';
import { ProcessGroups } from '../../functions/runner/process-groups.ts';
import { tempDirPerTest } from '../helpers/temp-dir.ts';

describe('parseDpkgStatus', () => {
  it('keeps the installed packages, held or selected for removal too, and skips continuation lines', () => {
    // Arrange
    const text = [
      'Package: bash',
      'Status: install ok installed',
      'Architecture: amd64',
      'Version: 5.2.15-2+b7',
      'Description: GNU Bourne Again SHell',
      ' Version: 0 (a description line, not a field)',
      '',
      'Package: held',
      'Status: hold ok installed',
      'Architecture: all',
      'Version: 1.0',
      '',
      'Package: leaving',
      'Status: deinstall ok installed',
      'Architecture: amd64',
      'Version: 2',
      '',
      'Package: purged-but-configured',
      'Status: deinstall ok config-files',
      'Architecture: amd64',
      'Version: 3',
      '',
      'Package: half',
      'Status: install reinstreq half-installed',
      'Architecture: amd64',
      'Version: 4',
    ].join('\n');

    // Act
    const installed = parseDpkgStatus(text);

    // Assert
    expect(installed).toEqual([
      { name: 'bash', arch: 'amd64', version: '5.2.15-2+b7' },
      { name: 'held', arch: 'all', version: '1.0' },
      { name: 'leaving', arch: 'amd64', version: '2' },
    ]);
  });
});

describe('parseRpmQuery', () => {
  it('shows the epoch only when it is set, and skips lines that are not three fields', () => {
    // Arrange
    const text = ['bash\t(none):5.1.8-9.el9\tx86_64', 'shadow-utils\t2:4.9-9.el9\tx86_64', 'gpg-pubkey\t(none):fd431d51-4ae0493b\t(none)', 'garbage', ''].join('\n');

    // Act
    const installed = parseRpmQuery(text);

    // Assert
    expect(installed).toEqual([
      { name: 'bash', arch: 'x86_64', version: '5.1.8-9.el9' },
      { name: 'shadow-utils', arch: 'x86_64', version: '2:4.9-9.el9' },
      { name: 'gpg-pubkey', arch: '(none)', version: 'fd431d51-4ae0493b' },
    ]);
  });
});

describe('diffPackages', () => {
  it('names a package with its architecture only when that name is installed for more than one', () => {
    // Arrange
    const before = [
      { name: 'libc6', arch: 'amd64', version: '2.36-9' },
      { name: 'bash', arch: 'amd64', version: '5.2-1' },
      { name: 'gone', arch: 'all', version: '1' },
    ];
    const after = [
      { name: 'libc6', arch: 'amd64', version: '2.36-10' },
      { name: 'libc6', arch: 'i386', version: '2.36-10' },
      { name: 'bash', arch: 'amd64', version: '5.1-1' },
      { name: 'new', arch: 'all', version: '0.1' },
    ];

    // Act
    const changes = diffPackages(before, after, ':');

    // Assert
    expect(changes).toEqual([
      { name: 'bash', old: '5.2-1', new: '5.1-1' },
      { name: 'gone', old: '1', new: null },
      { name: 'libc6:amd64', old: '2.36-9', new: '2.36-10' },
      { name: 'libc6:i386', old: null, new: '2.36-10' },
      { name: 'new', old: null, new: '0.1' },
    ]);
  });

  it("pairs one version gone with one come, and lists rpm's several versions of one name (kernels) one by one otherwise", () => {
    // Arrange
    const kernel = (version: string) => ({ name: 'kernel', arch: 'x86_64', version });
    const glibc = (arch: string) => ({ name: 'glibc', arch, version: '2.34-1' });

    // Act
    const installedBeside = diffPackages([kernel('5.14-1')], [kernel('5.14-1'), kernel('5.14-2')], '.');
    const rotated = diffPackages([kernel('5.14-1'), kernel('5.14-2')], [kernel('5.14-2'), kernel('5.14-3')], '.');
    const twoForOne = diffPackages([kernel('5.14-1')], [kernel('5.14-2'), kernel('5.14-3')], '.');
    const multilib = diffPackages([glibc('x86_64')], [glibc('x86_64'), glibc('i686')], '.');
    const unchanged = diffPackages([kernel('5.14-1')], [kernel('5.14-1')], '.');

    // Assert
    expect(installedBeside).toEqual([{ name: 'kernel', old: null, new: '5.14-2' }]);
    expect(rotated).toEqual([{ name: 'kernel', old: '5.14-1', new: '5.14-3' }]);
    expect(twoForOne).toEqual([
      { name: 'kernel', old: null, new: '5.14-2' },
      { name: 'kernel', old: null, new: '5.14-3' },
      { name: 'kernel', old: '5.14-1', new: null },
    ]);
    expect(multilib).toEqual([{ name: 'glibc.i686', old: null, new: '2.34-1' }]);
    expect(unchanged).toEqual([]);
  });
});

describe('package databases in an image root', () => {
  const tempDir = tempDirPerTest('cfs-package-diff-');
  const groups = new ProcessGroups();

  /** Builds a tiny noarch rpm with rpmbuild and installs it into the database of `root` (var/lib/rpm). */
  function installRpm(dir: string, root: string, name: string, version: string): void {
    const spec = join(dir, `${name}.spec`);
    const header = [`Name: ${name}`, `Version: ${version}`, 'Release: 1', 'Summary: probe', 'License: MIT', 'BuildArch: noarch', '%description', 'probe', '%files'];
    execFileSync('sh', ['-c', `printf '%s\\n' "$@" > ${spec}`, 'sh', ...header]);
    execFileSync('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${join(dir, 'rpmbuild')}`, spec], { stdio: 'ignore' });
    const rpm = join(dir, 'rpmbuild/RPMS/noarch', `${name}-${version}-1.noarch.rpm`);
    execFileSync('rpm', ['--root', root, '--dbpath', '/var/lib/rpm', '--nodeps', '--justdb', '-i', rpm], { stdio: 'ignore' });
  }

  it('reads no database through a link that leaves the root, nor a database file that is a link', async () => {
    // Arrange: the host paths the links name hold a status file and an rpm database
    const dir = tempDir();
    const [root, outside, saved] = [join(dir, 'root'), join(dir, 'outside'), join(dir, 'saved')];
    await mkdir(join(outside, 'rpm'), { recursive: true });
    await writeFile(join(outside, 'status'), 'Package: host-secret\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n');
    installRpm(dir, outside, 'host-secret', '1.0');
    await mkdir(join(root, 'var/lib/dpkg'), { recursive: true });
    await symlink(join(outside, 'status'), join(root, 'var/lib/dpkg/status'));
    await symlink(join(outside, 'var/lib/rpm'), join(root, 'var/lib/rpm'));
    await mkdir(join(root, 'usr/lib/sysimage/rpm'), { recursive: true });
    await symlink(join(outside, 'var/lib/rpm/rpmdb.sqlite'), join(root, 'usr/lib/sysimage/rpm/rpmdb.sqlite'));

    // Act
    const dpkg = await readDpkgPackages(root);
    const rpmDir = await findRpmDatabase(root);
    await savePackageDatabases(root, saved);
    const rpm = await readRpmPackages(root, { scratch: dir, label: 'copy', groups }).catch((error: unknown) => error);

    // Assert: the sysimage directory names a database file, but that file is a link: its copy is empty of it, and rpm is never asked
    expect(dpkg).toBeUndefined();
    expect(rpmDir).toBe(join(root, 'usr/lib/sysimage/rpm'));
    expect(existsSync(join(saved, 'var/lib/dpkg/status'))).toBe(false);
    expect(await readdir(join(saved, 'var/lib/rpm'))).toEqual([]);
    expect(rpm).toBeInstanceOf(Error);
    expect((rpm as Error).message).toMatch(/holds no database file that is a regular file/);
  });

  it('finds the rpm database where /var/lib/rpm links to /usr/lib/sysimage/rpm, and queries it without a user namespace', async () => {
    // Arrange: the Fedora layout, made with a real database
    const dir = tempDir();
    const root = join(dir, 'root');
    installRpm(dir, root, 'cfs-probe', '1.0');
    await mkdir(join(root, 'usr/lib/sysimage'), { recursive: true });
    execFileSync('mv', [join(root, 'var/lib/rpm'), join(root, 'usr/lib/sysimage/rpm')]);
    await symlink('../../usr/lib/sysimage/rpm', join(root, 'var/lib/rpm'));

    // Act
    const found = await findRpmDatabase(root);
    const installed = await readRpmPackages(root, { scratch: dir, label: 'copy', groups });

    // Assert
    expect(found).toBe(join(root, 'usr/lib/sysimage/rpm'));
    expect(installed).toEqual([{ name: 'cfs-probe', arch: 'noarch', version: '1.0-1' }]);
  });

  it("refuses a database in a format the host's rpm cannot read instead of listing no packages (SUSE's ndb on Debian's rpm)", async () => {
    // Arrange: rpm would create an empty sqlite database beside Packages.db and list nothing
    const dir = tempDir();
    const root = join(dir, 'root');
    await mkdir(join(root, 'usr/lib/sysimage/rpm'), { recursive: true });
    await writeFile(join(root, 'usr/lib/sysimage/rpm/Packages.db'), 'RpmP');
    const readsNdb = execFileSync('rpm', ['--showrc'], { encoding: 'utf8' }).match(/^available backends\s*:(.*)$/m)![1]!.split(/\s+/).includes('ndb');

    // Act
    const result = await readRpmPackages(root, { scratch: dir, label: 'copy', groups }).catch((error: unknown) => error);

    // Assert
    expect(readsNdb).toBe(false);
    expect((result as Error).message).toMatch(/is in the ndb format \(Packages\.db\), which this host's rpm cannot read \(it reads sqlite, bdb_ro/);
  });

  it('gives no packages part when neither side has the database the layer touched, and lists everything as added when only the tree after has one', async () => {
    // Arrange
    const dir = tempDir();
    const [before, after] = [join(dir, 'before'), join(dir, 'after')];
    await mkdir(before);
    await mkdir(join(after, 'var/lib/dpkg'), { recursive: true });
    const touched = { dpkg: true, rpm: false };

    // Act
    const none = await packageChanges({ before, after, touched, scratch: dir, groups });
    await writeFile(join(after, 'var/lib/dpkg/status'), 'Package: first\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n');
    const first = await packageChanges({ before, after, touched, scratch: dir, groups });

    // Assert
    expect(none).toBeNull();
    expect(first).toEqual({ manager: 'dpkg', changes: [{ name: 'first', old: null, new: '1' }] });
  });
});
