import type { ChildProcess, StdioOptions } from 'node:child_process';
import { constants } from 'node:fs';
import { chown, mkdir, open, readdir, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { signalGroup, ToolError, type ProcessGroups } from '../process-groups.ts';
import { openFileInRoot, resolvePathInRoot } from '../root-paths.ts';
import { userNamespaceArgv, type IdMapping } from '../user-namespace.ts';

/**
 * What a layer did to an image's installed packages (issue 19, "what each layer changed"): the
 * dpkg status file or the rpm database of the tree before and after the layer, read without
 * following any symlink out of the image root, and compared by package. The image's database is
 * untrusted input: dpkg's is parsed here; rpm's is copied out of the root and queried by the
 * host's `rpm` as root of the run's user namespace when there is one.
 */

/** One installed package as a database lists it. */
export interface InstalledPackage {
  name: string;
  arch: string;
  /** dpkg: the Version field; rpm: `[E:]V-R`. */
  version: string;
}

/** One package whose installed version changed: added (old null), removed (new null), or upgraded/downgraded (both). */
export interface PackageChange {
  name: string;
  old: string | null;
  new: string | null;
}

/** The packages part of a changes report. */
export interface PackageChanges {
  manager: 'dpkg' | 'rpm';
  changes: PackageChange[];
}

/** Where dpkg keeps what is installed, relative to the image root. */
export const DPKG_STATUS = 'var/lib/dpkg/status';
/** Where an rpm database may live, relative to the image root, in the order they are tried (Fedora and SUSE moved it; /var/lib/rpm is often a link to the new place). */
export const RPM_DB_DIRS = ['var/lib/rpm', 'usr/lib/sysimage/rpm'] as const;
/**
 * The file that makes a directory an rpm database, and the backends of rpm that read it: sqlite
 * (rpm 4.16+: Fedora, RHEL 9), Berkeley DB (RHEL 8 and older; read-only `bdb_ro` in rpm 4.16+),
 * ndb (SUSE, SLES 15 SP3 and later).
 */
const RPM_DB_FORMATS: Array<{ file: string; backends: string[] }> = [
  { file: 'rpmdb.sqlite', backends: ['sqlite'] },
  { file: 'Packages', backends: ['bdb_ro', 'bdb'] },
  { file: 'Packages.db', backends: ['ndb'] },
];
const RPM_DB_FILES = RPM_DB_FORMATS.map((f) => f.file);
/** Tab-separated, one package a line; EPOCH prints `(none)` when unset. */
const RPM_QUERY_FORMAT = '%{NAME}\\t%{EPOCH}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n';
/** A status file or rpm database larger than this is not read (real ones are a few MB to a few hundred). */
const MAX_DATABASE_BYTES = 2 * 1024 ** 3;
/** How long one rpm query may take before its process group is killed. */
const RPM_TIMEOUT_MS = 120_000;

/**
 * The installed packages a dpkg status file lists: stanzas whose Status says the package is
 * installed (`install ok installed`, also when held or selected for removal, since its files are
 * still there). Continuation lines (Description, Conffiles) are skipped.
 */
export function parseDpkgStatus(text: string): InstalledPackage[] {
  const installed: InstalledPackage[] = [];
  let fields = new Map<string, string>();
  const finish = () => {
    const name = fields.get('package');
    const status = (fields.get('status') ?? '').split(/\s+/);
    if (name && status[2] === 'installed') installed.push({ name, arch: fields.get('architecture') ?? '', version: fields.get('version') ?? '' });
    fields = new Map();
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      finish();
      continue;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  finish();
  return installed;
}

/** The packages `rpm -qa --qf RPM_QUERY_FORMAT` printed, versions as `[E:]V-R` (the epoch only when set). */
export function parseRpmQuery(text: string): InstalledPackage[] {
  const installed: InstalledPackage[] = [];
  for (const line of text.split('\n')) {
    const [name, evr, arch, ...rest] = line.split('\t');
    if (!name || evr === undefined || arch === undefined || rest.length > 0) continue;
    installed.push({ name, arch, version: evr.startsWith('(none):') ? evr.slice('(none):'.length) : evr });
  }
  return installed;
}

/**
 * The changes from `before` to `after`, sorted by name. A package is named by its name alone,
 * or with its architecture (`name:arch` for dpkg, rpm's `name.arch`) when that name is installed
 * for more than one architecture on either side (Multi-Arch same libraries, rpm's multilib).
 * rpm may hold one name in several versions (kernels): one version gone and one come is an
 * upgrade or downgrade, anything else is listed as separate removals and additions.
 */
export function diffPackages(before: InstalledPackage[], after: InstalledPackage[], archSeparator: ':' | '.'): PackageChange[] {
  const arches = new Map<string, Set<string>>();
  const versions = (list: InstalledPackage[]) => {
    const byKey = new Map<string, Set<string>>();
    for (const p of list) {
      const key = `${p.name}\0${p.arch}`;
      byKey.set(key, (byKey.get(key) ?? new Set()).add(p.version));
      arches.set(p.name, (arches.get(p.name) ?? new Set()).add(p.arch));
    }
    return byKey;
  };
  const old = versions(before);
  const now = versions(after);
  const changes: PackageChange[] = [];
  for (const key of new Set([...old.keys(), ...now.keys()])) {
    const [name = '', arch = ''] = key.split('\0');
    const shown = (arches.get(name)?.size ?? 0) > 1 ? `${name}${archSeparator}${arch}` : name;
    const was = old.get(key) ?? new Set<string>();
    const is = now.get(key) ?? new Set<string>();
    const gone = [...was].filter((v) => !is.has(v)).sort();
    const come = [...is].filter((v) => !was.has(v)).sort();
    if (gone.length === 1 && come.length === 1) {
      changes.push({ name: shown, old: gone[0]!, new: come[0]! });
      continue;
    }
    for (const v of gone) changes.push({ name: shown, old: v, new: null });
    for (const v of come) changes.push({ name: shown, old: null, new: v });
  }
  const order = (c: PackageChange) => `${c.name}\0${c.old ?? ''}\0${c.new ?? ''}`;
  return changes.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
}

/**
 * The image-absolute paths whose change means a layer touched a package database: the
 * databases' own paths, and where they resolve to inside each root (a /var/lib/rpm link to
 * /usr/lib/sysimage/rpm, a moved dpkg directory), so a change through a link is seen too.
 */
export async function packageDatabasePaths(roots: string[]): Promise<{ dpkg: string[]; rpm: string[] }> {
  const resolvedIn = async (root: string, path: string) => {
    const result = await resolvePathInRoot(root, path, { allowMissing: true });
    return 'path' in result ? `/${relative(root, result.path)}` : undefined;
  };
  const dpkg = new Set([`/${DPKG_STATUS}`]);
  const rpm = new Set<string>(RPM_DB_DIRS.map((d) => `/${d}`));
  for (const root of roots) {
    const status = await resolvedIn(root, DPKG_STATUS);
    if (status) dpkg.add(status);
    for (const dir of RPM_DB_DIRS) {
      const resolved = await resolvedIn(root, dir);
      if (resolved) rpm.add(resolved);
    }
  }
  return { dpkg: [...dpkg].sort(), rpm: [...rpm].sort() };
}

/**
 * The packages a root's dpkg status file lists, or undefined when the root has none (no file,
 * or its path leads to anything but a regular file inside the root: a link out of the root is
 * resolved inside it, as the image itself would see it, and finds nothing there).
 */
export async function readDpkgPackages(root: string): Promise<InstalledPackage[] | undefined> {
  const opened = await openFileInRoot(root, DPKG_STATUS);
  if (!opened) return undefined;
  try {
    if (opened.size > MAX_DATABASE_BYTES) throw new Error(`${opened.path} is larger than ${MAX_DATABASE_BYTES} bytes`);
    return parseDpkgStatus(await opened.handle.readFile({ encoding: 'utf8' }));
  } finally {
    await opened.handle.close();
  }
}

/** The host path of a root's rpm database directory (no component of it a symlink), or undefined when it has none. */
export async function findRpmDatabase(root: string): Promise<string | undefined> {
  for (const dir of RPM_DB_DIRS) {
    const result = await resolvePathInRoot(root, dir);
    if (!('path' in result)) continue;
    const names = await readdir(result.path).catch(() => [] as string[]);
    if (names.some((n) => RPM_DB_FILES.includes(n))) return result.path;
  }
  return undefined;
}

/**
 * Copies the regular files at the top of an rpm database directory (all its formats keep their
 * files there) into `dest` (made with its parents): opened without following a link (a symlink
 * in the database is skipped), and owned by the namespace's root when there is a mapping, so the
 * query can read its copy and write nothing of the image's.
 */
async function copyRpmDatabase(dbDir: string, dest: string, mapping: IdMapping | undefined): Promise<void> {
  await mkdir(dest, { recursive: true, mode: 0o700 });
  if (mapping) await chown(dest, mapping.uid, mapping.gid);
  let total = 0;
  for (const entry of await readdir(dbDir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const source = await open(join(dbDir, entry.name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined);
    if (!source) continue;
    try {
      const info = await source.stat();
      if (!info.isFile()) continue;
      total += info.size;
      if (total > MAX_DATABASE_BYTES) throw new Error(`the rpm database ${dbDir} is larger than ${MAX_DATABASE_BYTES} bytes`);
      await copyOpened(source, join(dest, entry.name), mapping);
    } finally {
      await source.close();
    }
  }
}

/** Writes what an open file holds to a new file (never through a link), owned by the namespace's root when there is a mapping. */
async function copyOpened(source: FileHandle, target: string, mapping: IdMapping | undefined): Promise<void> {
  const output = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    const buffer = Buffer.alloc(1 << 20);
    for (let position = 0; ; ) {
      const { bytesRead } = await source.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      await output.write(buffer, 0, bytesRead);
      position += bytesRead;
    }
    if (mapping) await output.chown(mapping.uid, mapping.gid);
  } finally {
    await output.close();
  }
}

/**
 * Copies a root's package databases (dpkg's status file, the rpm database directory) into
 * `dest`, laid out as in a root (`var/lib/dpkg/status`, `var/lib/rpm/...`), so a changes report
 * can read them after the layer has changed the root: the tree-compare path calls it before each
 * layer and gives `dest` as changesReport's `beforePackages`. Read as packageChanges reads them
 * (nothing through a link out of the root). A root without either gives an empty `dest`.
 */
export async function savePackageDatabases(root: string, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true, mode: 0o700 });
  const status = await openFileInRoot(root, DPKG_STATUS);
  if (status) {
    try {
      if (status.size > MAX_DATABASE_BYTES) throw new Error(`${status.path} is larger than ${MAX_DATABASE_BYTES} bytes`);
      await mkdir(join(dest, dirname(DPKG_STATUS)), { recursive: true, mode: 0o700 });
      await copyOpened(status.handle, join(dest, DPKG_STATUS), undefined);
    } finally {
      await status.handle.close();
    }
  }
  const rpmDb = await findRpmDatabase(root);
  if (rpmDb) await copyRpmDatabase(rpmDb, join(dest, RPM_DB_DIRS[0]), undefined);
}

/**
 * Runs a tool in its own process group (so `groups` can stop it), with a time limit after which
 * the whole group is killed; resolves with its raw stdout (bytes, capped at `limit`), rejects with
 * a ToolError on a non-zero exit. `stdio` may hand it extra descriptors (fd 3 on).
 */
export async function captureTool(
  groups: ProcessGroups,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number; limit?: number; extraFds?: number[] },
): Promise<Buffer> {
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...(options.extraFds ?? [])];
  const { child, exited } = groups.start(command, args, { env: options.env, cwd: options.cwd, stdio });
  const kill = () => {
    if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
  };
  const stdout = collect(child, 'stdout', options.limit ?? 256 << 20, kill);
  const stderr = tail(child, 64 << 10);
  // Both are awaited below, after the exit; until then a rejection must not count as unhandled.
  stdout.catch(() => {});
  stderr.catch(() => {});
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, options.timeoutMs);
  try {
    const exit = await exited;
    const output = await stdout;
    if (timedOut) throw new Error(`${command} took longer than ${options.timeoutMs} ms and was killed`);
    if (exit.code !== 0) throw new ToolError(command, exit, (await stderr).toString('utf8'));
    return output;
  } finally {
    clearTimeout(timer);
  }
}

