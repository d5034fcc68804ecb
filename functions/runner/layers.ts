import type { ChildProcess } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, open, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { ExtraVarsError, parseExtraVars, unsafeExtraVarsYaml, type ExtraVarsMap } from '../core/sessions/extra-vars.ts';
import { gitMessage } from '../core/workflow/git-message.ts';
import { redactCloneUrl, redactUrlsInText } from '../core/workflow/redact.ts';
import type { ArtifactStore } from '../ports/artifact-store.ts';
import { RunnerFailure } from './failures.ts';
import { ToolError, type ChildExit, type ProcessGroups } from './process-groups.ts';
import { linksLeaving, resolveInRoot } from './root-paths.ts';
import type { RunDocument, RunLayer } from '../core/workflow/run-document.ts';
import type { GitAccess } from '../core/sources/source-record.ts';
import { withGitAccess } from '../adapters/local/git-access.ts';

/**
 * The scheme of a clone URL as git sees it: `https://…` -> https, `user@host:path` (scp-like)
 * -> ssh, a local path -> file, `ext::…` (a transport helper) -> ext.
 */
export function cloneUrlScheme(url: string): string {
  const explicit = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (explicit?.[1]) return explicit[1].toLowerCase();
  const helper = /^([A-Za-z][A-Za-z0-9+.-]*)::/.exec(url);
  if (helper?.[1]) return helper[1].toLowerCase();
  // git treats `host:path` as ssh unless a slash comes before the colon.
  const colon = url.indexOf(':');
  if (colon > 0 && !url.slice(0, colon).includes('/')) return 'ssh';
  return 'file';
}

/** Refuses a clone URL whose scheme the session's settings do not allow. */
export function checkCloneUrl(layer: RunLayer, allowed: string[]): void {
  const scheme = cloneUrlScheme(layer.clone_url);
  if (!allowed.includes(scheme)) {
    throw new RunnerFailure('input', `layer '${layer.name}': clone URL scheme '${scheme}' is not allowed (allowed: ${allowed.join(', ')})`, {
      layer: layer.name,
    });
  }
}

/** The options CFS lets through to ansible-playbook, by every spelling, with their long name. */
const PASSTHROUGH_OPTIONS: Record<string, { long: string; integer?: boolean }> = {
  '-e': { long: '--extra-vars' },
  '--extra-vars': { long: '--extra-vars' },
  '-f': { long: '--forks', integer: true },
  '--forks': { long: '--forks', integer: true },
  '-t': { long: '--tags' },
  '--tags': { long: '--tags' },
  '--skip-tags': { long: '--skip-tags' },
  '--start-at-task': { long: '--start-at-task' },
};

/** Extra vars a passthrough may not set: Ansible's connection variables and the runner's map of roots. */
const RESERVED_EXTRA_VAR = /^(ansible_|cfs_image_roots$)/i;

/** One passthrough option with its value, by its long name. */
interface PassthroughOption {
  option: string;
  value: string;
}

/**
 * Reads passthrough argv tokens (`--opt value`, `--opt=value` and `-ovalue` forms) into
 * options, refusing what the control plane refuses: other options, a tag or task value that
 * starts with `-` or `@`, extra vars from a file, unreadable extra vars and `ansible_*` ones.
 */
