import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bwrapArgs } from '../../functions/runner/bwrap-argv.ts';
import { deviceNodeOf, devicePseudoArgs, pseudoDefinition, unpackLosses } from '../../functions/runner/device-nodes.ts';
import { linksLeaving, openFileInRoot, resolveInRoot } from '../../functions/runner/root-paths.ts';
import { prepareRootMounts, shellQuote, undoRootMounts } from '../../functions/runner/sandbox.ts';
import { blockedDestinations, slirpArgv } from '../../functions/runner/sandbox-network.ts';
import { checkSandboxPrerequisites } from '../../functions/runner/sandbox-prerequisites.ts';
import { subordinateStart, userNamespaceArgv } from '../../functions/runner/user-namespace.ts';
import { tempDirPerTest } from '../helpers/temp-dir.ts';

describe('userNamespaceArgv', () => {
  it('maps the image ids 0-65535 onto the subordinate range and runs the command as its root, without forking', () => {
    // Arrange
    const mapping = { uid: 200000, gid: 300000 };

    // Act
    const [command, args] = userNamespaceArgv(mapping, 'unsquashfs', ['-s', 'x']);

    // Assert
    expect(command).toBe('unshare');
    expect(args).toEqual(['--user', '--map-users=200000,0,65536', '--map-groups=300000,0,65536', '--setuid', '0', '--setgid', '0', '--', 'unsquashfs', '-s', 'x']);
  });

  it("finds root's first range of 65536 ids, by name or uid, and ignores ranges too small", () => {
    // Arrange
    const text = ['alice:100000:65536', 'root:165536:1000', '0:300000:65536', 'root:400000:65536'].join('\n');

    // Act
    const start = subordinateStart(text, { name: 'root', uid: 0 });

    // Assert
    expect(start).toBe(300000);
    expect(subordinateStart('alice:100000:65536\n', { name: 'root', uid: 0 })).toBeUndefined();
  });
});

describe('checkSandboxPrerequisites', () => {
  const tempDir = tempDirPerTest('cfs-prereq-');

  it('names every missing tool and the subordinate range in one line with the exact commands that fix them', async () => {
    // Arrange
    const dir = tempDir();
    await writeFile(join(dir, 'subuid'), 'alice:100000:65536\n');
    await writeFile(join(dir, 'subgid'), 'root:200000:65536\n');

    // Act
    const result = await checkSandboxPrerequisites({ network: 'egress', path: dir, subordinateFiles: { subuid: join(dir, 'subuid'), subgid: join(dir, 'subgid') } });

    // Assert
    expect(result).toEqual({
      problem:
        `the runner's sandbox cannot start: missing bwrap, newuidmap, newgidmap, unshare, slirp4netns, nsenter, ip; root has no subordinate range of 65536 ids in ${join(dir, 'subuid')}. ` +
        'Fix: apt-get install bubblewrap uidmap util-linux slirp4netns iproute2 && usermod --add-subuids 200000-265535 --add-subgids 200000-265535 root',
    });
  });

  it('gives the mapping when this machine has everything', async () => {
    // Arrange
    const dir = tempDir();
    await writeFile(join(dir, 'subuid'), 'root:200000:65536\n');
    await writeFile(join(dir, 'subgid'), 'root:250000:65536\n');

    // Act
    const result = await checkSandboxPrerequisites({ network: 'none', path: process.env.PATH ?? '', subordinateFiles: { subuid: join(dir, 'subuid'), subgid: join(dir, 'subgid') } });

    // Assert
    expect(result).toEqual({ uid: 200000, gid: 250000 });
  });
});

