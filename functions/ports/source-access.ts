/**
 * Temporary credentials that read exactly one session's sources' secrets (AWS: STS AssumeRole
 * on the SourceReader role with a session policy naming those secrets). The embedded engine has
 * no such port: it hands the logins to its runner over a pipe.
 */
export interface SourceAccessIssuer {
  /** Credentials for the runner of `session` that may read the secrets called `secretNames` and nothing else. */
  issue(session: string, secretNames: string[]): Promise<SourceAccessCredentials>;
}

export interface SourceAccessCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** When they stop working (ISO 8601). */
  expiration: string;
}