function readPassthrough(tokens: string[]): PassthroughOption[] {
  const options: PassthroughOption[] = [];
  const refuse = (text: string) => new RunnerFailure('input', `ansible passthrough: ${text}`);
  for (let i = 0; i < tokens.length; i += 1) {
    const token = tokens[i] ?? '';
    let option: string;
    let value: string | undefined;
    if (token.startsWith('--')) {
      const eq = token.indexOf('=');
      option = eq === -1 ? token : token.slice(0, eq);
      value = eq === -1 ? undefined : token.slice(eq + 1);
    } else if (/^-[a-z]/.test(token)) {
      option = token.slice(0, 2);
      value = token.length > 2 ? token.slice(2) : undefined;
    } else {
      throw refuse(`unexpected argument '${token}'`);
    }
    const spec = PASSTHROUGH_OPTIONS[option];
    if (!spec) throw refuse(`option '${option}' is not allowed`);
    if (value === undefined) {
      value = tokens[i + 1];
      i += 1;
      if (value === undefined) throw refuse(`option '${option}' needs a value`);
    }
    if (spec.integer && !/^\d+$/.test(value)) throw refuse(`option '${option}' needs a whole number, got '${value}'`);
    if (spec.long === '--extra-vars') {
      let vars: ExtraVarsMap | undefined;
      try {
        vars = parseExtraVars(value);
      } catch (error) {
        if (error instanceof ExtraVarsError) throw refuse(`option '${option}': ${error.message}`);
        throw error;
      }
      const forbidden = vars?.entries.find(([key]) => key.kind === 'str' && RESERVED_EXTRA_VAR.test(key.value.replace(/["'\s]/g, '')));
      if (forbidden) throw refuse(`option '${option}': extra var '${(forbidden[0] as { value: string }).value}' is not allowed (it controls the connection)`);
    } else if (!spec.integer && /^[-@]/.test(value)) {
      throw refuse(`the value of '${option}' must not start with '-' or '@' (an option or a file name): '${value}'`);
    }
    options.push({ option: spec.long, value });
  }
  return options;
}

/**
 * Checks passthrough argv tokens against the options CFS allows (`-e/--extra-vars`,
 * `-f/--forks`, `-t/--tags`, `--skip-tags`, `--start-at-task`) and their values. The control
 * plane validates them first; this is the runner refusing to pass anything else to a root
 * process on its own word.
 */
export function checkPassthrough(tokens: string[]): void {
  readPassthrough(tokens);
}

/**
 * Refuses a limit Ansible would read as a file of host names (any ','/':' part starting with
 * '@': the control plane refuses '@' anywhere, and so does this) or as an option.
 */
export function checkLimit(limit: string): void {
  if (limit.includes('@') || limit.startsWith('-') || /[\s;]/.test(limit)) {
    throw new RunnerFailure('input', `ansible limit '${limit}' is not allowed: it must not contain '@' (a file), whitespace or ';', nor start with '-'`);
  }
}

/** The extra-vars file pinning the connection, beside the inventory; given last, so nothing outranks it. */
export const CONNECTION_VARS_FILE = 'cfs-connection.yml';

/** The file holding the n-th (from 0) non-empty passthrough `--extra-vars` value, every string `!unsafe`. */
export function passthroughVarsFile(directory: string, n: number): string {
  return join(directory, `cfs-extra-vars-${n}.yml`);
}

/**
 * The ansible-playbook argv for one layer: the inventory; the limit; verbosity; the
 * passthrough options in their order, each `--extra-vars` value replaced by its `!unsafe` file
 * (`-e @file`, written by writeInventory beside the inventory); the connection file last
 * (extra vars given later win, so it outranks every other variable); the playbook after `--`.
 * Every value is joined to its option with `=`, so none can be read as an option.
 */
export function ansiblePlaybookArgs(options: { inventory: string; limit: string; verbosity: number; passthrough: string[]; playbook: string }): string[] {
  const directory = dirname(options.inventory);
  const args = ['--inventory', options.inventory];
  if (options.limit) {
    checkLimit(options.limit);
    args.push(`--limit=${options.limit}`);
  }
  if (options.verbosity > 0) args.push(`-${'v'.repeat(options.verbosity)}`);
  let files = 0;
  for (const { option, value } of readPassthrough(options.passthrough)) {
    if (option !== '--extra-vars') args.push(`${option}=${value}`);
    else if (value !== '') args.push(`--extra-vars=@${passthroughVarsFile(directory, files++)}`);
  }
  args.push(`--extra-vars=@${join(directory, CONNECTION_VARS_FILE)}`, '--', options.playbook);
  return args;
}

/** The connection every host gets, whatever the inventory, the repository or the play says. */
export const CHROOT_CONNECTION = 'community.general.chroot';

/**
 * The inventory: the document's inventory with each image host listed under `all.hosts`
 * (with `ansible_host` at its staged root, as a fallback: the connection file sets it for real).
 */
export function inventoryWithRoots(inventory: RunDocument['inventory'], roots: Map<string, string>): Record<string, unknown> {
  const copy = structuredClone(inventory) as { all: Record<string, unknown> };
  const hosts = (copy.all.hosts ?? {}) as Record<string, Record<string, unknown> | null>;
  for (const [imageId, root] of roots) hosts[imageId] = { ...(hosts[imageId] ?? {}), ansible_host: root };
  copy.all.hosts = hosts;
  return copy;
}

/**
 * The connection extra vars: the chroot connection and each host's root (looked up by
 * `inventory_hostname` in a mapping that is itself an extra var), and the host-side chroot
 * program. As extra vars given last they outrank group_vars, host_vars, play vars, the
 * `connection:` keyword and set_fact, so a layer's repository cannot turn the connection into
 * `local` or point it at another directory. `ansible_python_interpreter` stays the inventory's
 * (a layer may change it): it runs inside the root.
 */
export function connectionVars(roots: Map<string, string>): Record<string, unknown> {
  return {
    ansible_connection: CHROOT_CONNECTION,
    ansible_host: '{{ cfs_image_roots[inventory_hostname] }}',
    ansible_chroot_exe: 'chroot',
    cfs_image_roots: Object.fromEntries(roots),
  };
}

/**
 * Writes what ansiblePlaybookArgs refers to, beside the inventory: the inventory as YAML, one
 * `!unsafe` extra-vars file per non-empty passthrough `--extra-vars` value (in order), and the
 * connection file. Refuses (RunnerFailure 'input') passthrough or a limit the control plane
 * would have refused.
 */
export async function writeInventory(path: string, document: Pick<RunDocument, 'inventory' | 'ansible'>, roots: Map<string, string>): Promise<void> {
  const directory = dirname(path);
  if (document.ansible.limit) checkLimit(document.ansible.limit);
  await writeFile(path, stringify(inventoryWithRoots(document.inventory, roots)), { mode: 0o600 });
  let files = 0;
  for (const { option, value } of readPassthrough(document.ansible.passthrough)) {
    const vars = option === '--extra-vars' ? parseExtraVars(value) : undefined;
    if (vars) await writeFile(passthroughVarsFile(directory, files++), unsafeExtraVarsYaml(vars), { mode: 0o600 });
  }
  const header = '# Written by the CFS runner: the connection, given last so that nothing outranks it.\n';
  await writeFile(join(directory, CONNECTION_VARS_FILE), header + stringify(connectionVars(roots)), { mode: 0o600 });
}

/** Hosts that failed or were unreachable, from the PLAY RECAP at the end of a log. */
export function failedHostsFromRecap(log: string): string[] {
  const failed: string[] = [];
  const recap = log.lastIndexOf('PLAY RECAP');
  if (recap === -1) return failed;
  const pattern = /^(\S+)\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)/gm;
  for (const match of log.slice(recap).matchAll(pattern)) {
    if (Number(match[2]) > 0 || Number(match[3]) > 0) failed.push(match[1] ?? '');
  }
  return failed;
}

/** git's environment for a layer's clone: only the allowed schemes, no prompts; GIT_ASKPASS answers only with a source's login. */
function gitEnv(allowed: string[], access: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, GIT_ALLOW_PROTOCOL: allowed.join(':'), GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '/bin/false', ...access };
}

/** init, shallow fetch of the commit (or a full fetch), detached checkout, verified. */
async function fetchLayer(layer: RunLayer, dir: string, git: (args: string[]) => Promise<string>): Promise<void> {
  await git(['init', '--quiet', dir]);
  try {
    await git(['-C', dir, 'fetch', '--quiet', '--depth', '1', '--no-tags', '--', layer.clone_url, layer.commit]);
  } catch (error) {
    if (!(error instanceof ToolError)) throw error;
    await git(['-C', dir, 'fetch', '--quiet', '--no-tags', '--', layer.clone_url, '+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*']);
  }
  await git(['-C', dir, '-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', layer.commit]);
  const head = (await git(['-C', dir, 'rev-parse', 'HEAD'])).trim();
  if (head !== layer.commit) throw new Error(`checked out ${head}, not ${layer.commit}`);
}

/**
 * Clones a layer's repository at its pinned commit, shallow: `git init`, then
 * `git fetch --depth 1 -- <url> <commit>` (a server that refuses unadvertised commits gets a
 * full fetch instead), then a detached checkout. `--` keeps a URL from being read as an
 * option; GIT_ALLOW_PROTOCOL keeps git (and submodules, transport helpers) to the allowed schemes.
 */
export async function cloneLayer(layer: RunLayer, dir: string, allowed: string[], groups: ProcessGroups, access?: GitAccess): Promise<void> {
  checkCloneUrl(layer, allowed);
  try {
    // A source's login reaches only these git processes (GIT_ASKPASS files removed afterwards, git-access.ts), never the
    // clone's .git/config: the URL fetched from is the source's, without credentials, and no remote is written.
    await withGitAccess(access, (extra) => fetchLayer(layer, dir, (args) => groups.run('git', [...extra.config, ...args], { env: gitEnv(allowed, extra.env) })));
  } catch (error) {
    // git may quote the URL back: neither the message nor the URL may carry its credentials. Its
    // fatal lines say why (the advice git prints after them does not).
    const said = error instanceof ToolError && !error.exit.signal ? gitMessage(error.stderr) : '';
    const message = said || redactUrlsInText((error as Error).message);
    throw new RunnerFailure('layer', `layer '${layer.name}': cannot fetch ${redactCloneUrl(layer.clone_url)} at ${layer.commit}: ${message}`, {
      layer: layer.name,
    });
  }
  // Links are followed later from the sandbox's `/`: none may lead out of the clone.
  const leaving = await linksLeaving(dir);
  if (leaving.length > 0) {
    const shown = leaving.slice(0, 5).map((p) => `'${p}'`).join(', ') + (leaving.length > 5 ? ` and ${leaving.length - 5} more` : '');
    throw new RunnerFailure('layer', `layer '${layer.name}': the repository at ${layer.commit} has symlinks that lead outside its clone: ${shown}`, { layer: layer.name });
  }
  const playbook = await resolveInRoot(dir, layer.playbook);
  const kind = playbook ? await lstat(playbook).catch(() => undefined) : undefined;
  if (!kind?.isFile()) {
    throw new RunnerFailure('layer', `layer '${layer.name}': playbook '${layer.playbook}' does not exist at ${layer.commit}`, { layer: layer.name });
  }
}

/** The end of one layer's ansible-playbook run. */
export interface LayerRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  durationMs: number;
  failedHosts: string[];
}

/**
 * Runs one layer's ansible-playbook (`launch` starts it, in the sandbox or directly, and hands
 * the child to `attach` before anything else runs) with its output appended to the layer's log
 * file as it is produced, mirrored to `onOutput`, and copied to the store every `uploadEveryMs`
 * while it runs and once at the end, so the log can be followed live.
 */
export async function runLayerProcess(options: {
  launch: (attach: (child: ChildProcess) => void) => Promise<{ exited: Promise<ChildExit> }>;
  logPath: string;
  logKey: string;
  header: string;
  store: ArtifactStore;
  uploadEveryMs: number;
  onOutput?: (chunk: Buffer) => void;
  now: () => number;
}): Promise<LayerRun> {
  const log = createWriteStream(options.logPath, { flags: 'a' });
  log.write(options.header);
  const started = options.now();
  const forward = (chunk: Buffer) => {
    log.write(chunk);
    options.onOutput?.(chunk);
  };
  let child: ChildProcess | undefined;
  let launched: { exited: Promise<ChildExit> };
  try {
    launched = await options.launch((started) => {
      child = started;
      started.stdout?.on('data', forward);
      started.stderr?.on('data', forward);
    });
  } catch (error) {
    await new Promise<void>((resolve) => log.end(`\n# the layer could not start: ${(error as Error).message}\n`, () => resolve()));
    await options.store.put(options.logKey, createReadStream(options.logPath), { contentType: 'text/plain' }).catch(() => {});
    throw error;
  }
  const { exited } = launched;

  let uploading: Promise<unknown> = Promise.resolve();
  let uploadedBytes = -1;
  const upload = () => {
    // A quiet playbook (a long task) produces nothing new: the store is not rewritten for it.
    if (log.bytesWritten === uploadedBytes) return uploading;
    uploadedBytes = log.bytesWritten;
    uploading = uploading.then(() => options.store.put(options.logKey, createReadStream(options.logPath), { contentType: 'text/plain' })).catch(() => {});
    return uploading;
  };
  const timer = setInterval(upload, options.uploadEveryMs);
  const exit = await exited;
  clearInterval(timer);
  await Promise.all([streamEnd(child?.stdout ?? null), streamEnd(child?.stderr ?? null)]);
  const durationMs = options.now() - started;
  const how = exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
  await new Promise<void>((resolve) => log.end(`\n# ansible-playbook ended: ${how} after ${durationMs} ms\n`, () => resolve()));
  await uploading;
  await options.store.put(options.logKey, createReadStream(options.logPath), { contentType: 'text/plain' });
  const failedHosts = exit.code === 0 ? [] : failedHostsFromRecap(await readTail(options.logPath, 256 * 1024));
  return { exitCode: exit.code, signal: exit.signal, durationMs, failedHosts };
}

async function streamEnd(stream: NodeJS.ReadableStream | null): Promise<void> {
  if (!stream || (stream as { readableEnded?: boolean }).readableEnded) return;
  await new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
}

async function readTail(path: string, bytes: number): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}