describe('bwrapArgs', () => {
  it('builds the view from /usr, the listed /etc entries, the workspace binds and a proc and minimal dev in each root, with no user namespace of its own', () => {
    // Arrange
    const plan = {
      binds: [
        { source: '/run/v/ws/images', path: '/ws/images', readOnly: false },
        { source: '/run/v/ws/layers', path: '/ws/layers', readOnly: true },
      ],
      etc: ['passwd', 'ssl'],
      resolvConf: '/run/v/ws/sandbox-resolv.conf',
      roots: [{ root: '/ws/images/a', resolvTarget: '/ws/images/a/etc/resolv.conf' }, { root: '/ws/images/b' }],
      chdir: '/ws/layers/0',
      seccompFd: 3,
      infoFd: 4,
      blockFd: 5,
    };

    // Act
    const args = bwrapArgs(plan);

    // Assert
    const joined = args.join(' ');
    expect(joined).toContain('--ro-bind /usr /usr --symlink usr/bin /bin');
    expect(joined).toContain('--ro-bind /etc/passwd /etc/passwd --ro-bind /etc/ssl /etc/ssl --ro-bind /run/v/ws/sandbox-resolv.conf /etc/resolv.conf');
    expect(joined).toContain('--proc /proc --dev /dev --tmpfs /tmp --bind /run/v/ws/images /ws/images --ro-bind /run/v/ws/layers /ws/layers');
    expect(joined).toContain('--proc /ws/images/a/proc --dev /ws/images/a/dev --ro-bind /run/v/ws/sandbox-resolv.conf /ws/images/a/etc/resolv.conf --proc /ws/images/b/proc --dev /ws/images/b/dev --unshare-ipc');
    expect(args).not.toContain('--unshare-user');
    expect(args).not.toContain('--unshare-all');
    expect(joined).toContain('--unshare-pid --unshare-net');
    expect(joined).toContain('--die-with-parent --new-session --cap-drop ALL');
    expect(args).not.toContain('CAP_SYS_ADMIN');
    expect(args).toContain('CAP_SYS_CHROOT');
    expect(args.slice(-9)).toEqual(['--chdir', '/ws/layers/0', '--seccomp', '3', '--info-fd', '4', '--block-fd', '5', '--']);
    expect(joined).not.toMatch(/\/etc\/shadow|--bind \/ \/|\/root/);
  });
});

describe('sandbox network', () => {
  it('runs slirp4netns without the host loopback, and blocks link-local and the host addresses', () => {
    // Arrange
    const interfaces = {
      lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
      eth0: [
        { address: '192.0.2.2', family: 'IPv4', internal: false },
        { address: 'fe80::1', family: 'IPv6', internal: false },
      ],
    } as unknown as Parameters<typeof blockedDestinations>[0];

    // Act
    const blocked = blockedDestinations(interfaces);
    const [command, args] = slirpArgv(4242);

    // Assert
    expect(blocked).toEqual(['169.254.0.0/16', '192.0.2.2/32']);
    expect(command).toBe('slirp4netns');
    expect(args).toEqual(['--configure', '--mtu=65520', '--disable-host-loopback', '--ready-fd=3', '--exit-fd=4', '4242', 'tap0']);
  });
});

