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

/** The store key of a layer's log: `<logs_prefix><index>-<name>.log`, the name reduced to key-safe characters. */
export function layerLogKey(logsPrefix: string, layer: { index: number; name: string }): string {
  const safe = layer.name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return `${logsPrefix}${layer.index}-${safe}.log`;
}
