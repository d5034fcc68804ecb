import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A real Debian 12 root with its own kernel and an initramfs that can mount a squashfs root,
 * built once per machine with mmdebstrap from Debian's mirror and cached outside the
 * repository, so end-to-end and boot tests customize what sites really run instead of the
 * sample root. Building it takes a few minutes and about 1 GB of disk while it runs (a 700 MB
 * root); the cache keeps about 250 MB.
 */
export interface DebianRoot {
  /** The cache directory holding the files below (never write into it). */
  dir: string;
  /** The root as one squashfs file (compression in DEBIAN_ROOT_RECIPE), ready for `cfs images import --squashfs`. */
  rootfs: string;
  /** The root's /boot/vmlinuz-<version>. */
  kernel: string;
  /** The root's /boot/initrd.img-<version>, rebuilt with the squashfs module. */
  initrd: string;
  /** The kernel version (`uname -r` of the guest). */
  kernelVersion: string;
  /** The cache key: a hash of the recipe and the mirror. */
  key: string;
}

/**
 * Everything the build depends on. The cache key hashes this (with the mirror), so a change to
 * the package list or compression builds a new fixture; bump `version` when the build steps in
 * this file change in a way the data does not show.
 */
export const DEBIAN_ROOT_RECIPE = {
  version: 2,
  suite: 'bookworm',
  variant: 'minbase',
  packages: ['linux-image-amd64', 'initramfs-tools', 'systemd-sysv', 'python3', 'udev', 'kmod'],
  /**
   * Listed in /usr/share/initramfs-tools/modules.d/ before the kernel is installed, so the
   * initramfs its postinst builds can mount a squashfs root (no second update-initramfs, which
   * took 103 s here).
   */
  initramfsModules: ['squashfs'],
  /**
   * /etc/initramfs-tools/conf.d/ settings, also in place before the kernel: Debian's zstd level 9
   * takes most of an initramfs build on 2 cores, here and in every session that rebuilds one.
   */
  initramfsConf: ['COMPRESSLEVEL=1'],
  /**
   * zstd at level 3, named: mksquashfs's zstd default is 15, which took 55-161 s to repack this
   * root per session on 2 busy cores (the layer cache bench), and sessions repack with the
   * source's compressor and level. Level 3 packs it in about 10 s to about 240 MB, where gzip
   * level 1 took 19 s for 259 MB. Debian's kernel reads it (CONFIG_SQUASHFS_ZSTD=y).
   */
  mksquashfs: ['-comp', 'zstd', '-Xcompression-level', '3'],
} as const;

/** Where the fixtures live between runs: outside the repository, shared by every checkout on the machine. */
export const FIXTURE_CACHE = process.env.CFS_TEST_FIXTURE_CACHE ?? '/var/cache/cfs-test-fixtures';

/**
 * The Debian mirror this machine uses: CFS_TEST_DEBIAN_MIRROR, else the first URI serving the
 * recipe's suite in /etc/apt/sources.list.d (deb822 or one-line), else deb.debian.org.
 */
