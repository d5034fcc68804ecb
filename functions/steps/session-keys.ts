/** Where a session's working documents live in the artifact store. */
export const sessionKeys = {
  prefix: (session: string) => `sessions/${session}/`,
  runDocument: (session: string) => `sessions/${session}/run-document.json`,
  runnerOutcome: (session: string) => `sessions/${session}/runner-outcome.json`,
  logsPrefix: (session: string) => `sessions/${session}/logs/`,
};

/** The IMS layout: `boot-images/<image id>/<artifact>`; link paths are `s3://<key>`. */
export const imageKeys = {
  prefix: (imageId: string) => `boot-images/${imageId}/`,
  manifest: (imageId: string) => `boot-images/${imageId}/manifest.json`,
  linkPath: (key: string) => `s3://${key}`,
  keyOfLink: (path: string) => path.replace(/^s3:\/\//, ''),
};