/** The last `keep` bytes of a child's stderr (warnings may be many; only the end explains a failure). */
async function tail(child: ChildProcess, keep: number): Promise<Buffer> {
  let kept = Buffer.alloc(0);
  for await (const chunk of child.stderr ?? []) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    kept = Buffer.concat([kept, buffer]);
    if (kept.length > keep) kept = kept.subarray(kept.length - keep);
  }
  return kept;
}

/** A child's output, up to `limit` bytes; past it the child is killed and the promise rejects. */
async function collect(child: ChildProcess, which: 'stdout' | 'stderr', limit: number, kill: () => void): Promise<Buffer> {
  const stream = child[which];
  if (!stream) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += buffer.length;
    if (size > limit) {
      kill();
      throw new Error(`the ${which} of a tool run passed ${limit} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * The packages a root's rpm database lists, or undefined when the root has none. The database
 * is copied out of the root into `scratch/<label>` first, and the host's rpm queries the copy,
 * as root of the user namespace when `mapping` is given (an image's database is untrusted input
 * to a host tool: it then runs with none of the host root's rights).
 */
export async function readRpmPackages(
  root: string,
  options: { scratch: string; label: string; mapping?: IdMapping; groups: ProcessGroups },
): Promise<InstalledPackage[] | undefined> {
  const dbDir = await findRpmDatabase(root);
  if (!dbDir) return undefined;
  const copy = join(options.scratch, options.label);
  await copyRpmDatabase(dbDir, copy, options.mapping);
  const backend = await rpmBackendFor(dbDir, await readdir(copy), options.groups);
  // The backend is named: an rpm that finds no database of its default kind creates an empty one and lists nothing.
  const args = ['--define', `_db_backend ${backend}`, '--dbpath', copy, '-qa', '--qf', RPM_QUERY_FORMAT];
  const [command, argv] = options.mapping ? userNamespaceArgv(options.mapping, 'rpm', args) : ['rpm', args];
  const output = await captureTool(options.groups, command, argv, { env: rpmEnvironment(copy), cwd: copy, timeoutMs: RPM_TIMEOUT_MS });
  return parseRpmQuery(output.toString('utf8'));
}

function rpmEnvironment(home: string): NodeJS.ProcessEnv {
  return { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: home, LANG: 'C.UTF-8' };
}

let availableBackends: Promise<string[]> | undefined;

/**
 * The backend the host's rpm reads a database with, by the files of its copy (`names`); throws
 * when there is none (a database file that was a link is not copied) or when this rpm lacks it
 * (Debian's rpm 4.18 has sqlite and bdb_ro, not SUSE's ndb).
 */
async function rpmBackendFor(dbDir: string, names: string[], groups: ProcessGroups): Promise<string> {
  const format = RPM_DB_FORMATS.find((f) => names.includes(f.file));
  if (!format) throw new Error(`the rpm database ${dbDir} holds no database file that is a regular file (${RPM_DB_FILES.join(', ')})`);
  availableBackends ??= captureTool(groups, 'rpm', ['--showrc'], { env: rpmEnvironment('/'), timeoutMs: RPM_TIMEOUT_MS }).then((text) => {
    const line = /^available backends\s*:(.*)$/m.exec(text.toString('utf8'));
    return line ? line[1]!.trim().split(/\s+/) : [];
  });
  const available = await availableBackends.catch((error: unknown) => {
    availableBackends = undefined;
    throw error;
  });
  const backend = format.backends.find((b) => available.includes(b));
  if (!backend) throw new Error(`the rpm database ${dbDir} is in the ${format.backends[0]} format (${format.file}), which this host's rpm cannot read (it reads ${available.join(', ') || 'nothing it names'})`);
  return backend;
}

/**
 * The package changes of one layer: dpkg's when the layer touched dpkg's status file (and either
 * side has one), else rpm's when it touched an rpm database (and either side has one); null
 * when neither. A side without a database counts as no packages (a layer that installs the
 * first ones lists them all as added).
 */
export async function packageChanges(options: {
  before: string;
  after: string;
  touched: { dpkg: boolean; rpm: boolean };
  scratch: string;
  mapping?: IdMapping;
  groups: ProcessGroups;
}): Promise<PackageChanges | null> {
  if (options.touched.dpkg) {
    const before = await readDpkgPackages(options.before);
    const after = await readDpkgPackages(options.after);
    if (before || after) return { manager: 'dpkg', changes: diffPackages(before ?? [], after ?? [], ':') };
  }
  if (options.touched.rpm) {
    const query = { scratch: options.scratch, mapping: options.mapping, groups: options.groups };
    const before = await readRpmPackages(options.before, { ...query, label: 'rpmdb-before' });
    const after = await readRpmPackages(options.after, { ...query, label: 'rpmdb-after' });
    if (before || after) return { manager: 'rpm', changes: diffPackages(before ?? [], after ?? [], '.') };
  }
  return null;
}
