/** Where a session's working documents live in the artifact store. */
export const sessionKeys = {
  runDocument: (session: string) => `sessions/${session}/run-document.json`,
  runnerOutcome: (session: string) => `sessions/${session}/runner-outcome.json`,
  logsPrefix: (session: string) => `sessions/${session}/logs/`,
};