describe('device nodes', () => {
  it('reads character and block devices from an unsquashfs -lln listing and writes them as pseudo definitions', () => {
    // Arrange
    const lines = [
      'crw-rw-rw- 0/0                   1,  3 2026-12-06 13:40 squashfs-root/dev/null',
      'brw-rw---- 0/6                   8,  0 2026-12-06 13:40 squashfs-root/dev/sda',
      '-rw-r--r-- 0/0                       5 2026-12-06 13:40 squashfs-root/etc/hostname',
      'crw------- 0/0                   1,  5 2026-12-06 13:40 squashfs-root/dev/my dev',
    ];

    // Act
    const nodes = lines.map(deviceNodeOf);

    // Assert
    expect(nodes[2]).toBeUndefined();
    expect(nodes.filter((n) => n !== undefined).map((n) => pseudoDefinition(n!))).toEqual([
      '"dev/null" c 0666 0 0 1 3',
      '"dev/sda" b 0660 0 6 8 0',
      '"dev/my dev" c 0600 0 0 1 5',
    ]);
  });

  it('accepts only the errors a user namespace is expected to cause', () => {
    // Arrange
    const stderr = [
      'create_inode: failed to create character device images/a/dev/null, because Operation not permitted',
      'write_xattr: failed to write xattr trusted.overlay.opaque for file images/a/etc because Operation not permitted',
      'write_xattr: failed to write xattr security.ima for file images/a/bin/ls because Operation not permitted',
      'write_xattr: failed to write xattr user.x for file images/a/etc/y because Operation not permitted',
      'set_attributes: failed to change uid and gids on images/a/z, because Invalid argument',
    ].join('\n');

    // Act
    const losses = unpackLosses(stderr);

    // Assert
    expect(losses.devices).toEqual(['images/a/dev/null']);
    expect(losses.xattrs).toEqual(['trusted.overlay.opaque images/a/etc', 'security.ima images/a/bin/ls']);
    expect(losses.unexpected).toHaveLength(2);
  });

  it('writes a device back only where the customized root has nothing at its path and still has its directory', async () => {
    // Arrange
    const root = await mkdtemp(join(tmpdir(), 'cfs-devices-'));
    await mkdir(join(root, 'dev'));
    await writeFile(join(root, 'dev/console'), 'a layer put a file here');
    const node = (path: string) => ({ path, type: 'c' as const, mode: 0o600, uid: 0, gid: 0, major: 5, minor: 1 });

    // Act
    const result = await devicePseudoArgs(root, [node('dev/null'), node('dev/console'), node('gone/tty')]);
    await rm(root, { recursive: true });

    // Assert
    expect(result.args).toEqual(['-p', '"dev/null" c 0600 0 0 5 1']);
    expect(result.lost).toEqual(['/gone/tty (its directory is gone from the customized root)']);
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

describe('paths inside an image root', () => {
  const tempRoot = tempDirPerTest('cfs-sandbox-root-');

  /** This test's root holding `tree`: its directories (with parents), then its files with their text, then its links (path: target). */
  async function rootWith(tree: { dirs: string[]; files?: Record<string, string>; links?: Record<string, string> }): Promise<string> {
    const root = tempRoot();
    for (const dir of tree.dirs) await mkdir(join(root, dir), { recursive: true });
    for (const [path, text] of Object.entries(tree.files ?? {})) await writeFile(join(root, path), text);
    for (const [path, target] of Object.entries(tree.links ?? {})) await symlink(target, join(root, path));
    return root;
  }

  it('creates missing /proc, /dev and an empty resolv.conf, and removes exactly those again', async () => {
    // Arrange
    const root = await rootWith({ dirs: ['etc', 'proc'] });

    // Act
    const mounts = await prepareRootMounts(root, true);
    const during = (await readdir(root)).sort();
    await undoRootMounts(mounts);

    // Assert
    expect(during).toEqual(['dev', 'etc', 'proc']);
    expect(mounts.resolvTarget).toBe(join(root, 'etc/resolv.conf'));
    expect((await readdir(root)).sort()).toEqual(['etc', 'proc']);
    expect(await readdir(join(root, 'etc'))).toEqual([]);
  });

  it('binds resolv.conf onto the file a symlink names inside the root, even through an intermediate link to the host /etc', async () => {
    // Arrange
    const root = await rootWith({
      dirs: ['etc', 'run/resolve'],
      files: { 'run/resolve/stub.conf': 'nameserver 127.0.0.53\n' },
      links: { 'run/hostetc': '/etc', 'etc/resolv.conf': '/run/hostetc/../run/resolve/stub.conf' },
    });

    // Act
    const mounts = await prepareRootMounts(root, true);

    // Assert
    expect(mounts.resolvTarget).toBe(join(root, 'run/resolve/stub.conf'));
  });

  it('resolves every component inside the root: a link through an intermediate directory never reaches a host file', async () => {
    // Arrange
    const root = await rootWith({
      dirs: ['boot', 'etc'],
      files: { 'etc/shadow': 'image shadow\n' },
      links: { 'boot/x': '/etc', 'boot/vmlinuz': 'x/shadow', 'boot/escape': '../../../../../../etc/passwd', 'boot/loop1': 'loop2', 'boot/loop2': 'loop1' },
    });

    // Act
    const viaDirectory = await resolveInRoot(root, 'boot/vmlinuz');
    const upward = await resolveInRoot(root, join(root, 'boot/escape'));
    const loop = await resolveInRoot(root, 'boot/loop1');
    const opened = await openFileInRoot(root, 'boot/vmlinuz');
    const content = await opened?.handle.readFile('utf8');
    await opened?.handle.close();

    // Assert
    expect(viaDirectory).toBe(join(root, 'etc/shadow'));
    expect(upward).toBeUndefined();
    expect(loop).toBeUndefined();
    expect(content).toBe('image shadow\n');
  });

  it('lists the links of a checkout that lead outside it, directly or through another link, and not those that stay or dangle inside', async () => {
    // Arrange
    const root = await rootWith({
      dirs: ['roles/a'],
      files: { 'site.yml': '' },
      links: { 'roles/a/inside': '../../site.yml', absolute: '/etc/shadow', upward: '../outside', 'roles/here': '.', 'roles/through': 'here/../../x', dangling: 'missing' },
    });

    // Act
    const leaving = await linksLeaving(root);

    // Assert
    expect(leaving).toEqual(['absolute', 'roles/through', 'upward']);
  });
});
