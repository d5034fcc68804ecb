import { spawn } from 'node:child_process';
import { chmod, lstat, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ansiblePlaybookArgs, writeInventory } from './layers.ts';
import type { DebugHoldDetails, RunDocument } from '../core/workflow/run-document.ts';
import { ansibleEnvironment } from './ansible-environment.ts';
import { prepareRootMounts, sandboxedArgv, sandboxScript, shellQuote } from './sandbox.ts';
import { seccompProgram } from './seccomp-filter.ts';
import { chownToNamespaceRoot, rootIdMapping } from './user-namespace.ts';
import { workspaceLayout, type WorkspaceLayout } from './workspace.ts';

/**
 * A failed session's kept workspace (`debug_on_failure`) is entered and rerun by
 * `cfs sessions debug <name> --enter <image> | --rerun <layer>`, which builds the command when it
 * is used from the run document (in the store, which no layer can write) and the held workspace
 * path: nothing a layer wrote into its workspace (a script, an inventory, a process record) is
 * ever run outside the sandbox. The hold records only where things are and those two commands.
 */

/** The `cfs` command line that enters an image root or reruns a layer of a held session. */
export function heldCommandLine(session: string, action: { enter: string } | { rerun: number }): string {
  const words = ['cfs', 'sessions', 'debug', session, ...('enter' in action ? ['--enter', action.enter] : ['--rerun', String(action.rerun)])];
  return words.map((w) => (/^[A-Za-z0-9._:/=-]+$/.test(w) ? w : shellQuote(w))).join(' ');
}

/**
 * What the runner records for a failed layer's hold: the workspace, each image root and each
 * layer's clone, and the `cfs sessions debug` command for each (which builds the real command
 * from the run document when run). No script in the workspace is part of a hold.
 */
export function debugHoldDetails(options: {
  document: Pick<RunDocument, 'session' | 'layers'>;
  layout: WorkspaceLayout;
  inventory: string;
  roots: Array<{ image_id: string; root: string }>;
}): DebugHoldDetails {
  const { document, layout, inventory } = options;
  return {
    workspace: layout.root,
    inventory,
    images: options.roots.map(({ image_id, root }) => ({ image_id, root, enter: heldCommandLine(document.session, { enter: image_id }) })),
    layers: document.layers.map((layer) => ({
      index: layer.index,
      name: layer.name,
      directory: join(layout.repos, String(layer.index)),
      command: heldCommandLine(document.session, { rerun: layer.index }),
    })),
  };
}

/** What the hold's commands are built from: the held workspace and the session's run document (no clone URLs). */
export interface HeldRun {
  session: string;
  /** The kept workspace (the hold's `workspace`). */
  workspace: string;
  images: Array<{ image_id: string }>;
  layers: Array<{ index: number; name: string; playbook: string }>;
  ansible: RunDocument['ansible'];
  inventory: RunDocument['inventory'];
}

/** What to run in a held workspace: a shell (or `args`) in an image root, or a layer's playbook again. */
export type HeldAction = { enter: string; args?: string[] } | { rerun: number };

/** A command ready to start, and the private directory to remove once it ended. */
export interface HeldCommand {
  argv: [string, string[]];
  env: NodeJS.ProcessEnv;
  cleanup(): Promise<void>;
}

/**
 * Builds the command for `action` in the held workspace, in the same sandbox as a layer: the
 * argv, the inventory and the sandbox's own files are made now from `run`, in a private
 * directory outside the workspace. Every path taken from the workspace is checked to be a
 * directory of its own (no symlink at any component), so a layer cannot point the command
 * elsewhere.
 */
export async function heldCommand(run: HeldRun, action: HeldAction, base: NodeJS.ProcessEnv = process.env): Promise<HeldCommand> {
  const layout = workspaceLayout(run.workspace);
  await realDirectory(layout.root, []);
  for (const image of run.images) await realDirectory(layout.root, ['images', image.image_id]);
  const roots = new Map(run.images.map((i) => [i.image_id, join(layout.images, i.image_id)]));
  let command: string;
  let args: string[];
  let cwd: string;
  if ('enter' in action) {
    const root = roots.get(action.enter);
    if (!root) throw new Error(`session ${run.session} has no image ${action.enter} (it has ${[...roots.keys()].join(', ')})`);
    [command, args, cwd] = ['chroot', [root, '/bin/sh', ...(action.args ?? [])], root];
  } else {
    const layer = run.layers.find((l) => l.index === action.rerun);
    if (!layer) throw new Error(`session ${run.session} has no layer ${action.rerun} (it has ${run.layers.map((l) => l.index).join(', ')})`);
    cwd = await realDirectory(layout.root, ['layers', String(layer.index)]);
    [command, args] = ['ansible-playbook', []];
  }
  // Beside the workspace (a hidden name no session can have), in the directory only the engine
  // writes: not under /tmp, which the sandbox replaces with its own.
  const dir = await mkdtemp(join(dirname(layout.root), `.${basename(layout.root)}.debug-`));
  try {
    const built = await heldSandboxArgv({ run, layout, roots, dir, cwd, command, args, rerun: 'rerun' in action ? run.layers.find((l) => l.index === action.rerun) : undefined });
    const rolesPath = join(cwd, 'roles');
    return { argv: built, env: ansibleEnvironment(layout, rolesPath, base), cleanup: () => removePrivate(dir) };
  } catch (error) {
    await removePrivate(dir);
    throw error;
  }
}

