import { chown, readFile } from 'node:fs/promises';

/** Ids an image may use (0..65535): every one is mapped, so owners survive unpacking and packing. */
export const MAPPED_IDS = 65536;

/** The host range the image's ids 0..65535 are mapped to: root's subordinate ids. */
export interface IdMapping {
  /** Host uid that is uid 0 inside (the image's root). */
  uid: number;
  /** Host gid that is gid 0 inside. */
  gid: number;
}

/** The line root needs in /etc/subuid and /etc/subgid, as the command that adds it. */
export const SUBORDINATE_FIX = `usermod --add-subuids 200000-${200000 + MAPPED_IDS - 1} --add-subgids 200000-${200000 + MAPPED_IDS - 1} root`;

/**
 * The first range of at least 65536 ids that /etc/subuid or /etc/subgid text gives `user`
 * (lines `name:start:count`; a line may name the user by uid), or undefined.
 */
export function subordinateStart(text: string, user: { name: string; uid: number }): number | undefined {
  for (const line of text.split('\n')) {
    const [name, start, count] = line.trim().split(':');
    if (name !== user.name && name !== String(user.uid)) continue;
    const first = Number(start);
    if (Number.isInteger(first) && first > 0 && Number(count) >= MAPPED_IDS) return first;
  }
  return undefined;
}

/** Root's subordinate uid and gid ranges, or why there are none. */
export async function rootIdMapping(files = { subuid: '/etc/subuid', subgid: '/etc/subgid' }): Promise<IdMapping | { problem: string }> {
  const root = { name: 'root', uid: 0 };
  const uid = subordinateStart(await readFile(files.subuid, 'utf8').catch(() => ''), root);
  const gid = subordinateStart(await readFile(files.subgid, 'utf8').catch(() => ''), root);
  if (uid === undefined || gid === undefined) {
    const missing = [uid === undefined ? files.subuid : '', gid === undefined ? files.subgid : ''].filter(Boolean).join(' and ');
    return { problem: `root has no subordinate range of ${MAPPED_IDS} ids in ${missing}` };
  }
  return { uid, gid };
}

/**
 * The argv that runs a command as root of a new user namespace whose ids 0..65535 are the
 * mapping's host range (util-linux 2.38 spells the maps outer,inner,count; newuidmap and
 * newgidmap write them). No --fork: unshare execs the command, which stays the caller's child,
 * so bwrap's --die-with-parent and the caller's process group reach it.
 */
export function userNamespaceArgv(mapping: IdMapping, command: string, args: string[]): [string, string[]] {
  return [
    'unshare',
    ['--user', `--map-users=${mapping.uid},0,${MAPPED_IDS}`, `--map-groups=${mapping.gid},0,${MAPPED_IDS}`, '--setuid', '0', '--setgid', '0', '--', command, ...args],
  ];
}

/** Gives a path the namespace's root as owner (host uid/gid of the mapping), so the image's root can use it. */
export async function chownToNamespaceRoot(path: string, mapping: IdMapping): Promise<void> {
  await chown(path, mapping.uid, mapping.gid);
}
