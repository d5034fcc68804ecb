/**
 * Where a session's working documents live in the artifact store: one layout shared by the
 * steps that write them, the runner, and the use cases that read them (logs) or remove them
 * (retention).
 */
export const sessionKeys = {
  runDocument: (session: string) => `sessions/${session}/run-document.json`,
  runnerOutcome: (session: string) => `sessions/${session}/runner-outcome.json`,
  logsPrefix: (session: string) => `sessions/${session}/logs/`,
  /** The runner's live layer progress (rewritten as each layer starts and ends). */
  runnerProgress: (session: string) => `sessions/${session}/runner-progress.json`,
  /** Everything a session keeps in the store (run document, outcome, progress, logs): what retention removes. */
  sessionPrefix: (session: string) => `sessions/${session}/`,
};

/** Matches a runner token: 128 random bits as lowercase hex. */
export const RUNNER_TOKEN = /^[0-9a-f]{32}$/;

/**
 * Where the runner of one session run writes (its copy of the run document, outcome, progress,
 * logs and results): an unguessable prefix `runner/<token>/`, the only place the runner's role
 * may write, so a playbook holding those credentials reaches no other session's keys. The token
 * is kept in the control-plane run document (`sessionKeys.runDocument`), which the runner cannot read.
 */
export function runnerKeys(token: string) {
  if (!RUNNER_TOKEN.test(token)) throw new Error(`not a runner token: '${token}'`);
  const prefix = `runner/${token}/`;
  return {
    prefix,
    runDocument: `${prefix}run-document.json`,
    outcome: `${prefix}runner-outcome.json`,
    progress: `${prefix}runner-progress.json`,
    logsPrefix: `${prefix}logs/`,
    /** AWS: the runner's short-lived credentials for its own session's sources' secrets (read once and deleted by the runner). */
    sourceAccess: `${prefix}source-access.json`,
    resultsPrefix: `${prefix}results/`,
    /** Where the runner uploads one result (`rootfs`, `kernel`, `initrd`) for the control plane to verify and promote. */
    resultPrefix: (resultId: string) => `${prefix}results/${resultId}/`,
  };
}

/** The runner prefix (`runner/<token>/`) a key lies under, or undefined for any other key. */
export function runnerPrefixOf(key: string): string | undefined {
  const match = /^runner\/([0-9a-f]{32})\//.exec(key);
  return match ? match[0] : undefined;
}

/** The store key of a layer's log: `<logs_prefix><index>-<name>.log`, the name reduced to key-safe characters. */
export function layerLogKey(logsPrefix: string, layer: { index: number; name: string }): string {
  const safe = layer.name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return `${logsPrefix}${layer.index}-${safe}.log`;
}

/**
 * The store key of one image's test log: `<logs_prefix>tests/<image_id>/check-<name>.log` for a
 * check (names are already key-safe), `.../boot-console.log` for the boot test's serial console.
 */
export function testLogKey(logsPrefix: string, imageId: string, part: { check: string } | 'boot'): string {
  return `${logsPrefix}tests/${imageId}/${part === 'boot' ? 'boot-console' : `check-${part.check}`}.log`;
}
