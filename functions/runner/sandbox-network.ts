import type { Readable, Writable } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import type { ProcessGroups } from './process-groups.ts';

/**
 * A layer's network. Every layer runs in a network namespace of its own (bwrap --unshare-net);
 * - `egress`: slirp4netns gives it a user-mode stack with a route out (DNS at 10.0.2.3) and
 *   without the host's loopback (--disable-host-loopback); link-local addresses (the EC2
 *   metadata service, ECS's credentials endpoint 169.254.170.2) and the host's own addresses
 *   get `unreachable` routes in the namespace before the playbook starts.
 * - `none`: loopback only.
 * The operator sets it (cfs server --network, or the runner task's environment), never a session.
 */
export type NetworkMode = 'egress' | 'none';

/** slirp4netns's DNS forwarder, the only resolver the sandbox is given. */
export const SLIRP_DNS = '10.0.2.3';

/** The resolv.conf the image roots (and the sandbox's own /etc) see during a layer. */
export function sandboxResolvConf(mode: NetworkMode): string {
  return mode === 'egress' ? `# Written by the CFS runner: slirp4netns's DNS forwarder\nnameserver ${SLIRP_DNS}\n` : '# Written by the CFS runner: this sandbox has no network\n';
}

/**
 * Destinations made unreachable inside the namespace: all of link-local, and every address of
 * the host's own interfaces (slirp would otherwise connect to a service listening on them from
 * the host's side), loopback excepted (--disable-host-loopback already keeps slirp off it).
 */
export function blockedDestinations(interfaces = networkInterfaces()): string[] {
  const own = Object.values(interfaces)
    .flat()
    .filter((i) => i !== undefined && i.family === 'IPv4' && !i.internal)
    .map((i) => `${i!.address}/32`);
  return ['169.254.0.0/16', ...new Set(own)];
}

/** The slirp4netns argv for the namespace of `pid`: ready on fd 3, exits when fd 4 closes. */
export function slirpArgv(pid: number): [string, string[]] {
  return ['slirp4netns', ['--configure', '--mtu=65520', '--disable-host-loopback', '--ready-fd=3', '--exit-fd=4', String(pid), 'tap0']];
}

/** A running network for one sandbox: `stop` ends slirp4netns (and waits for it). */
export interface SandboxNetwork {
  stop(): Promise<void>;
}

/**
 * Gives the network namespace of `pid` (the sandbox's, from bwrap's --info-fd) its network:
 * starts slirp4netns, waits until it has configured tap0, then adds the unreachable routes
 * from the host side (nsenter; the sandbox itself holds no CAP_NET_ADMIN). slirp4netns runs
 * in a process group of its own, recorded like every child, and also exits by itself when the
 * runner dies (its exit fd closes).
 */
export async function startSandboxNetwork(pid: number, groups: ProcessGroups, timeoutMs = 10_000): Promise<SandboxNetwork> {
  // bwrap brings up the namespace's loopback over netlink after it reports the pid; slirp's and
  // the routes' netlink traffic at the same moment made that fail (measured: "Failed
  // RTM_NEWADDR"), so the namespace is first left to finish it.
  await loopbackReady(pid, timeoutMs);
  const [command, args] = slirpArgv(pid);
  const { child, exited } = groups.start(command, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exitFd = child.stdio[4] as Writable;
  exitFd.on('error', () => {});
  const stop = async () => {
    exitFd.destroy();
    child.kill('SIGTERM');
    await exited.catch(() => undefined);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`slirp4netns did not come up within ${timeoutMs} ms`)), timeoutMs);
      (child.stdio[3] as Readable).once('data', () => {
        clearTimeout(timer);
        resolve();
      });
      void exited.then((exit) => {
        clearTimeout(timer);
        reject(new Error(`slirp4netns exited (${exit.signal ?? exit.code}): ${Buffer.concat(stderr).toString('utf8').trim().split('\n').slice(-2).join(' | ')}`));
      }, reject);
    });
    for (const destination of blockedDestinations()) {
      await groups.run('nsenter', ['--target', String(pid), '--net', '--', 'ip', 'route', 'add', 'unreachable', destination]);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}

/** Waits until the network namespace of `pid` has 127.0.0.1 on its loopback (its local routing table lists it). */
async function loopbackReady(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const table = await readFile(`/proc/${pid}/net/fib_trie`, 'utf8').catch(() => undefined);
    if (table === undefined) throw new Error(`the sandbox (pid ${pid}) ended before its network was set up`);
    if (/\b127\.0\.0\.1\b/.test(table)) return;
    if (Date.now() > deadline) throw new Error(`the sandbox's loopback did not come up within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
