import { createHash } from 'node:crypto';
import { shortFingerprint } from './fingerprint.ts';

/** The longest session name CFS accepts (sessions become Kubernetes jobs there). */
const MAX_SESSION_NAME = 45;
/** Room for `-<12 hex>` and a retry suffix `-<n>` (n up to 999). */
const MAX_PREFIX = MAX_SESSION_NAME - 13 - 4;

/**
 * The automation part of a session name: the name itself when it fits, else its head and a
 * short hash of the whole, so two long names that share a head still differ.
 */
function prefixOf(automation: string): string {
  if (automation.length <= MAX_PREFIX) return automation;
  const hash = createHash('sha256').update(automation).digest('hex').slice(0, 4);
  return `${automation.slice(0, MAX_PREFIX - 5)}-${hash}`;
}

/**
 * The deterministic name of the session an automation starts for a fingerprint: the same
 * inputs always give the same name, so a redelivered event or a repeated tick finds the session
 * already there (a 409) instead of starting a second one. `attempt` > 1 names a rebuild after
 * that session ended without leaving a result. At most 45 characters, a valid Kubernetes name.
 */
export function automationSessionName(automation: string, fingerprint: string, attempt = 1): string {
  const base = `${prefixOf(automation)}-${shortFingerprint(fingerprint)}`;
  return attempt > 1 ? `${base}-${attempt}` : base;
}