/**
 * The one place the hold uses the runner's sandbox builder (sandbox.ts: `sandboxScript` and
 * `sandboxedArgv`), with the inventory written fresh from the run document into `dir`.
 */
async function heldSandboxArgv(options: {
  run: HeldRun;
  layout: WorkspaceLayout;
  roots: Map<string, string>;
  dir: string;
  cwd: string;
  command: string;
  args: string[];
  rerun?: HeldRun['layers'][number];
}): Promise<[string, string[]]> {
  const { run, layout, dir } = options;
  const mapping = await rootIdMapping();
  if ('problem' in mapping) throw new Error(`the sandbox needs root's subordinate ids: ${mapping.problem}`);
  // The sandbox binds only what is in the workspace: a directory made now (never one a layer
  // left) in its top directory, which no layer sees; removed with `dir`'s clean-up.
  const inventoryDir = await mkdtemp(join(layout.root, 'debug-inventory-'));
  await writeFile(join(dir, 'inventory-dir'), inventoryDir);
  await chmod(inventoryDir, 0o755);
  const inventory = join(inventoryDir, 'inventory.yaml');
  await writeInventory(inventory, { inventory: run.inventory, ansible: run.ansible }, options.roots);
  for (const name of await readdir(inventoryDir)) await chownToNamespaceRoot(join(inventoryDir, name), mapping);
  const seccompFile = join(dir, 'seccomp.bpf');
  await writeFile(seccompFile, seccompProgram(), { mode: 0o600 });
  const rootMounts = [];
  for (const root of options.roots.values()) rootMounts.push(await prepareRootMounts(root, true));
  const script = join(dir, 'sandbox.sh');
  await writeFile(script, await sandboxScript({ layout, mapping, roots: rootMounts, inventory, cwd: options.cwd }, seccompFile), { mode: 0o700 });
  const args = options.rerun
    ? ansiblePlaybookArgs({
        inventory,
        limit: run.ansible.limit || run.images.map((i) => i.image_id).join(','),
        verbosity: run.ansible.verbosity,
        passthrough: run.ansible.passthrough,
        playbook: options.rerun.playbook,
      })
    : options.args;
  return sandboxedArgv(script, options.command, args);
}

/** Runs a held command with the caller's terminal and resolves with its exit code (128 + signal when killed). */
export async function runHeldCommand(run: HeldRun, action: HeldAction): Promise<number> {
  const command = await heldCommand(run, action);
  try {
    const child = spawn(command.argv[0], command.argv[1], { stdio: 'inherit', env: command.env, cwd: '/' });
    // Ctrl-C belongs to the command on the terminal (as in a shell); this process waits and cleans up after it.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    try {
      return await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
      });
    } finally {
      process.off('SIGINT', ignore);
    }
  } finally {
    await command.cleanup();
  }
}

/** Removes the private directory and the inventory directory it names in the workspace. */
async function removePrivate(dir: string): Promise<void> {
  const inventoryDir = await readFile(join(dir, 'inventory-dir'), 'utf8').catch(() => undefined);
  if (inventoryDir) await rm(inventoryDir, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
}

/** `root/<parts...>` when every component below `root` (and `root` itself) is a directory, not a symlink; otherwise an error naming the first that is not. */
async function realDirectory(root: string, parts: string[]): Promise<string> {
  let path = root;
  for (const part of ['', ...parts]) {
    path = part ? join(path, part) : path;
    const kind = await lstat(path).catch(() => undefined);
    if (!kind) throw new Error(`${path} does not exist: the held workspace is gone or incomplete`);
    if (!kind.isDirectory()) throw new Error(`${path} is not a directory of its own (a layer replaced it); refusing to use it`);
  }
  return path;
}