export function debianMirror(sourcesDir = '/etc/apt/sources.list.d'): string {
  if (process.env.CFS_TEST_DEBIAN_MIRROR) return process.env.CFS_TEST_DEBIAN_MIRROR;
  const files = existsSync(sourcesDir) ? readdirSync(sourcesDir).filter((f) => /\.(sources|list)$/.test(f)).sort() : [];
  for (const file of files) {
    const text = readFileSync(join(sourcesDir, file), 'utf8');
    for (const stanza of text.split(/\n\s*\n/)) {
      const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'im').exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      if (field('Suites').includes(DEBIAN_ROOT_RECIPE.suite) && field('Types').includes('deb')) return field('URIs')[0]!;
    }
    const oneLine = new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${DEBIAN_ROOT_RECIPE.suite}\\s`, 'm').exec(text);
    if (oneLine) return oneLine[1]!;
  }
  return 'http://deb.debian.org/debian';
}

/** The cache key of the recipe built from `mirror`. */
export function debianRootKey(mirror = debianMirror()): string {
  return createHash('sha256').update(JSON.stringify({ ...DEBIAN_ROOT_RECIPE, mirror })).digest('hex').slice(0, 16);
}

/** Runs a tool without a shell; rejects with its last stderr lines when it fails. */
function run(command: string, args: string[], options: { cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => void (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${command} ${args.slice(0, 3).join(' ')} ... exited ${code ?? signal}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}

/**
 * Holds an exclusive flock(1) on `path` until the returned release is called. The lock is a
 * kernel lock held by a child `flock` process whose command waits on our stdin, so it is
 * released when we release it or whenever this process dies, never left behind.
 */
async function lockFile(path: string): Promise<() => Promise<void>> {
  const child = spawn('flock', ['--exclusive', path, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => reject(new Error(`flock ${path} exited ${code} before taking the lock`)));
    child.stdout.once('data', () => resolve());
  });
  return async () => {
    child.stdin.end();
    await exited;
  };
}

/** Runs `step`, printing one line with its duration, so a CI log shows where the time went. */
async function phase<T>(what: string, step: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await step();
  console.log(`[debian-root] ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

/** The one file in `dir` whose name starts with `prefix` (e.g. the only installed kernel). */
async function onlyFile(dir: string, prefix: string): Promise<string> {
  const names = (await readdir(dir)).filter((n) => n.startsWith(prefix));
  if (names.length !== 1) throw new Error(`expected one ${prefix}* in ${dir}, found ${names.join(', ') || 'none'}`);
  return names[0]!;
}

/**
 * Builds the fixture into `out` (a directory that does not exist yet): mmdebstrap (its hook puts
 * the recipe's initramfs modules and settings in place before the kernel's postinst builds the
 * initramfs), a check in a private mount namespace (its /dev mount vanishes with it) that the
 * initramfs holds the modules, the kernel and initrd copied out, the root squashed, the
 * unpacked root removed.
 */
async function build(out: string, mirror: string): Promise<void> {
  const recipe = DEBIAN_ROOT_RECIPE;
  const root = join(out, 'root');
  await mkdir(out);
  // After the essential packages, before the kernel and initramfs-tools: files no package owns, which their postinst reads.
  const hook = [
    'mkdir -p "$1/usr/share/initramfs-tools/modules.d" "$1/etc/initramfs-tools/conf.d"',
    `printf '%s\\n' ${recipe.initramfsModules.join(' ')} > "$1/usr/share/initramfs-tools/modules.d/cfs-test-fixture"`,
    `printf '%s\\n' ${recipe.initramfsConf.join(' ')} > "$1/etc/initramfs-tools/conf.d/cfs-test-fixture"`,
  ].join(' && ');
  await phase(`mmdebstrap ${recipe.suite} (${recipe.packages.join(',')}) from ${mirror}`, () =>
    run('mmdebstrap', ['--quiet', `--variant=${recipe.variant}`, `--include=${recipe.packages.join(',')}`, `--essential-hook=${hook}`, recipe.suite, root, mirror]),
  );
  const kernelName = await onlyFile(join(root, 'boot'), 'vmlinuz-');
  const kernelVersion = kernelName.slice('vmlinuz-'.length);
  await phase(`check the initramfs holds ${recipe.initramfsModules.join(', ')}`, async () => {
    const listed = await run('unshare', ['--mount', '--fork', 'sh', '-c', 'mount --rbind /dev "$1/dev" && exec chroot "$1" lsinitramfs "/boot/initrd.img-$2"', 'sh', root, kernelVersion]);
    for (const module of recipe.initramfsModules) {
      if (!new RegExp(`/${module}\\.ko(\\.[a-z]+)?$`, 'm').test(listed)) throw new Error(`the rebuilt initramfs has no ${module} module`);
    }
  });
  await copyFile(join(root, 'boot', kernelName), join(out, 'kernel'));
  await copyFile(join(root, 'boot', `initrd.img-${kernelVersion}`), join(out, 'initrd'));
  await phase(`mksquashfs ${recipe.mksquashfs.join(' ')}`, () => run('mksquashfs', [root, join(out, 'rootfs.squashfs'), '-noappend', '-quiet', '-no-progress', ...recipe.mksquashfs]));
  await phase('remove the unpacked root', () => run('rm', ['-rf', '--one-file-system', '--', root]));
  const sizes = Object.fromEntries(await Promise.all(['rootfs.squashfs', 'kernel', 'initrd'].map(async (f) => [f, (await stat(join(out, f))).size] as const)));
  await writeFile(join(out, 'fixture.json'), `${JSON.stringify({ recipe, mirror, kernelVersion, sizes, builtAt: new Date().toISOString() }, null, 2)}\n`);
}

function describeCached(dir: string, key: string, kernelVersion: string): DebianRoot {
  return { dir, rootfs: join(dir, 'rootfs.squashfs'), kernel: join(dir, 'kernel'), initrd: join(dir, 'initrd'), kernelVersion, key };
}

async function readCached(dir: string, key: string): Promise<DebianRoot | undefined> {
  const info = await readFile(join(dir, 'fixture.json'), 'utf8').catch(() => undefined);
  return info === undefined ? undefined : describeCached(dir, key, (JSON.parse(info) as { kernelVersion: string }).kernelVersion);
}

/**
 * The cached Debian 12 fixture, built first when this machine has none for the current recipe.
 * Builds run under an flock on the cache, so concurrent test files wait for one build instead
 * of making two; a build happens in a `.building-*` directory renamed into place only when
 * complete, so a half-built fixture is never used, and a leftover one (a killed run) is removed
 * by the next build. Needs root, mmdebstrap, squashfs-tools and Debian's mirror.
 */
export async function debianRoot(): Promise<DebianRoot> {
  const mirror = debianMirror();
  const key = debianRootKey(mirror);
  const dir = join(FIXTURE_CACHE, `debian12-${key}`);
  const cached = await readCached(dir, key);
  if (cached) {
    console.log(`[debian-root] cached ${dir}`);
    return cached;
  }
  await mkdir(FIXTURE_CACHE, { recursive: true });
  const release = await phase('waiting for the fixture lock', () => lockFile(join(FIXTURE_CACHE, '.lock')));
  try {
    const builtMeanwhile = await readCached(dir, key);
    if (builtMeanwhile) {
      console.log(`[debian-root] built meanwhile by another process: ${dir}`);
      return builtMeanwhile;
    }
    for (const name of await readdir(FIXTURE_CACHE)) {
      if (name.startsWith('.building-')) await run('rm', ['-rf', '--one-file-system', '--', join(FIXTURE_CACHE, name)]);
    }
    const work = await mkdtemp(join(FIXTURE_CACHE, '.building-'));
    try {
      await phase(`built ${dir}`, () => build(join(work, 'fixture'), mirror));
      await rename(join(work, 'fixture'), dir);
    } finally {
      await run('rm', ['-rf', '--one-file-system', '--', work]);
    }
    const built = await readCached(dir, key);
    if (!built) throw new Error(`the fixture build left no fixture.json in ${dir}`);
    return built;
  } finally {
    await release();
  }
}
