import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { buildSampleRoot } from '../../functions/cli/images/sample-root.ts';
import { runCustomization } from '../../functions/runner/run-customization.ts';
import { parseRunDocument } from '../../functions/runner/run-document.ts';
import type { NetworkMode } from '../../functions/runner/sandbox-network.ts';
import { TempRepos } from '../helpers/git-repo.ts';
import { localRunDocumentFor } from '../helpers/run-document.ts';

/**
 * The namespace sandbox against the real tools (unshare, bwrap, slirp4netns, squashfs-tools,
 * Ansible): what an image holds survives stage + layer + pack, and a layer that escapes its
 * chroot (as any root process with CAP_SYS_CHROOT can) finds only the sandbox.
 */
const run = promisify(execFile);
const IMAGE = '7f0c2a4e-1b2c-4d3e-8f9a-0b1c2d3e4f50';

let base: string;
let store: FsArtifactStore;
let canary: string;
let listener: Server;
let port: number;
let rootfs: { key: string; size: number; sha256: string };
const repos = new TempRepos();

/** The host's own non-loopback IPv4 address, where the test's listener also answers. */
const hostAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i?.family === 'IPv4' && !i.internal)?.address;

/** Runs the script file it is given as root of the sandbox's own view: out of the chroot first (the classic escape). */
const ESCAPE = [
  'import os, sys',
  'script = open(sys.argv[1]).read()',
  "os.makedirs('/cfs-escape', exist_ok=True)",
  "os.chroot('/cfs-escape')",
  "os.chdir('../../../../../../../../../..')",
  "os.chroot('.')",
  "os.execv('/bin/sh', ['sh', '-c', script])",
  '',
].join('\n');

function probeScript(): string {
  const connect = (host: string, p: number) => `python3 -c "import socket; socket.create_connection(('${host}', ${p}), 3)"`;
  return [
    // Each probe prints `name: ALLOWED` or `name: refused`.
    'r() { n="$1"; shift; if "$@" >/dev/null 2>&1; then echo "$n: ALLOWED"; else echo "$n: refused"; fi; }',
    'r remount mount -o remount,rw /',
    'r mount-tmpfs mount -t tmpfs none /tmp',
    'r read-shadow cat /etc/shadow',
    'r kmsg test -c /dev/kmsg',
    'r disk sh -c "ls /dev/sda /dev/vda /dev/nvme0n1 2>/dev/null | grep ."',
    // Writes land, if anywhere, in the sandbox's own tmpfs: the test reads the host's canary afterwards.
    `echo pwned > ${canary} 2>/dev/null; echo pwned > /proc/1/root${canary} 2>/dev/null`,
    `r read-canary grep -q "host canary" ${canary}`,
    `r proc1-root grep -q "host canary" /proc/1/root${canary}`,
    'r proc1-root-shadow cat /proc/1/root/etc/shadow',
    `r loopback ${connect('127.0.0.1', port)}`,
    ...(hostAddress ? [`r host-address ${connect(hostAddress, port)}`] : []),
    `r metadata ${connect('169.254.169.254', 80)}`,
    `r ecs-credentials ${connect('169.254.170.2', 80)}`,
    'r unshare unshare --user true',
    `r ptrace python3 -c "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); sys.exit(0 if libc.ptrace(0, 0, 0, 0) == 0 else 1)"`,
    `r egress python3 -c "import urllib.request; urllib.request.urlopen('http://deb.debian.org/debian/dists/bookworm/Release', timeout=20).read(64)"`,
    'grep -E "^(NoNewPrivs|CapEff)" /proc/self/status',
    'echo "uid_map: $(cat /proc/self/uid_map | tr -s " ")"',
  ].join('\n');
}

/** The probing layer: a file written the ordinary way, /dev as the chroot sees it, then every probe from outside the chroot. */
function probeLayer() {
  return repos.with({
    'probe.sh': probeScript(),
    'escape.py': ESCAPE,
    'site.yml': [
      '- hosts: cfs_image',
      '  gather_facts: false',
      '  tasks:',
      '    - copy: {dest: /etc/layer-wrote, content: "layer\\n"}',
      '    - command: ls /dev',
      '      register: dev',
      '    - copy: {src: probe.sh, dest: /tmp/probe.sh}',
      '    - copy: {src: escape.py, dest: /tmp/escape.py}',
      '    - command: /usr/bin/python3 /tmp/escape.py /tmp/probe.sh',
      '      register: probe',
      '    - copy: {dest: /probe.txt, content: "chroot-dev: {{ dev.stdout_lines | join(\' \') }}\\n{{ probe.stdout }}\\n"}',
    ].join('\n'),
  });
}

