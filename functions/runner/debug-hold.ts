import { join } from 'node:path';
import { ansiblePlaybookArgs } from './layers.ts';
import type { DebugHoldDetails, RunDocument } from './run-document.ts';
import { ansibleEnvironment, sandboxedArgv, shellQuote, type SandboxMode } from './sandbox.ts';
import type { WorkspaceLayout } from './workspace.ts';

/** One command line, every word quoted for a POSIX shell. */
function commandLine(argv: [string, string[]]): string {
  return [argv[0], ...argv[1]].map(shellQuote).join(' ');
}

/**
 * What a person needs to debug a failed layer by hand in the kept workspace (`debug_on_failure`):
 * a command that enters each image root, and for every layer the exact ansible-playbook command
 * the run used (same inventory, limit, passthrough and Ansible environment; inside the same
 * sandbox script when the run had one), to be run as root on the machine that ran the session.
 */
export function debugHoldDetails(options: {
  document: Pick<RunDocument, 'layers' | 'ansible' | 'images'>;
  layout: WorkspaceLayout;
  inventory: string;
  roots: Array<{ image_id: string; root: string }>;
  mode: SandboxMode;
  /** The sandbox script (namespace mode). */
  script?: string;
}): DebugHoldDetails {
  const { document, layout, inventory, mode, script } = options;
  const sandboxed = (command: string, args: string[]): [string, string[]] =>
    mode === 'namespace' && script ? sandboxedArgv(script, command, args) : [command, args];
  const limit = document.ansible.limit || document.images.map((i) => i.image_id).join(',');
  return {
    workspace: layout.root,
    inventory,
    images: options.roots.map(({ image_id, root }) => ({ image_id, root, enter: commandLine(sandboxed('chroot', [root, '/bin/sh'])) })),
    layers: document.layers.map((layer) => {
      const directory = join(layout.repos, String(layer.index));
      const args = ansiblePlaybookArgs({ inventory, limit, verbosity: document.ansible.verbosity, passthrough: document.ansible.passthrough, playbook: layer.playbook });
      // Only what the run set for Ansible: the person's own environment stays as it is.
      const environment = Object.entries(ansibleEnvironment(layout, join(directory, 'roles'), {})).map(([name, value]) => `${name}=${shellQuote(value ?? '')}`);
      const command = `cd ${shellQuote(directory)} && env ${environment.join(' ')} ${commandLine(sandboxed('ansible-playbook', args))}`;
      return { index: layer.index, name: layer.name, directory, command };
    }),
  };
}
