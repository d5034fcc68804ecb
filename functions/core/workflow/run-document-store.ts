import { randomBytes } from 'node:crypto';
import type { ArtifactStore } from '../../ports/artifact-store.ts';
import { runDocumentSchema, type RunDocument } from './run-document.ts';
import { runnerPrefixOf, sessionKeys } from './session-keys.ts';

/** A new runner token: 128 random bits, hex (a playbook cannot guess another session's prefix). */
export function newRunnerToken(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The control-plane run document of a session (`sessions/<name>/run-document.json`), which names
 * every key its runner writes; undefined when there is none or it does not parse. The runner
 * neither reads nor writes it: it is handed its own copy under its prefix.
 */
export async function readRunDocument(artifacts: Pick<ArtifactStore, 'get' | 'head'>, session: string): Promise<RunDocument | undefined> {
  const key = sessionKeys.runDocument(session);
  try {
    if (!(await artifacts.head(key))) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of await artifacts.get(key)) chunks.push(Buffer.from(chunk as Buffer));
    const parsed = runDocumentSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    return parsed.success && parsed.data.session === session ? parsed.data : undefined;
  } catch {
    // Removed between the head and the read: there is none.
    return undefined;
  }
}

/** Where a session's runner writes, as its control-plane run document says (the legacy `sessions/<name>/` keys without one). */
export interface RunnerLocations {
  outcome: string;
  progress: string;
  logsPrefix: string;
  /** `runner/<token>/`; undefined for a session run before runner prefixes existed. */
  prefix?: string;
}

export function runnerLocations(session: string, document: RunDocument | undefined): RunnerLocations {
  if (!document) return { outcome: sessionKeys.runnerOutcome(session), progress: sessionKeys.runnerProgress(session), logsPrefix: sessionKeys.logsPrefix(session) };
  const prefix = runnerPrefixOf(document.outcome_key);
  return {
    outcome: document.outcome_key,
    progress: document.progress_key ?? sessionKeys.runnerProgress(session),
    logsPrefix: document.logs_prefix,
    ...(prefix ? { prefix } : {}),
  };
}

/** The runner locations of a session, read from its control-plane run document. */
export async function findRunnerLocations(artifacts: Pick<ArtifactStore, 'get' | 'head'>, session: string): Promise<RunnerLocations> {
  return runnerLocations(session, await readRunDocument(artifacts, session));
}

/** Removes every object under a runner prefix (and what a writer killed mid-write left there). Safe to repeat. */
export async function removeRunnerObjects(artifacts: Pick<ArtifactStore, 'list' | 'delete' | 'discardIncomplete'>, prefix: string | undefined): Promise<void> {
  if (!prefix || !runnerPrefixOf(prefix)) return;
  for (const key of await artifacts.list(prefix)) await artifacts.delete(key);
  await artifacts.discardIncomplete?.(prefix);
}