async function customize(session: string, network: NetworkMode, layer: { url: string; commit: string }) {
  const lines: string[] = [];
  const result = await runCustomization(parseRunDocument(localRunDocumentFor(session, { id: IMAGE, name: 'sample', rootfs }, { name: 'probe', ...layer })), {
    store,
    local: store,
    workspace: join(base, 'workspaces', session),
    network,
    log: (line) => lines.push(line),
  });
  const log = await readFile(join(base, 'store', 'sessions', session, 'logs', '0-probe.log'), 'utf8').catch(() => '');
  if (result.outcome.status !== 'succeeded') console.log(log);
  return { ...result, lines, log };
}

async function resultFile(session: string, path: string): Promise<string> {
  return (await run('unsquashfs', ['-cat', store.pathOf(`boot-images/result-${session}/rootfs`), path])).stdout;
}

/** The probing layer's run as `session` in `network` mode, with the report it left in the result. */
async function probed(session: string, network: NetworkMode) {
  const result = await customize(session, network, probeLayer());
  return { ...result, probe: await resultFile(session, 'probe.txt') };
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'cfs-sandbox-boundary-'));
  store = new FsArtifactStore(join(base, 'store'));
  canary = join(base, 'canary');
  await writeFile(canary, 'host canary\n');
  listener = createServer((socket) => socket.end('host service\n'));
  await new Promise<void>((resolve) => listener.listen(0, '0.0.0.0', resolve));
  port = (listener.address() as { port: number }).port;

  // A source root holding what a user namespace must keep or say it lost.
  const root = join(base, 'source');
  await buildSampleRoot(root);
  await writeFile(join(root, 'etc/shadow'), 'root:image-shadow:19000:0:99999:7:::\n');
  await chown(join(root, 'etc/shadow'), 0, 42);
  await chmod(join(root, 'etc/shadow'), 0o640);
  await mkdir(join(root, 'home/user'), { recursive: true });
  await writeFile(join(root, 'home/user/notes'), 'user file\n');
  await chown(join(root, 'home/user/notes'), 1000, 1000);
  await writeFile(join(root, 'usr/bin/probe-setuid'), '#!/bin/sh\n');
  await chmod(join(root, 'usr/bin/probe-setuid'), 0o4755);
  await writeFile(join(root, 'usr/bin/probe-cap'), '#!/bin/sh\n');
  await run('setcap', ['cap_net_raw+ep', join(root, 'usr/bin/probe-cap')]);
  await writeFile(join(root, 'etc/marked'), 'marked\n');
  await run('setfattr', ['-n', 'user.cfs', '-v', 'kept', join(root, 'etc/marked')]);
  await run('setfattr', ['-n', 'trusted.cfs', '-v', 'lost', join(root, 'etc/marked')]);
  await run('mknod', ['-m', '0666', join(root, 'dev/null'), 'c', '1', '3']);
  await run('mknod', ['-m', '0660', join(root, 'dev/sda'), 'b', '8', '0']);
  await chown(join(root, 'dev/sda'), 0, 6);
  // Boot files that escape through an intermediate directory link if resolved on the host.
  await mkdir(join(root, 'boot'), { recursive: true });
  await symlink('/etc', join(root, 'boot/x'));
  await symlink('x/shadow', join(root, 'boot/vmlinuz'));
  await symlink('x/../../../../../etc/passwd', join(root, 'boot/initrd.img'));
  const squashfs = join(base, 'source.squashfs');
  await run('mksquashfs', [root, squashfs, '-noappend', '-quiet', '-no-progress', '-comp', 'lz4']);
  const stored = await store.put(`boot-images/${IMAGE}/rootfs`, createReadStream(squashfs));
  rootfs = { key: stored.key, size: stored.size, sha256: stored.sha256 };
  await rm(root, { recursive: true });
}, 120_000);

