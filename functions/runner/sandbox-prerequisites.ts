import { findOnPath } from './environment.ts';
import type { NetworkMode } from './sandbox-network.ts';
import { rootIdMapping, SUBORDINATE_FIX, type IdMapping } from './user-namespace.ts';

/** The Debian package each sandbox tool comes from, for the fix a missing one prints. */
const TOOL_PACKAGES: Record<string, string> = {
  bwrap: 'bubblewrap',
  newuidmap: 'uidmap',
  newgidmap: 'uidmap',
  unshare: 'util-linux',
  nsenter: 'util-linux',
  slirp4netns: 'slirp4netns',
  ip: 'iproute2',
};

/** The tools the namespace sandbox runs, for a network mode. */
export function sandboxTools(network: NetworkMode): string[] {
  return ['bwrap', 'newuidmap', 'newgidmap', 'unshare', ...(network === 'egress' ? ['slirp4netns', 'nsenter', 'ip'] : [])];
}

/**
 * What the namespace sandbox needs from the machine (its tools, root's subordinate id range),
 * checked once: the mapping when all is there, or one line naming what is missing and the exact
 * commands that fix it. The runner refuses a run with it; `cfs server` refuses to start with it.
 */
export async function checkSandboxPrerequisites(options: {
  network: NetworkMode;
  path: string;
  subordinateFiles?: { subuid: string; subgid: string };
}): Promise<IdMapping | { problem: string }> {
  const missing: string[] = [];
  for (const tool of sandboxTools(options.network)) if (!(await findOnPath(tool, options.path))) missing.push(tool);
  const mapping = await rootIdMapping(options.subordinateFiles);
  const problems: string[] = [];
  const fixes: string[] = [];
  if (missing.length > 0) {
    problems.push(`missing ${missing.join(', ')}`);
    fixes.push(`apt-get install ${[...new Set(missing.map((t) => TOOL_PACKAGES[t] ?? t))].join(' ')}`);
  }
  if ('problem' in mapping) {
    problems.push(mapping.problem);
    fixes.push(SUBORDINATE_FIX);
  }
  if (problems.length === 0) return mapping as IdMapping;
  return { problem: `the runner's sandbox cannot start: ${problems.join('; ')}. Fix: ${fixes.join(' && ')}` };
}
