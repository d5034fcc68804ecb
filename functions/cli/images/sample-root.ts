import { execFile } from 'node:child_process';
import { chmod, copyFile, cp, lstat, mkdir, readdir, readlink, realpath, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The interpreter the sample root carries: Debian's system python (not a pyenv build). */
const PYTHON = '/usr/bin/python3.11';
const PYTHON_LIB = '/usr/lib/python3.11';

/**
 * Tools Ansible's chroot connection and the common modules call inside the root: `/bin/sh -c`,
 * `mkdir`/`echo` for the remote temp dir, `dd` for put_file/fetch_file, `chmod u+x`, `rm -f -r`,
 * `sleep 0` after the module, and `file` is optional (stat's mime type).
 */
const TOOLS = [
  'dash', 'sleep', 'cat', 'ls', 'mkdir', 'rm', 'cp', 'mv', 'chmod', 'chown', 'ln', 'env', 'dd', 'echo',
  'true', 'false', 'readlink', 'touch', 'id', 'uname', 'head', 'tail', 'date',
];

/** Top-level stdlib entries nobody needs inside an image root for Ansible (size, not function). */
const PRUNED_STDLIB = new Set([
  'test', 'idlelib', 'tkinter', 'turtledemo', 'turtle.py', 'ensurepip', 'lib2to3', 'distutils', 'pydoc_data',
  'sqlite3', 'curses', 'venv', 'sitecustomize.py', 'EXTERNALLY-MANAGED', '__phello__', '__hello__.py',
  'antigravity.py', 'this.py',
]);

/** Extension modules left out: test modules, GUIs, terminals, databases, TLS (hashlib falls back to built-ins). */
const PRUNED_DYNLOAD = /^(_test|_xx|xxlimited|_ctypes_test|_tkinter|_curses|_dbm|_gdbm|_sqlite3|nis|ossaudiodev|readline|audioop|_ssl|_hashlib|_codecs_(cn|hk|iso2022|jp|kr|tw))/;

const SAMPLE_NOTE = 'CFS sample image root: not bootable';

/**
 * Builds a small image root (about 25 MB, in a second or two) that Ansible's
 * community.general.chroot connection can run modules in: Debian's python3 with a pruned
 * standard library and the shared libraries it needs, /bin/sh (dash), a few coreutils,
 * /tmp, /root, passwd/group, and dummy `/boot/vmlinuz-sample` and `/boot/initrd.img-sample`
 * (a few bytes of text, so the runner and IMS have a kernel and initrd to carry).
 * `cfs images build-sample` squashes it into a registered image; the runner's tests use it too.
 * Copies host files, so it needs a Debian-like host with python3.11 and coreutils.
 */
export async function buildSampleRoot(targetDir: string): Promise<void> {
  await mkdir(targetDir, { recursive: true });
  await mirrorUsrMerge(targetDir);
  for (const dir of ['usr/bin', 'usr/sbin', 'usr/lib', 'etc', 'proc', 'sys', 'dev', 'run', 'home', 'var/lib', 'boot']) {
    await mkdir(join(targetDir, dir), { recursive: true });
  }
  for (const [dir, mode] of [['tmp', 0o1777], ['var/tmp', 0o1777], ['root', 0o700]] as const) {
    await mkdir(join(targetDir, dir), { recursive: true });
    await chmod(join(targetDir, dir), mode);
  }

  const binaries: string[] = [PYTHON];
  for (const tool of TOOLS) binaries.push(await realpath(`/usr/bin/${tool}`));
  for (const binary of binaries) await copyPreservingMode(binary, join(targetDir, binary));
  await symlink('dash', join(targetDir, 'usr/bin/sh'));
  await symlink(basename(PYTHON), join(targetDir, 'usr/bin/python3'));

  await copyStdlib(targetDir);
  const dynload = (await readdir(join(targetDir, PYTHON_LIB, 'lib-dynload'))).map((f) => join(PYTHON_LIB, 'lib-dynload', f));
  await copySharedLibraries(targetDir, [...binaries, ...dynload]);
  await writeEtc(targetDir);
  await writeFile(join(targetDir, 'boot/vmlinuz-sample'), `${SAMPLE_NOTE}: dummy kernel\n`);
  await writeFile(join(targetDir, 'boot/initrd.img-sample'), `${SAMPLE_NOTE}: dummy initrd\n`);
}

/** Recreates the host's /bin -> usr/bin style links, so library paths from ldd resolve the same way inside. */
async function mirrorUsrMerge(targetDir: string): Promise<void> {
  for (const entry of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
    let info;
    try {
      info = await lstat(`/${entry}`);
    } catch {
      continue;
    }
    if (info.isSymbolicLink()) {
      const target = await readlink(`/${entry}`);
      await mkdir(join(targetDir, target.startsWith('/') ? target : join('/', target)), { recursive: true });
      await symlink(target, join(targetDir, entry));
    } else {
      await mkdir(join(targetDir, entry), { recursive: true });
    }
  }
}

async function copyStdlib(targetDir: string): Promise<void> {
  await cp(PYTHON_LIB, join(targetDir, PYTHON_LIB), {
    recursive: true,
    verbatimSymlinks: true,
    filter: (source) => {
      const rel = relative(PYTHON_LIB, source);
      if (rel === '') return true;
      const parts = rel.split('/');
      const name = parts[parts.length - 1] ?? '';
      if (parts.length === 1 && PRUNED_STDLIB.has(name)) return false;
      if (name === '__pycache__' || name === 'tests' || name === 'test' || name.startsWith('config-3')) return false;
      if (parts[0] === 'lib-dynload' && parts.length === 2 && PRUNED_DYNLOAD.test(name)) return false;
      return true;
    },
  });
}

/** Copies every library `ldd` names for the given files (the loader included) to the same path inside the root. */
async function copySharedLibraries(targetDir: string, files: string[]): Promise<void> {
  const libraries = new Set<string>();
  for (const file of files) {
    const { stdout } = await run('ldd', [file]);
    for (const line of stdout.split('\n')) {
      const match = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
      if (match?.[1]) libraries.add(match[1]);
    }
  }
  for (const library of libraries) {
    await copyPreservingMode(await realpath(library), join(targetDir, library));
  }
}

async function copyPreservingMode(source: string, target: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  await copyFile(source, target);
  await chmod(target, (await lstat(source)).mode & 0o7777);
}

async function writeEtc(targetDir: string): Promise<void> {
  const etc = (name: string): string => join(targetDir, 'etc', name);
  await writeFile(etc('passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  await writeFile(etc('group'), 'root:x:0:\nnogroup:x:65534:\n');
  await writeFile(etc('hostname'), 'cfs-sample\n');
  await writeFile(etc('resolv.conf'), '');
  await writeFile(
    etc('os-release'),
    [
      'NAME="CFS sample"',
      'ID=cfs-sample',
      'VERSION_ID=1',
      `PRETTY_NAME="${SAMPLE_NOTE} (python3, sh and coreutils for Ansible's chroot connection)"`,
      '',
    ].join('\n'),
  );
}