afterAll(async () => {
  repos.disposeAll();
  listener?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('the namespace sandbox', () => {
  it('keeps owners, setuid bits, file capabilities, user xattrs and device nodes through stage, layer and pack, and says what it could not keep', async () => {
    // Arrange
    const layer = probeLayer();

    // Act
    const result = await customize('keep', 'egress', layer);

    // Assert
    expect(result.outcome.reason).toBeUndefined();
    expect(result.outcome.status).toBe('succeeded');
    const listing = (await run('unsquashfs', ['-lln', store.pathOf('boot-images/result-keep/rootfs')])).stdout;
    const line = (path: string) => listing.split('\n').find((l) => l.endsWith(`squashfs-root${path}`)) ?? '';
    expect(line('/etc/shadow')).toMatch(/^-rw-r----- 0\/42 /);
    expect(line('/home/user/notes')).toMatch(/^-rw-r--r-- 1000\/1000 /);
    expect(line('/usr/bin/probe-setuid')).toMatch(/^-rwsr-xr-x 0\/0 /);
    expect(line('/etc/layer-wrote')).toMatch(/^-rw-r--r-- 0\/0 /);
    expect(line('/dev/null')).toMatch(/^crw-rw-rw- 0\/0 +1, +3 /);
    expect(line('/dev/sda')).toMatch(/^brw-rw---- 0\/6 +8, +0 /);
    const extracted = join(base, 'extracted-keep');
    await run('unsquashfs', ['-no-progress', '-quiet', '-dest', extracted, store.pathOf('boot-images/result-keep/rootfs'), 'usr/bin/probe-cap', 'etc/marked']);
    expect((await run('getcap', [join(extracted, 'usr/bin/probe-cap')])).stdout).toContain('cap_net_raw=ep');
    const xattrs = (await run('getfattr', ['-d', '-m', '-', join(extracted, 'etc/marked')])).stdout;
    expect(xattrs).toContain('user.cfs="kept"');
    expect(xattrs).not.toContain('trusted.cfs');
    expect(result.lines.join('\n')).toMatch(/NOT KEPT: 1 xattr\(s\) .*trusted\.cfs \/etc\/marked/);
    expect(result.lines.join('\n')).toMatch(/2 device node\(s\) of the source written back/);
  }, 180_000);

  it('refuses every way out of a layer that escapes its chroot, and leaves the host canary as it was', async () => {
    // Arrange / Act
    const { outcome, probe } = await probed('probe', 'egress');

    // Assert
    expect(outcome.status).toBe('succeeded');
    const verdicts = Object.fromEntries([...probe.matchAll(/^([\w-]+): (ALLOWED|refused)$/gm)].map((m) => [m[1], m[2]]));
    expect(verdicts).toEqual({
      remount: 'refused',
      'mount-tmpfs': 'refused',
      'read-shadow': 'refused',
      kmsg: 'refused',
      disk: 'refused',
      'read-canary': 'refused',
      'proc1-root': 'refused',
      'proc1-root-shadow': 'refused',
      loopback: 'refused',
      ...(hostAddress ? { 'host-address': 'refused' } : {}),
      metadata: 'refused',
      'ecs-credentials': 'refused',
      unshare: 'refused',
      ptrace: 'refused',
      egress: 'ALLOWED',
    });
    expect(probe).toMatch(/^NoNewPrivs:\s+1$/m);
    const capEff = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)$/m.exec(probe)?.[1] ?? 'ffffffffff'}`);
    expect(capEff & (1n << 21n)).toBe(0n); // CAP_SYS_ADMIN
    expect(capEff & (1n << 19n)).toBe(0n); // CAP_SYS_PTRACE
    expect(probe).toMatch(/^uid_map: +0 +\d+ +65536$/m);
    const chrootDev = /^chroot-dev: (.*)$/m.exec(probe)?.[1]?.trim().split(' ').sort();
    expect(chrootDev).toEqual(expect.arrayContaining(['full', 'null', 'random', 'tty', 'urandom', 'zero']));
    expect(chrootDev).not.toContain('kmsg');
    expect(chrootDev).not.toContain('sda');
    expect(await readFile(canary, 'utf8')).toBe('host canary\n');
  }, 180_000);

  it('gives a layer no way out in network mode none', async () => {
    // Arrange / Act
    const { outcome, probe } = await probed('offline', 'none');

    // Assert
    expect(outcome.status).toBe('succeeded');
    expect(probe).toMatch(/^egress: refused$/m);
    expect(probe).toMatch(/^loopback: refused$/m);
  }, 180_000);

  it('resolves boot files inside the customized root, so links through an intermediate directory cannot make host files the result kernel or initrd', async () => {
    // Arrange
    const layer = repos.with({ 'site.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks: []\n' });
    const hostShadow = await readFile('/etc/shadow', 'utf8');

    // Act
    const result = await customize('boot', 'none', layer);

    // Assert
    expect(result.outcome.status).toBe('succeeded');
    const image = result.outcome.images[0]!;
    const kernel = await readFile(store.pathOf(image.uploaded!.kernel!.key), 'utf8');
    const initrd = await readFile(store.pathOf(image.uploaded!.initrd!.key), 'utf8');
    expect(kernel).toBe('root:image-shadow:19000:0:99999:7:::\n');
    expect(kernel).not.toBe(hostShadow);
    expect(initrd).toBe(await resultFile('boot', 'etc/passwd'));
  }, 180_000);
});
