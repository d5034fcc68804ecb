import packageJson from '../../package.json' with { type: 'json' };

/**
 * Bumped whenever the runner changes what it makes of the same inputs (how it unpacks,
 * sandboxes, runs Ansible or packs the result), without waiting for a package release.
 */
export const RUNNER_PROTOCOL = 1;

/**
 * The runner's version as the input fingerprint sees it: the package version plus the runner
 * protocol. A new version changes every fingerprint, so automations rebuild once with it.
 */
export const RUNNER_VERSION = `${packageJson.version}+runner.${RUNNER_PROTOCOL}`;
