/**
 * The environment variable names of the CLI and the embedded server (`cfs server`), the local
 * side's counterpart of `AWS_ENV`: the CLI, the server and the API's messages read them from here,
 * so a name is spelled once. It imports nothing, so every side (the API's Lambda bundle too) can
 * use it without an import circle.
 */
export const LOCAL_ENV = {
  /** Where the CLI sends its requests (default `DEFAULT_API_URL`, a local `cfs server`). */
  API_URL: 'CFS_API_URL',
  /** The embedded server's API token: the server requires it, the CLI sends it (it wins over the data dir's api-token file). */
  API_TOKEN: 'CFS_API_TOKEN',
  /** A PEM file of the certificates the CLI trusts for an https server (besides the system's): a self-signed `cfs server`, a private CA. */
  CA_BUNDLE: 'CFS_CA_BUNDLE',
  /** The data directory the CLI looks in for the token (and `cfs server`'s default data directory) unless `--data-dir` says otherwise. */
  DATA_DIR: 'CFS_DATA_DIR',
  /** Sign every request for `execute-api` in this region, whatever the API URL's host (a custom domain, `npm run test:aws-local`'s front). */
  API_SIGV4_REGION: 'CFS_API_SIGV4_REGION',
} as const;

/**
 * Variables the local side reads but does not own: Node's, git's and the terminal's. Named here
 * so that every `process.env` read in functions/ goes through a constant.
 */
export const SYSTEM_ENV = {
  /** Node's extra CA certificates, which CFS_CA_BUNDLE sets for the re-run CLI. */
  NODE_EXTRA_CA_CERTS: 'NODE_EXTRA_CA_CERTS',
  /** git's ssh command; the resolver defaults it to batch mode so a clone never waits on a prompt. */
  GIT_SSH_COMMAND: 'GIT_SSH_COMMAND',
  /** The search path the sandbox prerequisites are looked up on. */
  PATH: 'PATH',
  /** `dumb` turns the progress display's cursor movements off. */
  TERM: 'TERM',
  /** Any value turns colours off (https://no-color.org). */
  NO_COLOR: 'NO_COLOR',
} as const;
